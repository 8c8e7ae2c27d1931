package kthread

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

// Worker flags (enum kthread_worker_flags of include/linux/kthread.h).
const (
	// KTWFreezable is KTW_FREEZABLE: the worker's thread is freezable
	// (SetFreezable); it freezes between two works.
	KTWFreezable uint32 = 1 << 0
)

// WorkFunc is a kthread work's function (kthread_work_func_t). It runs in
// the worker's thread, in process context: it may sleep. It receives its
// work, from which it finds its owner (FromWork, or a closure).
type WorkFunc func(c *kernel.Ctx, w *Work)

// node is a struct list_head. A node whose next is nil is unlinked:
// list_empty(&work->node) for a work, whose zero value is therefore
// "not pending". A list head is a node whose next and prev point at itself
// when empty (lazily: a nil head is empty too).
type node struct{ next, prev *node }

func (n *node) linked() bool { return n.next != nil }

func (h *node) init() {
	if h.next == nil {
		h.next, h.prev = h, h
	}
}

func (h *node) empty() bool { return h.next == nil || h.next == h }

// addBefore is list_add_tail(n, pos): n goes just before pos.
func (n *node) addBefore(pos *node) {
	prev := pos.prev
	n.next, n.prev = pos, prev
	prev.next = n
	pos.prev = n
}

// del is list_del_init.
func (n *node) del() {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.next, n.prev = nil, nil
}

// Work is struct kthread_work: a function to run once in a worker's thread
// each time it is queued. It is a value users embed in their own structs;
// queueing it links it into the worker's list and allocates nothing. Set it
// up with InitWork. A Work must be used with one worker only (InitWork it
// again to move it to another), and must not be copied once set up.
type Work struct {
	node node // on worker.workList or worker.delayedList; guarded by worker.mu
	fn   WorkFunc
	// worker is the worker it was last queued on (work->worker); set
	// under that worker's lock, read without it by the flush and cancel
	// functions.
	worker    atomic.Pointer[Worker]
	canceling int  // guarded by worker.mu
	delayed   bool // on the delayed list (guarded by worker.mu)
	isDelayed bool // part of a DelayedWork set up with InitDelayedWork
}

// DelayedWork is struct kthread_delayed_work: a Work queued to its worker
// by a timer (TIMER_IRQSAFE, as the kernel's) once a delay has passed.
// Embed it like a Work; set it up with InitDelayedWork.
type DelayedWork struct {
	// Work is the work the timer queues: flush it with FlushWork(c,
	// &dw.Work).
	Work  Work
	timer timer.Timer
}

// Worker is struct kthread_worker: a kernel thread that runs the works
// queued to it one at a time, in the order they were queued (FIFO). Create
// one with CreateWorker or RunWorker, or embed one, InitWorker it and run
// WorkerFn in a thread of your own.
type Worker struct {
	mu          sync.Mutex // worker->lock (a raw spinlock taken with irqsave)
	flags       uint32
	workList    node
	delayedList node
	task        *kernel.Task // guarded by mu
	currentWork *Work        // guarded by mu
}

// InitWork is kthread_init_work(work, fn): work is not pending and runs fn.
// It must not be called on a pending work.
func InitWork(work *Work, fn WorkFunc) {
	work.node = node{}
	work.fn = fn
	work.worker.Store(nil)
	work.canceling = 0
	work.delayed = false
	work.isDelayed = false
}

// InitDelayedWork is kthread_init_delayed_work(dwork, fn): InitWork, and
// the timer set up with the kernel's kthread_delayed_work_timer_fn and
// TIMER_IRQSAFE.
func InitDelayedWork(dw *DelayedWork, fn WorkFunc) {
	InitWork(&dw.Work, fn)
	dw.Work.isDelayed = true
	timer.Setup(nil, &dw.timer, delayedWorkTimerFn, timer.FlagIRQSafe)
}

// FromWork returns the value of type T in which w is embedded at byte
// offset off (container_of):
//
//	d := kthread.FromWork[dev](w, unsafe.Offsetof(dev{}.work))
//
// w must really be the field at off of a T.
func FromWork[T any](w *Work, off uintptr) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(w), -int(off)))
}

