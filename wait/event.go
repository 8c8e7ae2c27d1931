package wait

import (
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
)

// errRestartSys is -ERESTARTSYS, the value an interrupted wait returns.
const errRestartSys = -int64(kernel.ERESTARTSYS)

// isInterruptible is ___wait_is_interruptible(state): a sleep in state can
// be ended by a signal.
func isInterruptible(state kernel.TaskState) bool {
	return state&(kernel.TaskInterruptible|kernel.TaskWakekill) != 0
}

// failRet is what a wait returns when kdefer cannot let it sleep (atomic
// context, or a kernel that is shutting down) and its condition is false:
// -ERESTARTSYS where a signal could have ended the sleep, so that the
// caller unwinds as from a signal; 0 otherwise, which a timeout form's
// caller reads as "timed out with the condition false".
func failRet(state kernel.TaskState) int64 {
	if isInterruptible(state) {
		return errRestartSys
	}
	return 0
}

// condTimeout is ___wait_cond_timeout(cond) for the timeout forms: the
// condition counts as met when it is true or the timeout (*ret) has run
// out, and a condition found true once the timeout ran out turns *ret
// into 1, so that success is never reported as 0.
func condTimeout(cond func() bool, ret *int64) bool {
	ok := cond()
	if ok && *ret == 0 {
		*ret = 1
	}
	return ok || *ret == 0
}

// sleep is schedule_timeout(timeout) (schedule() for
// delay.MaxScheduleTimeout) for a task that has set its sleeping state,
// with the test __schedule makes first: a task about to sleep in a state
// that a pending signal may interrupt stays TASK_RUNNING. Without it a
// signal sent after the wait's signal check but before the state was set
// would find the task running, wake nothing, and be slept through.
func sleep(c *kernel.Ctx, timeout int64) int64 {
	if c.SignalPendingState(c.Current().State()) {
		kernel.SetCurrentState(c, kernel.TaskRunning)
		return timeout
	}
	return delay.ScheduleTimeout(c, timeout)
}

// waitEvent is ___wait_event(q, cond, state, exclusive, ret, cmd) with cmd
// schedule() (timed false) or __ret = schedule_timeout(__ret) (timed
// true). It returns the macro's __ret: 0 or the timeout rules' value on
// success, -ERESTARTSYS when a signal allowed by state is pending.
func waitEvent(c *kernel.Ctx, q *Queue, cond func() bool, state kernel.TaskState, exclusive bool, ret int64, timed bool) int64 {
	var e Entry
	flags := uint32(0)
	if exclusive {
		flags = FlagExclusive
	}
	InitWaitEntry(c, &e, flags)
	// A condition that panics must not leave e (on this goroutine's
	// stack) linked on q while the task dies of the Oops.
	finished := false
	defer func() {
		if !finished {
			FinishWait(c, q, &e)
		}
	}()
	met := func() bool {
		if timed {
			return condTimeout(cond, &ret)
		}
		return cond()
	}
	for {
		intr := PrepareToWaitEvent(c, q, &e, state)
		if met() {
			break
		}
		if isInterruptible(state) && intr != 0 {
			// prepare_to_wait_event already took e off q.
			finished = true
			kernel.SetCurrentState(c, kernel.TaskRunning)
			return intr
		}
		if c.Dying() {
			// No task sleeps any more: give up as failRet documents.
			finished = true
			FinishWait(c, q, &e)
			return failRet(state)
		}
		if timed {
			ret = sleep(c, ret)
		} else {
			sleep(c, delay.MaxScheduleTimeout)
		}
		if met() {
			break
		}
	}
	finished = true
	FinishWait(c, q, &e)
	return ret
}

// event is the body of the wait_event macros without a timeout:
// might_sleep(), the fast-path test, then ___wait_event.
func event(c *kernel.Ctx, q *Queue, cond func() bool, state kernel.TaskState, exclusive bool) int {
	canSleep := kernel.MightSleep(c)
	if cond() {
		return 0
	}
	if !canSleep {
		return int(failRet(state))
	}
	return int(waitEvent(c, q, cond, state, exclusive, 0, false))
}

// eventTimeout is the body of the wait_event_*timeout macros.
func eventTimeout(c *kernel.Ctx, q *Queue, cond func() bool, state kernel.TaskState, exclusive bool, timeout int64) int64 {
	canSleep := kernel.MightSleep(c)
	ret := timeout
	if condTimeout(cond, &ret) {
		return ret
	}
	if !canSleep {
		return failRet(state)
	}
	return waitEvent(c, q, cond, state, exclusive, timeout, true)
}

// Event is wait_event(q, cond): the calling task sleeps in
// TASK_UNINTERRUPTIBLE until cond() is true, testing it each time q is woken
// up. Signals do not end the wait. Whoever makes cond true must then wake q
// (WakeUp, WakeUpAll…). cond is called in the waiting task, concurrently
// with the code that changes what it reads: use atomics or a lock there,
// as the kernel uses READ_ONCE.
//
// In atomic context it reports "BUG: sleeping function called from invalid
// context" and, if cond is false, returns without waiting. While the kernel
// shuts down it returns as soon as it is woken, cond true or not. If cond
// panics, the waiter is taken off q before the panic goes on (the task then
// dies with an Oops); this holds for every wait_event form.
func Event(c *kernel.Ctx, q *Queue, cond func() bool) {
	event(c, q, cond, kernel.TaskUninterruptible, false)
}

