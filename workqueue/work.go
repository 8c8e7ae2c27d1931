package workqueue

import (
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// Func is a work function (work_func_t). It runs in process context on a
// kernel worker thread (a kworker) — in softirq context for a WQ_BH
// workqueue — and receives that context and its work item, from which it
// finds its owner (FromWork, ToDelayedWork, or a closure). It may sleep
// (unless the workqueue is WQ_BH); when it sleeps, concurrency management
// lets another worker take the CPU's remaining items.
//
// The kernel's work function receives only the work item; kdefer also
// passes the execution context, which the kernel keeps implicitly in
// current.
type Func func(c *kernel.Ctx, w *Work)

// work->data bits (include/linux/workqueue.h, WORK_STRUCT_* and
// WORK_OFFQ_*), in kdefer's own layout: the pending and queued bits, the
// off-queue BH flag, and the id of the pool the item is queued on or last
// ran on (plus one, so that 0 means none).
const (
	dataPending   = 1 << 0 // WORK_STRUCT_PENDING
	dataQueued    = 1 << 1 // WORK_STRUCT_PWQ: on a pool_workqueue's list
	dataBH        = 1 << 2 // WORK_OFFQ_BH: last queued on a BH pool
	dataPoolShift = 32
)

// Flag bits of a queued item (the WORK_STRUCT_INACTIVE, _LINKED and color
// bits of work->data), guarded by the lock of the pool it is queued on.
const (
	qInactive  = 1 << 0 // WORK_STRUCT_INACTIVE: on pwq->inactive_works, not counted in nr_active
	qLinked    = 1 << 1 // WORK_STRUCT_LINKED: the next item (a flush barrier) goes with it
	qColorSh   = 4      // WORK_STRUCT_COLOR_SHIFT
	qColorMask = 0xf << qColorSh
)

// NrColors is WORK_NR_COLORS: the flush colors of flush_workqueue.
const NrColors = 16

// Busy bits returned by Busy (WORK_BUSY_*).
const (
	BusyPending = 1 << 0 // WORK_BUSY_PENDING
	BusyRunning = 1 << 1 // WORK_BUSY_RUNNING
)

// CPUUnbound is WORK_CPU_UNBOUND (NR_CPUS): the cpu argument of the *On
// functions that means "no particular CPU" (the local one for a per-CPU
// workqueue), and the req_cpu the tracepoint shows then.
const CPUUnbound = kernel.NRCPUs

// offqDisableMax is the largest disable count, (1 << WORK_OFFQ_DISABLE_BITS) - 1.
const offqDisableMax = 1<<16 - 1

// Work is struct work_struct: a deferred function that a workqueue runs in
// process context, once per successful queueing. It is a value users embed
// in their own structs; queueing it allocates nothing. Set it up with Init
// (or Declare) before use, and do not copy it afterwards.
//
// Its PENDING bit is set by whoever queues it and cleared by the worker
// right before the function is called: queueing a pending item returns
// false and changes nothing, queueing a running item queues it again. An
// item never runs on two workers at once (non-reentrancy), also when it is
// queued again from another CPU while it runs.
type Work struct {
	data atomic.Uint64 // dataPending | dataQueued | dataBH | pool id
	fn   Func
	fnID uintptr // identity of fn (find_worker_executing_work matches it)

	// Guarded by the lock of the pool the item is queued on.
	next, prev *Work
	list       *wlist
	pwq        *pwq
	qflags     uint16
	queuedAt   int64 // kernel time of the queueing, when stamped
	stamped    bool  // the queue latency of this queueing is measured

	// Owned by whoever holds PENDING (the kernel keeps it in work->data
	// while the item is off queue).
	disable uint16

	isDelayed bool // embedded in a DelayedWork (set by InitDelayed)
	isBarrier bool // a flush barrier (wq_barrier)
}

// funcID returns the identity of a function value: its funcval pointer,
// which differs between closures.
func funcID(fn Func) uintptr { return *(*uintptr)(unsafe.Pointer(&fn)) }

// Init is INIT_WORK(w, fn): w is idle (not pending, never queued, enabled)
// and runs fn. As in the kernel, initialising an item that is queued or
// running is a bug (CONFIG_DEBUG_OBJECTS_WORK reports it); kdefer does not
// check it.
func Init(w *Work, fn Func) {
	w.data.Store(0)
	w.fn, w.fnID = fn, funcID(fn)
	w.next, w.prev, w.list, w.pwq = nil, nil, nil, nil
	w.qflags, w.disable = 0, 0
	w.isDelayed, w.isBarrier = false, false
}

// Declare is DECLARE_WORK(name, fn): a work item set up with fn. In Go it
// returns the item, to be kept in a variable or struct field:
//
//	var myWork = workqueue.Declare(myWorkFn)
func Declare(fn Func) *Work {
	w := new(Work)
	Init(w, fn)
	return w
}

// FromWork is from_work(var, w, field) / container_of: the value of type T
// in which w is embedded at byte offset off:
//
//	d := workqueue.FromWork[dev](w, unsafe.Offsetof(dev{}.work))
//
// w must really be the field at off of a T. A Go work function can usually
// just capture its owner in a closure instead.
func FromWork[T any](w *Work, off uintptr) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(w), -int(off)))
}

// Pending is work_pending(w): its PENDING bit is set — it is queued, or its
// delayed timer is armed, or someone is about to queue it. A snapshot.
func Pending(w *Work) bool { return w.data.Load()&dataPending != 0 }