// ToDelayedWork is to_kthread_delayed_work() — container_of(work, struct
// kthread_delayed_work, work): the DelayedWork whose Work w is.
func ToDelayedWork(w *Work) *DelayedWork {
	return FromWork[DelayedWork](w, unsafe.Offsetof(DelayedWork{}.Work))
}

// InitWorker is kthread_init_worker(worker): an empty worker without a
// thread; run WorkerFn in a kernel thread to serve it. It must not be
// called on a worker in use.
func InitWorker(w *Worker) {
	w.mu.Lock()
	w.flags = 0
	w.workList = node{}
	w.delayedList = node{}
	w.workList.init()
	w.delayedList.init()
	w.task = nil
	w.currentWork = nil
	w.mu.Unlock()
}

// Task returns the worker's thread (worker->task), nil before it was
// created or after it stopped.
func (w *Worker) Task() *kernel.Task {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.task
}

// WorkerFn is kthread_worker_fn(worker): the loop of a worker's thread. It
// runs the first queued work, then the next, and sleeps in
// TASK_INTERRUPTIBLE while the list is empty; between two works it freezes
// if asked to (TryToFreeze) and yields (cond_resched). It returns 0 once
// the thread is asked to stop (Stop), leaving the rest of the list queued.
// Use it as the function of a thread that serves an embedded worker:
//
//	kthread.Run(c, func(c *kernel.Ctx) int { return kthread.WorkerFn(c, &w) }, "mydev")
func WorkerFn(c *kernel.Ctx, w *Worker) int {
	me := c.Current()
	w.mu.Lock()
	other := w.task != nil && w.task != me
	w.task = me
	flags := w.flags
	w.workList.init()
	w.delayedList.init()
	w.mu.Unlock()
	kernel.WarnOn(c, other)
	if flags&KTWFreezable != 0 {
		SetFreezable(c)
	}
	kt := lookup(me) // nil for a thread kernel.CreateTask made
	freezingNow := func() bool { return kt != nil && freezing(kt) }
	for {
		kernel.SetCurrentState(c, kernel.TaskInterruptible) // paired with kthread_stop
		if c.KthreadShouldStop() {
			kernel.SetCurrentState(c, kernel.TaskRunning)
			w.mu.Lock()
			w.task = nil
			w.mu.Unlock()
			return 0
		}
		w.mu.Lock()
		var work *Work
		if !w.workList.empty() {
			work = workOf(w.workList.next)
			work.node.del()
		}
		w.currentWork = work
		w.mu.Unlock()
		switch {
		case work != nil:
			kernel.SetCurrentState(c, kernel.TaskRunning)
			fn := work.fn
			traceExecuteStart(c, work, fn)
			fn(c, work)
			// Do not touch work after this point: its function may
			// have freed (reused) it. The trace event only cares about
			// the address.
			traceExecuteEnd(c, work, fn)
		case !freezingNow():
			kernel.Schedule(c)
		default:
			kernel.SetCurrentState(c, kernel.TaskRunning)
		}
		if freezingNow() {
			TryToFreeze(c)
		}
		condResched(c) // its __might_resched check stands for try_to_freeze's might_sleep too
	}
}

// condResched is the worker's cond_resched() between two works. The
// kernel's yields only when need_resched() is set, which kdefer never sets
// (see package kernel); the yield stands in for the wakeup preemption that
// would let a task a work woke run before the next work. In virtual time,
// where tasks run one at a time, the worker therefore yields; in real time
// the woken task runs at once on another goroutine and the Go scheduler
// preempts a long-running worker on its own, so only cond_resched's
// __might_resched check is made.
func condResched(c *kernel.Ctx) {
	if c.Kernel().Virtual() {
		kernel.CondResched(c)
	} else {
		kernel.MightSleep(c)
	}
}

func workOf(n *node) *Work { return (*Work)(unsafe.Pointer(n)) }

