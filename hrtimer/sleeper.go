package hrtimer

import (
	"github.com/kdefer/kdefer/kernel"
)

// Sleeper is struct hrtimer_sleeper: a timer that wakes a task. Its
// callback (hrtimer_wakeup) sets Task to nil, then wakes the task, so
// after cancelling the timer a nil Task means "the timer expired".
//
// Task is written by the callback: read it from the sleeping task only
// after Cancel has returned (Cancel orders the callback's write before its
// return), as ScheduleHrtimeoutRange does.
type Sleeper struct {
	Timer HRTimer
	Task  *kernel.Task
}

// InitSleeper is hrtimer_setup_sleeper_on_stack() (hrtimer_init_sleeper
// before v6.13): it sets up s.Timer on clock with mode (SOFT/HARD bits as
// for Setup; without SOFT the wakeup runs in hard interrupt context, as on
// a !PREEMPT_RT kernel) and makes the current task the one to wake.
//
// Difference: it takes the caller's context, where the kernel reads
// current.
func InitSleeper(c *kernel.Ctx, s *Sleeper, clock ClockID, mode Mode) {
	Setup(&s.Timer, hrtimerWakeup, clock, mode)
	s.Timer.sleeper = s
	s.Task = c.Current()
}

// StartExpires is hrtimer_sleeper_start_expires(): it starts the sleeper's
// timer with the expiry already set on it (SetExpiresRangeNs).
func StartExpires(c *kernel.Ctx, s *Sleeper, mode Mode) {
	StartTimerExpires(c, &s.Timer, mode)
}

// hrtimerWakeup is hrtimer_wakeup(), the sleeper's callback.
func hrtimerWakeup(c *kernel.Ctx, t *HRTimer) HRTimerRestart {
	s := t.sleeper
	task := s.Task
	s.Task = nil
	if task != nil {
		c.Kernel().WakeUpProcess(task)
	}
	return NoRestart
}

// ScheduleHrtimeoutRange is schedule_hrtimeout_range(): the calling task
// sleeps until the CLOCK_MONOTONIC time *expires (absolute with ModeAbs,
// relative to now with ModeRel) has passed, with deltaNs of slack: the
// wakeup happens somewhere in [*expires, *expires+deltaNs], coalesced with
// another expiry when one falls in the range. Set the task state first
// (kernel.SetCurrentState), as in the kernel:
//
//   - TASK_UNINTERRUPTIBLE: it sleeps at least until *expires unless it is
//     woken explicitly (WakeUpProcess).
//   - TASK_INTERRUPTIBLE: a signal or an explicit wakeup may end it early.
//   - TASK_RUNNING: it returns at once (-EINTR, the timer did not expire).
//
// It returns 0 when the timer expired and -EINTR when the task was woken
// before. A *expires of 0 returns 0 at once (the task state is set back to
// TASK_RUNNING); a nil expires sleeps with no timer until woken and
// returns -EINTR. The task state is TASK_RUNNING on return.
//
// Difference: it starts with might_sleep(): in atomic context it prints
// the kernel's "BUG: sleeping function called from invalid context"
// report and returns 0 (nil expires: -EINTR) without sleeping, so that a
// usleep_range loop built on it ends. The sleeper lives on the heap (one
// allocation per sleep; the kernel's is on the stack).
func ScheduleHrtimeoutRange(c *kernel.Ctx, expires *int64, deltaNs int64, mode Mode) int {
	return ScheduleHrtimeoutRangeClock(c, expires, deltaNs, mode, ClockMonotonic)
}

// ScheduleHrtimeout is schedule_hrtimeout(): ScheduleHrtimeoutRange with no
// slack.
func ScheduleHrtimeout(c *kernel.Ctx, expires *int64, mode Mode) int {
	return ScheduleHrtimeoutRange(c, expires, 0, mode)
}

// ScheduleHrtimeoutRangeClock is schedule_hrtimeout_range_clock():
// ScheduleHrtimeoutRange on the given clock.
func ScheduleHrtimeoutRangeClock(c *kernel.Ctx, expires *int64, deltaNs int64, mode Mode, clock ClockID) int {
	// Zero timeout: nothing to wait for, whatever the mode.
	if expires != nil && *expires == 0 {
		if c.InTask() { // legal in any context: nothing sleeps
			kernel.SetCurrentState(c, kernel.TaskRunning)
		}
		return 0
	}
	if !kernel.MightSleep(c) {
		if c.InTask() {
			kernel.SetCurrentState(c, kernel.TaskRunning)
		}
		if expires == nil {
			return -int(kernel.EINTR)
		}
		return 0
	}
	// A nil expires means "infinite".
	if expires == nil {
		kernel.Schedule(c)
		return -int(kernel.EINTR)
	}
	s := &Sleeper{}
	InitSleeper(c, s, clock, mode)
	SetExpiresRangeNs(&s.Timer, *expires, deltaNs)
	StartExpires(c, s, mode)
	// The kernel skips schedule() when the timer already fired (t.task
	// is NULL). Reading Task here would race with the callback; schedule()
	// is equivalent, since the wakeup has set the task running and it
	// then only yields.
	kernel.Schedule(c)
	Cancel(c, &s.Timer)
	kernel.SetCurrentState(c, kernel.TaskRunning)
	if s.Task == nil {
		return 0
	}
	return -int(kernel.EINTR)
}
