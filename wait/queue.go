package wait

import (
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
)

// Wait-queue entry flags (wait_queue_entry::flags, include/linux/wait.h).
const (
	// FlagExclusive is WQ_FLAG_EXCLUSIVE: a wake-one waiter. Each woken
	// exclusive entry uses up one of a wakeup's nr_exclusive.
	FlagExclusive uint32 = 0x01
	// FlagWoken is WQ_FLAG_WOKEN: set by WokenWakeFunction, consumed by
	// WaitWoken.
	FlagWoken uint32 = 0x02
)

// WakeFunc is wait_queue_func_t: the function a wakeup calls for each entry
// it visits, under the queue's lock. c is the waker's context (process,
// softirq or hardirq; nil when the waker is not running in the kernel),
// mode the task states to wake (kernel.TaskNormal, kernel.TaskInterruptible),
// wakeFlags the scheduler's wake flags (always 0 in kdefer) and key the
// wakeup's key (WakeUpPoll's mask, or nil).
//
// It returns non-zero if it woke its waiter (which then counts against an
// exclusive wakeup's nr when the entry is exclusive), 0 if not, and a
// negative value to stop the walk.
//
// It runs under the queue's lock: it must not sleep, and must not wake up,
// add to or remove from the same queue except by unlinking its own entry
// (as AutoremoveWakeFunction does). Where a kernel wake function finds its
// owner with container_of, a Go one is a closure that captures it.
type WakeFunc func(c *kernel.Ctx, e *Entry, mode kernel.TaskState, wakeFlags int, key any) int

// Queue is struct wait_queue_head (wait_queue_head_t): a lock and a list of
// waiters. The zero value is an empty queue ready to use, like
// DECLARE_WAIT_QUEUE_HEAD; Init re-initialises one. A Queue must not be
// copied once used.
//
// Non-exclusive waiters are added at the head of the list and exclusive
// ones at the tail, so a wakeup that walks from the head wakes every
// non-exclusive waiter before it reaches the exclusive ones, and exclusive
// waiters are woken in FIFO order.
type Queue struct {
	// mu is wq_head->lock. It guards the list and the links (q, lk) of
	// every entry on it, and is held only for short, non-sleeping
	// sections: never across a Schedule.
	mu   sync.Mutex
	list dlist[Entry]
}

// Entry is struct wait_queue_entry (wait_queue_entry_t): one waiter on a
// Queue — a task and the wake function that wakes it. Set it up with
// InitWait (DEFINE_WAIT), InitEntry (DECLARE_WAITQUEUE), InitWaitFunc
// (DEFINE_WAIT_FUNC) or InitFuncEntry (init_waitqueue_func_entry). An
// entry is on at most one queue at a time and must not be copied while it
// is on one. A zero Entry has no task and wakes nobody.
type Entry struct {
	flags atomic.Uint32 // FlagExclusive, FlagWoken
	task  *kernel.Task  // wq_entry->private
	fn    WakeFunc

	// Guarded by q.mu of the queue the entry is on; q is nil when the
	// entry is on no queue (list_empty(&wq_entry->entry)).
	q  *Queue
	lk links[Entry]
}

func (e *Entry) lnk() *links[Entry] { return &e.lk }

// Task returns the task the entry wakes (wq_entry->private), or nil.
func (e *Entry) Task() *kernel.Task { return e.task }

// Flags returns the entry's flags (FlagExclusive, FlagWoken).
func (e *Entry) Flags() uint32 { return e.flags.Load() }

// Init is init_waitqueue_head(q): it makes q an empty queue. It must not be
// called while q has waiters.
func Init(q *Queue) {
	q.mu.Lock()
	q.list = dlist[Entry]{}
	q.mu.Unlock()
}

// InitEntry is init_waitqueue_entry(e, p) (DECLARE_WAITQUEUE): e wakes p
// with DefaultWakeFunction and stays on the queue when woken.
func InitEntry(e *Entry, p *kernel.Task) {
	e.flags.Store(0)
	e.task = p
	e.fn = DefaultWakeFunction
}

// InitFuncEntry is init_waitqueue_func_entry(e, fn): e has no task and its
// wakeups call fn (a callback entry, as poll and epoll use).
func InitFuncEntry(e *Entry, fn WakeFunc) {
	e.flags.Store(0)
	e.task = nil
	e.fn = fn
}