// CreateWorker is kthread_create_worker(flags, namefmt, …): a new worker
// whose thread — a kernel thread named fmt.Sprintf(namefmt, args…) running
// WorkerFn — is created but not woken: works queued meanwhile wait. Start
// it with RunWorker instead, or wake w.Task(). Errors are Create's.
func CreateWorker(c *kernel.Ctx, flags uint32, namefmt string, args ...any) (*Worker, error) {
	return createWorker(c, flags, fmt.Sprintf(namefmt, args...))
}

func createWorker(c *kernel.Ctx, flags uint32, name string) (*Worker, error) {
	w := new(Worker)
	InitWorker(w)
	t, _, err := create(c, func(c *kernel.Ctx) int { return WorkerFn(c, w) }, name)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.flags = flags
	w.task = t
	w.mu.Unlock()
	return w, nil
}

// RunWorker is kthread_run_worker(flags, namefmt, …) (v6.13+):
// CreateWorker, then the worker's thread is woken.
func RunWorker(c *kernel.Ctx, flags uint32, namefmt string, args ...any) (*Worker, error) {
	w, err := CreateWorker(c, flags, namefmt, args...)
	if err != nil {
		return nil, err
	}
	c.Kernel().WakeUpProcess(w.Task())
	return w, nil
}

// CreateWorkerOnCPU is kthread_create_worker_on_cpu(cpu, flags, namefmt):
// CreateWorker with the name fmt.Sprintf(namefmt, cpu) and the thread bound
// to cpu (Bind). Like CreateWorker it does not wake the thread.
func CreateWorkerOnCPU(c *kernel.Ctx, cpu int, flags uint32, namefmt string) (*Worker, error) {
	w, err := createWorker(c, flags, fmt.Sprintf(namefmt, cpu))
	if err != nil {
		return nil, err
	}
	Bind(c, w.Task(), cpu)
	return w, nil
}

// queuingBlocked: the work is pending (on a list) or being cancelled. The
// caller holds w.mu.
func queuingBlocked(work *Work) bool { return work.node.linked() || work.canceling > 0 }

// insertSanityCheck is kthread_insert_work_sanity_check(). The caller holds
// w.mu.
func (w *Worker) insertSanityCheck(c *kernel.Ctx, work *Work) {
	kernel.WarnOnce(c, work.node.linked(), "")
	// Do not use a work with more than one worker.
	if ow := work.worker.Load(); ow != nil && ow != w {
		kernel.WarnOnce(c, true, "")
	}
}

// insertWork is kthread_insert_work(): work goes just before pos in w's
// work list, and the worker's thread is woken if it is idle. The caller
// holds w.mu.
func (w *Worker) insertWork(c *kernel.Ctx, work *Work, pos *node) {
	w.insertSanityCheck(c, work)
	traceQueueWork(c, w, work)
	work.node.addBefore(pos)
	work.delayed = false
	work.worker.Store(w)
	if w.currentWork == nil && w.task != nil {
		w.task.Kernel().WakeUpProcess(w.task)
	}
}

// QueueWork is kthread_queue_work(worker, work): work is appended to w's
// list and w's thread woken if idle. It returns true if work was queued,
// false if it was already pending (it then runs once) or is being
// cancelled. It may be called from any context — an interrupt handler, a
// timer — and allocates nothing. A work must be used with one worker only:
// queueing it to a second one is warned about (WARN_ON_ONCE).
func QueueWork(c *kernel.Ctx, w *Worker, work *Work) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.workList.init()
	if queuingBlocked(work) {
		return false
	}
	w.insertWork(c, work, &w.workList)
	return true
}