// DelayedWork is struct delayed_work: a Work plus the timer that queues it
// after a delay. Embed it and set it up with InitDelayed or
// InitDeferrable. Immediate and delayed queueing share one PENDING bit.
type DelayedWork struct {
	Work
	timer timer.Timer

	// Owned by the PENDING holder: where the timer will queue the item.
	wq  *Workqueue
	cpu int

	// Link on the workqueue's list of armed delayed items (guarded by
	// that workqueue's delayedMu), for Shutdown.
	dnext, dprev *DelayedWork
	onWQ         *Workqueue
}

// InitDelayed is INIT_DELAYED_WORK(dw, fn): dw is idle and runs fn; its
// timer is a TIMER_IRQSAFE timer whose callback (delayed_work_timer_fn)
// queues the item.
func InitDelayed(dw *DelayedWork, fn Func) { initDelayed(dw, fn, 0) }

// InitDeferrable is INIT_DEFERRABLE_WORK(dw, fn): InitDelayed with a
// deferrable timer (TIMER_DEFERRABLE), which does not wake an idle CPU: the
// item is queued at the CPU's next wakeup after its delay.
func InitDeferrable(dw *DelayedWork, fn Func) { initDelayed(dw, fn, timer.FlagDeferrable) }

func initDelayed(dw *DelayedWork, fn Func, flags uint32) {
	Init(&dw.Work, fn)
	dw.isDelayed = true
	dw.wq, dw.cpu = nil, CPUUnbound
	dw.dnext, dw.dprev, dw.onWQ = nil, nil, nil
	timer.Setup(nil, &dw.timer, delayedWorkTimerFn, timer.FlagIRQSafe|flags)
}

// DeclareDelayed is DECLARE_DELAYED_WORK(name, fn).
func DeclareDelayed(fn Func) *DelayedWork {
	dw := new(DelayedWork)
	InitDelayed(dw, fn)
	return dw
}

// DeclareDeferrable is DECLARE_DEFERRABLE_WORK(name, fn).
func DeclareDeferrable(fn Func) *DelayedWork {
	dw := new(DelayedWork)
	InitDeferrable(dw, fn)
	return dw
}

// ToDelayedWork is to_delayed_work(w): the DelayedWork whose Work w is. A
// delayed work function receives &dw.Work and finds its item with it. It
// returns nil for an item that is not part of a DelayedWork.
func ToDelayedWork(w *Work) *DelayedWork {
	if !w.isDelayed {
		return nil
	}
	return (*DelayedWork)(unsafe.Pointer(w))
}

// DelayedWorkPending is delayed_work_pending(dw): work_pending(&dw->work).
func DelayedWorkPending(dw *DelayedWork) bool { return Pending(&dw.Work) }

// Timer returns the delayed item's timer (&dw->timer), e.g. to read its
// expiry with timer.Expires.
func (dw *DelayedWork) Timer() *timer.Timer { return &dw.timer }

// RCUWork is struct rcu_work: a work item queued after an RCU grace period.
// kdefer has no RCU; QueueRCUWork queues it at once (a grace period with no
// readers ends immediately).
type RCUWork struct {
	Work
}

// ExecuteWork is struct execute_work, the storage ExecuteInProcessContext
// needs when it has to defer the function.
type ExecuteWork struct {
	Work
}

// wlist is a list of work items (a list_head): a pool's worklist, a pwq's
// inactive list, a worker's scheduled list. Items link through Work.next
// and Work.prev; each item is on at most one list, which it records.
type wlist struct {
	head, tail *Work
}

func (l *wlist) empty() bool { return l.head == nil }

// insertBefore links w before at, or at the tail when at is nil
// (list_add_tail(&w->entry, at)).
func (l *wlist) insertBefore(at, w *Work) {
	w.list = l
	if at == nil {
		w.prev, w.next = l.tail, nil
		if l.tail != nil {
			l.tail.next = w
		} else {
			l.head = w
		}
		l.tail = w
		return
	}
	w.next, w.prev = at, at.prev
	if at.prev != nil {
		at.prev.next = w
	} else {
		l.head = w
	}
	at.prev = w
}

func (l *wlist) pushBack(w *Work) { l.insertBefore(nil, w) }

// remove unlinks w from l (list_del_init).
func (l *wlist) remove(w *Work) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.next, w.prev, w.list = nil, nil, nil
}

// popFront unlinks w, the head of l.
func (l *wlist) popFront(w *Work) {
	l.head = w.next
	if w.next != nil {
		w.next.prev = nil
	} else {
		l.tail = nil
	}
	w.next, w.list = nil, nil
}

// unlink removes w from whatever list it is on.
func (w *Work) unlink() {
	if w.list != nil {
		w.list.remove(w)
	}
}

// moveLinkedWorks is move_linked_works(): it moves w and the items linked
// to it (each with qLinked set in its predecessor) to the tail of to, and
// returns the item after the last one moved.
func moveLinkedWorks(w *Work, to *wlist) *Work {
	for w != nil {
		next := w.next
		linked := w.qflags&qLinked != 0
		w.unlink()
		to.pushBack(w)
		if !linked {
			return next
		}
		w = next
	}
	return nil
}

func (w *Work) color() int { return int(w.qflags&qColorMask) >> qColorSh }

func colorFlags(color int) uint16 { return uint16(color) << qColorSh }

func workNextColor(color int) int { return (color + 1) % NrColors }