// InitWait is init_wait(e) (DEFINE_WAIT): e wakes the calling task with
// AutoremoveWakeFunction, which also takes it off the queue.
func InitWait(c *kernel.Ctx, e *Entry) { InitWaitFunc(c, e, AutoremoveWakeFunction) }

// InitWaitFunc is init_wait_func(e, fn) (DEFINE_WAIT_FUNC): e wakes the
// calling task through fn.
func InitWaitFunc(c *kernel.Ctx, e *Entry, fn WakeFunc) {
	e.flags.Store(0)
	e.task = c.Current()
	e.fn = fn
	e.q, e.lk = nil, links[Entry]{}
}

// InitWaitEntry is init_wait_entry(e, flags), the entry set-up of the
// wait_event macros: the calling task, AutoremoveWakeFunction, and flags
// (0 or FlagExclusive).
func InitWaitEntry(c *kernel.Ctx, e *Entry, flags uint32) {
	InitWait(c, e)
	e.flags.Store(flags)
}

// Active is waitqueue_active(q): whether q has waiters. It is a snapshot,
// racy without the ordering the kernel's comment describes: a waker that
// tests it must make the condition true first.
func Active(q *Queue) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.list.head != nil
}

// HasSleeper is wq_has_sleeper(q): Active with the barrier the kernel adds
// (the queue's lock provides it here).
func HasSleeper(q *Queue) bool { return Active(q) }

// HasSingleSleeper is wq_has_single_sleeper(q): exactly one waiter.
func HasSingleSleeper(q *Queue) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.list.head != nil && q.list.head == q.list.tail
}

// addHead is __add_wait_queue. The caller holds q.mu.
func (q *Queue) addHead(e *Entry) {
	e.q = q
	pushFront(&q.list, e)
}

// addTail is __add_wait_queue_entry_tail. The caller holds q.mu.
func (q *Queue) addTail(e *Entry) {
	e.q = q
	pushBack(&q.list, e)
}

// unlink is list_del_init. The caller holds q.mu and e is on q.
func (q *Queue) unlink(e *Entry) {
	unlink(&q.list, e)
	e.q = nil
}

// Add is add_wait_queue(q, e): e becomes a non-exclusive waiter at the head
// of q.
func Add(q *Queue, e *Entry) {
	q.mu.Lock()
	e.flags.And(^FlagExclusive)
	q.addHead(e)
	q.mu.Unlock()
}

// AddExclusive is add_wait_queue_exclusive(q, e): e becomes an exclusive
// waiter at the tail of q.
func AddExclusive(q *Queue, e *Entry) {
	q.mu.Lock()
	e.flags.Or(FlagExclusive)
	q.addTail(e)
	q.mu.Unlock()
}

// Remove is remove_wait_queue(q, e): e leaves q. Removing an entry that is
// not on q does nothing (the kernel would corrupt its list).
func Remove(q *Queue, e *Entry) {
	q.mu.Lock()
	if e.q == q {
		q.unlink(e)
	}
	q.mu.Unlock()
}

// PrepareToWait is prepare_to_wait(q, e, state): it queues e as a
// non-exclusive waiter at the head of q unless it is already queued, and
// sets the calling task's state, both under q's lock. Test the condition
// next, then Schedule, then FinishWait.
func PrepareToWait(c *kernel.Ctx, q *Queue, e *Entry, state kernel.TaskState) {
	q.mu.Lock()
	e.flags.And(^FlagExclusive)
	if e.q == nil {
		q.addHead(e)
	}
	kernel.SetCurrentState(c, state)
	q.mu.Unlock()
}

// PrepareToWaitExclusive is prepare_to_wait_exclusive(q, e, state): like
// PrepareToWait with e an exclusive waiter at the tail of q. It reports
// whether q was empty before (the return value of current kernels).
func PrepareToWaitExclusive(c *kernel.Ctx, q *Queue, e *Entry, state kernel.TaskState) bool {
	q.mu.Lock()
	wasEmpty := q.list.head == nil
	e.flags.Or(FlagExclusive)
	if e.q == nil {
		q.addTail(e)
	}
	kernel.SetCurrentState(c, state)
	q.mu.Unlock()
	return wasEmpty
}

