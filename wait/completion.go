package wait

import (
	"math"
	"sync"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
)

// completeAllDone is UINT_MAX, the done count of a completion after
// CompleteAll: every wait passes and none consumes it.
const completeAllDone = math.MaxUint32

// Completion is struct completion (include/linux/completion.h,
// kernel/sched/completion.c): a count of "done" events and a simple wait
// queue (swait) of the tasks waiting for one. The zero value is an
// initialised completion with nothing done, like DECLARE_COMPLETION or
// init_completion. A Completion must not be copied once used.
//
// Complete and CompleteAll may be called from any context — a task, a
// softirq (timer callback, tasklet) or a hardirq handler — and from
// goroutines outside the kernel; they never sleep. The waits sleep and are
// for process context only.
type Completion struct {
	// mu is x->wait.lock; it guards done and the waiter list, and is
	// never held across a sleep.
	mu   sync.Mutex
	done uint32
	list dlist[swaiter]
}

// swaiter is struct swait_queue: one task waiting on a completion.
type swaiter struct {
	task   *kernel.Task
	lk     links[swaiter]
	queued bool
}

func (w *swaiter) lnk() *links[swaiter] { return &w.lk }

// addTail is __prepare_to_swait's list_add_tail. The caller holds x.mu.
func (x *Completion) addTail(w *swaiter) {
	pushBack(&x.list, w)
	w.queued = true
}

// unlink is list_del_init. The caller holds x.mu and w is queued.
func (x *Completion) unlink(w *swaiter) {
	unlink(&x.list, w)
	w.queued = false
}

// wakeOneLocked is swake_up_locked: the first waiter leaves the queue and
// its task is woken (TASK_NORMAL). The caller holds x.mu.
func (x *Completion) wakeOneLocked() {
	w := x.list.head
	if w == nil {
		return
	}
	w.task.Kernel().WakeUpState(w.task, kernel.TaskNormal)
	x.unlink(w)
}

// Init is init_completion(x): nothing done, no waiters. It must not be
// called while tasks wait on x.
func (x *Completion) Init() {
	x.mu.Lock()
	x.done = 0
	x.list = dlist[swaiter]{}
	x.mu.Unlock()
}

// Reinit is reinit_completion(x): the done count goes back to 0 (also
// after CompleteAll), so that x can be waited for again. Waiters are left
// alone.
func (x *Completion) Reinit() {
	x.mu.Lock()
	x.done = 0
	x.mu.Unlock()
}

// Complete is complete(x): one more event is done (unless CompleteAll has
// made the count UINT_MAX), and the longest-waiting task, if any, is woken
// to consume it — waiters are served in FIFO order. Each Complete lets
// exactly one wait pass, whether it happens before or after the wait
// starts.
func (x *Completion) Complete() {
	x.mu.Lock()
	if x.done != completeAllDone {
		x.done++
	}
	x.wakeOneLocked()
	x.mu.Unlock()
}

// CompleteAll is complete_all(x): the done count becomes UINT_MAX and every
// waiter is woken. Until Reinit, every wait on x passes at once without
// consuming anything.
func (x *Completion) CompleteAll() {
	x.mu.Lock()
	x.done = completeAllDone
	for x.list.head != nil {
		x.wakeOneLocked()
	}
	x.mu.Unlock()
}

// wait is __wait_for_common with do_wait_for_common: might_sleep, then,
// if nothing is done, queue at the tail and sleep in state with
// schedule_timeout until done or timed out, checking signal_pending_state
// before each sleep; then consume one done (unless UINT_MAX). It returns
// -ERESTARTSYS (signal), 0 (timed out, or see failRet) or the remaining
// timeout, at least 1, on success ("timeout ?: 1").
func (x *Completion) wait(c *kernel.Ctx, timeout int64, state kernel.TaskState) int64 {
	canSleep := kernel.MightSleep(c)
	x.mu.Lock()
	if x.done == 0 {
		if !canSleep {
			x.mu.Unlock()
			return failRet(state)
		}
		w := &swaiter{task: c.Current()}
		for {
			if c.SignalPendingState(state) {
				timeout = errRestartSys
				break
			}
			if c.Dying() {
				timeout = failRet(state)
				break
			}
			if !w.queued {
				x.addTail(w)
			}
			kernel.SetCurrentState(c, state)
			x.mu.Unlock()
			timeout = sleep(c, timeout)
			x.mu.Lock()
			if x.done != 0 || timeout == 0 {
				break
			}
		}
		// __finish_swait
		kernel.SetCurrentState(c, kernel.TaskRunning)
		if w.queued {
			x.unlink(w)
		}
		if x.done == 0 {
			x.mu.Unlock()
			return timeout
		}
	}
	if x.done != completeAllDone {
		x.done--
	}
	x.mu.Unlock()
	if timeout == 0 {
		return 1
	}
	return timeout
}