// delayedWorkTimerFn is kthread_delayed_work_timer_fn(): the delayed work's
// timer expired (in TIMER_SOFTIRQ, interrupts off): the work moves from the
// delayed list to the work list, unless it is being cancelled.
func delayedWorkTimerFn(c *kernel.Ctx, t *timer.Timer) {
	dw := timer.ContainerOf[DelayedWork](t, unsafe.Offsetof(DelayedWork{}.timer))
	work := &dw.Work
	w := work.worker.Load()
	// Happens when a pending work is reinitialised: a misuse.
	if kernel.WarnOnce(c, w == nil, "") {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	kernel.WarnOnce(c, work.worker.Load() != w, "")
	if !kernel.WarnOnce(c, !work.node.linked(), "") {
		work.node.del()
	}
	work.delayed = false
	if work.canceling == 0 {
		w.insertWork(c, work, &w.workList)
	}
	kernel.WakeUpVar(c, work) // a FlushWork waiting for the timer
}

// queueDelayed is __kthread_queue_delayed_work(). The caller holds w.mu.
func (w *Worker) queueDelayed(c *kernel.Ctx, dw *DelayedWork, delay uint64) {
	work := &dw.Work
	kernel.WarnOnce(c, !work.isDelayed, "")
	// A zero delay queues the work at once: the timer could expire at
	// the next tick at the earliest.
	if delay == 0 {
		w.insertWork(c, work, &w.workList)
		return
	}
	w.insertSanityCheck(c, work)
	work.node.addBefore(w.delayedList.next) // list_add: at the head
	work.delayed = true
	work.worker.Store(w)
	timer.SetExpires(&dw.timer, c.Jiffies()+delay)
	timer.Add(c, &dw.timer)
}

// QueueDelayedWork is kthread_queue_delayed_work(worker, dwork, delay): if
// dw is not pending, its timer is started to queue it to w after delay
// jiffies (at once for a delay of 0). It returns false if dw was already
// pending (its timer running or the work queued) or is being cancelled,
// true otherwise. It may be called from any context.
func QueueDelayedWork(c *kernel.Ctx, w *Worker, dw *DelayedWork, delay uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.workList.init()
	w.delayedList.init()
	if queuingBlocked(&dw.Work) {
		return false
	}
	w.queueDelayed(c, dw, delay)
	return true
}

// cancelDelayedWorkTimer is kthread_cancel_delayed_work_timer(): the timer
// is deleted and any running callback waited for with w.mu released, while
// canceling blocks queueing. The caller holds w.mu.
func (w *Worker) cancelDelayedWorkTimer(c *kernel.Ctx, work *Work) {
	dw := ToDelayedWork(work)
	work.canceling++
	w.mu.Unlock()
	timer.DeleteSync(c, &dw.timer)
	w.mu.Lock()
	work.canceling--
}

// cancelWork is __kthread_cancel_work(): work leaves whichever list it is
// on; it reports whether it was pending. The caller holds w.mu.
func cancelWork(c *kernel.Ctx, work *Work) bool {
	if !work.node.linked() {
		return false
	}
	work.node.del()
	if work.delayed {
		work.delayed = false
		kernel.WakeUpVar(c, work) // a FlushWork waiting for the timer
	}
	return true
}

// ModDelayedWork is kthread_mod_delayed_work(worker, dwork, delay): if dw
// is idle it is QueueDelayedWork; if it is pending, its timer is cancelled
// and it is queued again to run after delay jiffies (a delay of 0 queues it
// at once). It returns false if dw was idle and has been queued, true
// otherwise — also when a cancel runs in parallel, which wins: dw is then
// left alone (the kernel's v5.12+ rule, so that the return value can count
// references). It may be called from any context.
func ModDelayedWork(c *kernel.Ctx, w *Worker, dw *DelayedWork, delay uint64) bool {
	work := &dw.Work
	w.mu.Lock()
	defer w.mu.Unlock()
	w.workList.init()
	w.delayedList.init()
	// Do not bother with cancelling when never queued.
	if work.worker.Load() == nil {
		w.queueDelayed(c, dw, delay)
		return false
	}
	kernel.WarnOnce(c, work.worker.Load() != w, "")
	w.cancelDelayedWorkTimer(c, work)
	if work.canceling > 0 {
		// The number of works in the queue does not change.
		return true
	}
	ret := cancelWork(c, work)
	w.queueDelayed(c, dw, delay)
	return ret
}

// flushWork is struct kthread_flush_work.
type flushWork struct {
	work Work
	done wait.Completion
}

func flushWorkFn(_ *kernel.Ctx, w *Work) {
	FromWork[flushWork](w, unsafe.Offsetof(flushWork{}.work)).done.Complete()
}

// FlushWork is kthread_flush_work(work): if work is queued or running, the
// caller waits (TASK_UNINTERRUPTIBLE) until that run has finished: a flush
// item is queued right after it, or at the head of the list if work is
// running, and waited for. It returns at once for a work that was never
// queued or is idle. For a delayed work whose timer is pending it first
// waits for the timer to queue the work (see the package doc: the kernel
// would wait forever).
func FlushWork(c *kernel.Ctx, work *Work) {
	w := work.worker.Load()
	if w == nil {
		return
	}
	var fw *flushWork
	for {
		w.mu.Lock()
		kernel.WarnOnce(c, work.worker.Load() != w, "")
		if work.node.linked() && work.delayed {
			w.mu.Unlock()
			kernel.WaitVarEvent(c, work, func() bool {
				w.mu.Lock()
				defer w.mu.Unlock()
				return !(work.node.linked() && work.delayed)
			})
			continue
		}
		var pos *node
		switch {
		case work.node.linked():
			pos = work.node.next
		case w.currentWork == work:
			pos = w.workList.next
		default:
			w.mu.Unlock()
			return
		}
		fw = new(flushWork)
		InitWork(&fw.work, flushWorkFn)
		w.insertWork(c, &fw.work, pos)
		w.mu.Unlock()
		break
	}
	fw.done.WaitFor(c)
}

// FlushWorker is kthread_flush_worker(worker): the caller waits
// (TASK_UNINTERRUPTIBLE) until every work queued to w before the call has
// run: a flush item is queued at the tail and waited for.
func FlushWorker(c *kernel.Ctx, w *Worker) {
	fw := new(flushWork)
	InitWork(&fw.work, flushWorkFn)
	QueueWork(c, w, &fw.work)
	fw.done.WaitFor(c)
}

// cancelWorkSync is __kthread_cancel_work_sync().
func cancelWorkSync(c *kernel.Ctx, work *Work, isDelayed bool) bool {
	w := work.worker.Load()
	if w == nil {
		return false
	}
	w.mu.Lock()
	kernel.WarnOnce(c, work.worker.Load() != w, "")
	if isDelayed {
		w.cancelDelayedWorkTimer(c, work)
	}
	ret := cancelWork(c, work)
	if w.currentWork == work {
		// The work runs: wait for it with the lock released, blocking
		// any queueing meanwhile.
		work.canceling++
		w.mu.Unlock()
		FlushWork(c, work)
		w.mu.Lock()
		work.canceling--
	}
	w.mu.Unlock()
	return ret
}

// CancelWorkSync is kthread_cancel_work_sync(work): work is taken off its
// worker's list, and if it is running the caller waits for that run to end
// (TASK_UNINTERRUPTIBLE), during which it cannot be queued again. On return
// work is neither pending nor running, even if it re-queues itself. It
// returns true if work was pending. Use CancelDelayedWorkSync for a delayed
// work. The worker must not be destroyed meanwhile.
func CancelWorkSync(c *kernel.Ctx, work *Work) bool { return cancelWorkSync(c, work, false) }

// CancelDelayedWorkSync is kthread_cancel_delayed_work_sync(dwork):
// CancelWorkSync for a delayed work, whose timer is deleted first
// (timer_delete_sync). It returns true if dw was pending.
func CancelDelayedWorkSync(c *kernel.Ctx, dw *DelayedWork) bool {
	return cancelWorkSync(c, &dw.Work, true)
}

// DestroyWorker is kthread_destroy_worker(worker): it flushes w
// (FlushWorker), stops its thread (Stop) and warns if works are still
// queued, delayed ones included — cancel those first. A worker whose
// thread is gone is warned about and left alone.
func DestroyWorker(c *kernel.Ctx, w *Worker) {
	t := w.Task()
	if kernel.WarnOn(c, t == nil) {
		return
	}
	FlushWorker(c, w)
	Stop(c, t)
	w.mu.Lock()
	delayed, queued := !w.delayedList.empty(), !w.workList.empty()
	w.mu.Unlock()
	kernel.WarnOn(c, delayed)
	kernel.WarnOn(c, queued)
}