// PrepareToWaitEvent is prepare_to_wait_event(q, e, state), the queueing
// step of the wait_event macros. If a signal that state allows is pending
// (kernel.SignalPendingState) it takes e off q and returns -ERESTARTSYS, so
// that an exclusive waiter that gives up cannot swallow a wakeup meant for
// another. Otherwise it queues e (exclusive at the tail, non-exclusive at
// the head) unless already queued, sets the task's state, and returns 0.
func PrepareToWaitEvent(c *kernel.Ctx, q *Queue, e *Entry, state kernel.TaskState) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if c.SignalPendingState(state) {
		if e.q == q {
			q.unlink(e)
		}
		return -int64(kernel.ERESTARTSYS)
	}
	if e.q == nil {
		if e.flags.Load()&FlagExclusive != 0 {
			q.addTail(e)
		} else {
			q.addHead(e)
		}
	}
	kernel.SetCurrentState(c, state)
	return 0
}

// FinishWait is finish_wait(q, e): the calling task is set back to
// TASK_RUNNING and e is taken off q if a wakeup has not already done so.
func FinishWait(c *kernel.Ctx, q *Queue, e *Entry) {
	kernel.SetCurrentState(c, kernel.TaskRunning)
	q.mu.Lock()
	if e.q == q {
		q.unlink(e)
	}
	q.mu.Unlock()
}

// DefaultWakeFunction is default_wake_function(): try_to_wake_up of the
// entry's task for the states in mode (kernel.Kernel.WakeUpState). It
// returns 1 if the task was woken, 0 if it was not sleeping in one of those
// states (already running, or, for a TASK_INTERRUPTIBLE-only wakeup, in
// TASK_UNINTERRUPTIBLE). The entry stays on its queue.
func DefaultWakeFunction(_ *kernel.Ctx, e *Entry, mode kernel.TaskState, _ int, _ any) int {
	if e.task == nil {
		return 0
	}
	return e.task.Kernel().WakeUpState(e.task, mode)
}

// AutoremoveWakeFunction is autoremove_wake_function(): DefaultWakeFunction,
// and an entry whose task it woke leaves the queue. This is what the
// wait_event family and InitWait use.
func AutoremoveWakeFunction(c *kernel.Ctx, e *Entry, mode kernel.TaskState, wakeFlags int, key any) int {
	ret := DefaultWakeFunction(c, e, mode, wakeFlags, key)
	if ret != 0 && e.q != nil {
		e.q.unlink(e)
	}
	return ret
}

// WokenWakeFunction is woken_wake_function(): it marks the entry FlagWoken,
// then wakes its task like DefaultWakeFunction. Pair it with WaitWoken.
func WokenWakeFunction(c *kernel.Ctx, e *Entry, mode kernel.TaskState, wakeFlags int, key any) int {
	e.flags.Or(FlagWoken)
	return DefaultWakeFunction(c, e, mode, wakeFlags, key)
}

// WaitWoken is wait_woken(e, mode, timeout): the calling task, whose entry
// e (with WokenWakeFunction) is already on a queue, sleeps in state mode
// for up to timeout jiffies (delay.MaxScheduleTimeout: no limit) unless a
// wakeup has marked e FlagWoken since the last WaitWoken, or it is a kthread
// asked to stop. It clears FlagWoken and returns the remaining timeout as
// delay.ScheduleTimeout does (timeout unchanged if it did not sleep).
//
//	wait.InitWaitFunc(c, &e, wait.WokenWakeFunction)
//	wait.Add(&q, &e)
//	for !cond() {
//		timeout = wait.WaitWoken(c, &e, kernel.TaskInterruptible, timeout)
//		...
//	}
//	wait.Remove(&q, &e)
func WaitWoken(c *kernel.Ctx, e *Entry, mode kernel.TaskState, timeout int64) int64 {
	kernel.SetCurrentState(c, mode)
	if e.flags.Load()&FlagWoken == 0 && !kthreadShouldStop(c) {
		timeout = delay.ScheduleTimeout(c, timeout)
	}
	kernel.SetCurrentState(c, kernel.TaskRunning)
	e.flags.And(^FlagWoken)
	return timeout
}

// kthreadShouldStop is wait.c's is_kthread_should_stop(): the caller is a
// kernel thread that kthread_stop() asked to stop.
func kthreadShouldStop(c *kernel.Ctx) bool { return c.KthreadShouldStop() }