// EventTimeout is wait_event_timeout(q, cond, timeout): Event for at most
// timeout jiffies. It returns
//
//   - 0 if cond was false when the timeout elapsed,
//   - 1 if cond was true when it was tested after the timeout elapsed,
//   - otherwise the jiffies that were left (at least 1) when cond was
//     found true.
//
// A timeout of 0 only tests cond (0 or 1); delay.MaxScheduleTimeout waits
// without limit (and returns it on success). In atomic context, or when
// woken by the kernel's shutdown, it returns 0 if cond is false.
func EventTimeout(c *kernel.Ctx, q *Queue, cond func() bool, timeout int64) int64 {
	return eventTimeout(c, q, cond, kernel.TaskUninterruptible, false, timeout)
}

// EventInterruptible is wait_event_interruptible(q, cond): the calling task
// sleeps in TASK_INTERRUPTIBLE until cond() is true or a signal is pending.
// It returns 0 when cond is true, -ERESTARTSYS (-int(kernel.ERESTARTSYS))
// when a signal interrupted the wait — the signal is then also visible as
// the cancellation of c (context.Cause(c) is a *kernel.SignalError).
// kthread_stop interrupts it too (TIF_NOTIFY_SIGNAL makes signal_pending
// true), so a kernel thread's loop around it must test
// kernel.KthreadShouldStop, as kernel code does.
//
// In atomic context (reported) and when the kernel shuts down it returns
// -ERESTARTSYS if cond is false, so that callers unwind as from a signal.
func EventInterruptible(c *kernel.Ctx, q *Queue, cond func() bool) int {
	return event(c, q, cond, kernel.TaskInterruptible, false)
}

// EventInterruptibleTimeout is wait_event_interruptible_timeout(q, cond,
// timeout): EventInterruptible for at most timeout jiffies. It returns 0
// (timed out, cond false), 1 (cond true after the timeout elapsed), the
// remaining jiffies (≥1, cond true before) or -ERESTARTSYS (signal).
func EventInterruptibleTimeout(c *kernel.Ctx, q *Queue, cond func() bool, timeout int64) int64 {
	return eventTimeout(c, q, cond, kernel.TaskInterruptible, false, timeout)
}

// EventInterruptibleExclusive is wait_event_interruptible_exclusive(q,
// cond): EventInterruptible as an exclusive waiter (queued at the tail; a
// WakeUp wakes only the first such waiter).
func EventInterruptibleExclusive(c *kernel.Ctx, q *Queue, cond func() bool) int {
	return event(c, q, cond, kernel.TaskInterruptible, true)
}

// EventKillable is wait_event_killable(q, cond): the task sleeps in
// TASK_KILLABLE until cond() is true or a fatal signal (SIGKILL) is pending.
// It returns 0 or -ERESTARTSYS; other signals neither wake nor interrupt it.
func EventKillable(c *kernel.Ctx, q *Queue, cond func() bool) int {
	return event(c, q, cond, kernel.TaskKillable, false)
}

// EventKillableTimeout is wait_event_killable_timeout(q, cond, timeout):
// EventKillable for at most timeout jiffies, with EventTimeout's return
// values or -ERESTARTSYS on a fatal signal.
func EventKillableTimeout(c *kernel.Ctx, q *Queue, cond func() bool, timeout int64) int64 {
	return eventTimeout(c, q, cond, kernel.TaskKillable, false, timeout)
}

// EventKillableExclusive is wait_event_killable_exclusive(q, cond):
// EventKillable as an exclusive waiter.
func EventKillableExclusive(c *kernel.Ctx, q *Queue, cond func() bool) int {
	return event(c, q, cond, kernel.TaskKillable, true)
}

// EventIdle is wait_event_idle(q, cond): Event in TASK_IDLE (uninterruptible
// but not counted in the load average; ps shows I).
func EventIdle(c *kernel.Ctx, q *Queue, cond func() bool) {
	event(c, q, cond, kernel.TaskIdle, false)
}

// EventIdleExclusive is wait_event_idle_exclusive(q, cond): EventIdle as an
// exclusive waiter.
func EventIdleExclusive(c *kernel.Ctx, q *Queue, cond func() bool) {
	event(c, q, cond, kernel.TaskIdle, true)
}

// EventIdleTimeout is wait_event_idle_timeout(q, cond, timeout): EventIdle
// for at most timeout jiffies, with EventTimeout's return values.
func EventIdleTimeout(c *kernel.Ctx, q *Queue, cond func() bool, timeout int64) int64 {
	return eventTimeout(c, q, cond, kernel.TaskIdle, false, timeout)
}

// EventIdleExclusiveTimeout is wait_event_idle_exclusive_timeout(q, cond,
// timeout).
func EventIdleExclusiveTimeout(c *kernel.Ctx, q *Queue, cond func() bool, timeout int64) int64 {
	return eventTimeout(c, q, cond, kernel.TaskIdle, true, timeout)
}

// EventState is wait_event_state(q, cond, state): sleep in state until cond
// is true or, when state allows it (TASK_INTERRUPTIBLE, or TASK_WAKEKILL
// for SIGKILL), a signal is pending. It returns 0 or -ERESTARTSYS.
func EventState(c *kernel.Ctx, q *Queue, cond func() bool, state kernel.TaskState) int {
	return event(c, q, cond, state, false)
}

// EventStateExclusive is wait_event_state_exclusive(q, cond, state).
func EventStateExclusive(c *kernel.Ctx, q *Queue, cond func() bool, state kernel.TaskState) int {
	return event(c, q, cond, state, true)
}