// WaitFor is wait_for_completion(x): the calling task sleeps in
// TASK_UNINTERRUPTIBLE until x is done, then consumes one done event (none
// after CompleteAll). Signals do not end the wait.
//
// In atomic context it reports "BUG: sleeping function called from invalid
// context"; it still consumes an available done event, and otherwise
// returns at once without one. While the kernel shuts down it returns as
// soon as it is woken, done or not.
func (x *Completion) WaitFor(c *kernel.Ctx) {
	x.wait(c, delay.MaxScheduleTimeout, kernel.TaskUninterruptible)
}

// WaitForTimeout is wait_for_completion_timeout(x, timeout): WaitFor for at
// most timeout jiffies. It returns 0 if it timed out, otherwise the jiffies
// left, at least 1 (also when x was done as the timeout ran out, or when
// the timeout was 0 and x was already done). In atomic context, or when the
// kernel shuts down, it returns 0 if x is not done.
func (x *Completion) WaitForTimeout(c *kernel.Ctx, timeout int64) int64 {
	return x.wait(c, timeout, kernel.TaskUninterruptible)
}

// WaitForIO is wait_for_completion_io(x): WaitFor. kdefer keeps no iowait
// accounting, so it behaves exactly as WaitFor.
func (x *Completion) WaitForIO(c *kernel.Ctx) {
	x.wait(c, delay.MaxScheduleTimeout, kernel.TaskUninterruptible)
}

// WaitForIOTimeout is wait_for_completion_io_timeout(x, timeout):
// WaitForTimeout (no iowait accounting).
func (x *Completion) WaitForIOTimeout(c *kernel.Ctx, timeout int64) int64 {
	return x.wait(c, timeout, kernel.TaskUninterruptible)
}

// WaitForInterruptible is wait_for_completion_interruptible(x): WaitFor in
// TASK_INTERRUPTIBLE. It returns 0 once a done event is consumed, or
// -ERESTARTSYS (-int(kernel.ERESTARTSYS)) if a signal is pending, without
// consuming anything. In atomic context (reported) and when the kernel
// shuts down it returns -ERESTARTSYS if x is not done.
func (x *Completion) WaitForInterruptible(c *kernel.Ctx) int {
	if t := x.wait(c, delay.MaxScheduleTimeout, kernel.TaskInterruptible); t == errRestartSys {
		return int(t)
	}
	return 0
}

// WaitForInterruptibleTimeout is
// wait_for_completion_interruptible_timeout(x, timeout): -ERESTARTSYS if
// interrupted by a signal, 0 if timed out, else the jiffies left (≥1).
func (x *Completion) WaitForInterruptibleTimeout(c *kernel.Ctx, timeout int64) int64 {
	return x.wait(c, timeout, kernel.TaskInterruptible)
}

// WaitForKillable is wait_for_completion_killable(x): WaitFor in
// TASK_KILLABLE. It returns 0, or -ERESTARTSYS if a fatal signal (SIGKILL)
// is pending; other signals do not interrupt it.
func (x *Completion) WaitForKillable(c *kernel.Ctx) int {
	if t := x.wait(c, delay.MaxScheduleTimeout, kernel.TaskKillable); t == errRestartSys {
		return int(t)
	}
	return 0
}

// WaitForKillableTimeout is wait_for_completion_killable_timeout(x,
// timeout): -ERESTARTSYS on a fatal signal, 0 if timed out, else the
// jiffies left (≥1).
func (x *Completion) WaitForKillableTimeout(c *kernel.Ctx, timeout int64) int64 {
	return x.wait(c, timeout, kernel.TaskKillable)
}

// TryWaitFor is try_wait_for_completion(x): it consumes a done event if
// one is available without blocking and reports whether it did (true
// after CompleteAll, consuming nothing). It may be called in any context.
func (x *Completion) TryWaitFor() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == 0 {
		return false
	}
	if x.done != completeAllDone {
		x.done--
	}
	return true
}

// Done is completion_done(x): false if a wait would block (nothing done),
// true otherwise. It consumes nothing and may be called in any context.
// As in the kernel it waits for a concurrent Complete to release x, so x
// may be freed once Done reports true.
func (x *Completion) Done() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.done != 0
}