// WakeUpCommon is __wake_up(q, mode, nr, key): under q's lock it walks q
// from the head calling each entry's wake function. Every non-exclusive
// entry is visited; each exclusive entry whose function reports a wakeup
// uses up one of nr, and the walk stops when nr reaches 0 (nr == 0 wakes
// every waiter). It returns the number of exclusive waiters woken (the return
// value of current kernels).
//
// c is the waker's context, handed to the wake functions; wakeups are
// legal in any context (task, softirq, hardirq) and never sleep. c may be
// nil when the waker is not running in the kernel: a plain goroutine in
// real time, or the test driving a virtual kernel between runs.
func WakeUpCommon(c *kernel.Ctx, q *Queue, mode kernel.TaskState, nr int, key any) int {
	q.mu.Lock()
	remaining := q.wakeUpLocked(c, mode, nr, 0, key)
	q.mu.Unlock()
	return nr - remaining
}

// wakeUpLocked is __wake_up_common. The caller holds q.mu. It returns the
// exclusive wakeups left over (negative when nr was 0).
func (q *Queue) wakeUpLocked(c *kernel.Ctx, mode kernel.TaskState, nr, wakeFlags int, key any) int {
	for e := q.list.head; e != nil; {
		next := e.lk.next // the wake function may unlink e
		flags := e.flags.Load()
		fn := e.fn
		if fn == nil {
			fn = DefaultWakeFunction
		}
		ret := fn(c, e, mode, wakeFlags, key)
		if ret < 0 {
			break
		}
		if ret != 0 && flags&FlagExclusive != 0 {
			nr--
			if nr == 0 {
				break
			}
		}
		e = next
	}
	return nr
}

// WakeUp is wake_up(q): wake every non-exclusive waiter on q and one
// exclusive waiter, in any sleeping state (TASK_NORMAL). It returns the
// number of exclusive waiters woken (0 or 1). See WakeUpCommon for c.
func WakeUp(c *kernel.Ctx, q *Queue) int { return WakeUpCommon(c, q, kernel.TaskNormal, 1, nil) }

// WakeUpNr is wake_up_nr(q, nr): like WakeUp with up to nr exclusive
// waiters (nr == 0: all of them).
func WakeUpNr(c *kernel.Ctx, q *Queue, nr int) int {
	return WakeUpCommon(c, q, kernel.TaskNormal, nr, nil)
}

// WakeUpAll is wake_up_all(q): wake every waiter, exclusive or not.
func WakeUpAll(c *kernel.Ctx, q *Queue) int { return WakeUpCommon(c, q, kernel.TaskNormal, 0, nil) }

// WakeUpInterruptible is wake_up_interruptible(q): WakeUp for waiters
// sleeping in TASK_INTERRUPTIBLE only. Waiters in TASK_UNINTERRUPTIBLE
// (wait_event, _killable, _idle) are not woken; their entries' wake
// functions report 0, so they use up none of nr.
func WakeUpInterruptible(c *kernel.Ctx, q *Queue) int {
	return WakeUpCommon(c, q, kernel.TaskInterruptible, 1, nil)
}

// WakeUpInterruptibleNr is wake_up_interruptible_nr(q, nr).
func WakeUpInterruptibleNr(c *kernel.Ctx, q *Queue, nr int) int {
	return WakeUpCommon(c, q, kernel.TaskInterruptible, nr, nil)
}

// WakeUpInterruptibleAll is wake_up_interruptible_all(q).
func WakeUpInterruptibleAll(c *kernel.Ctx, q *Queue) int {
	return WakeUpCommon(c, q, kernel.TaskInterruptible, 0, nil)
}

// WakeUpPoll is wake_up_poll(q, mask): WakeUp with the poll event mask as
// the key handed to the wake functions.
func WakeUpPoll(c *kernel.Ctx, q *Queue, mask uint32) int {
	return WakeUpCommon(c, q, kernel.TaskNormal, 1, mask)
}

// WakeUpInterruptiblePoll is wake_up_interruptible_poll(q, mask).
func WakeUpInterruptiblePoll(c *kernel.Ctx, q *Queue, mask uint32) int {
	return WakeUpCommon(c, q, kernel.TaskInterruptible, 1, mask)
}
