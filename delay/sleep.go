package delay

import (
	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timekeeping"
	"github.com/kdefer/kdefer/timer"
)

// MaxScheduleTimeout is MAX_SCHEDULE_TIMEOUT (LONG_MAX): ScheduleTimeout
// with it sleeps without a timer until woken and returns it unchanged.
const MaxScheduleTimeout = jiffies.MaxScheduleTimeout

// ScheduleTimeout is schedule_timeout(timeout): the caller's task sleeps,
// in the state it set beforehand with kernel.SetCurrentState, until it is
// woken or timeout jiffies have passed. It returns 0 if the timeout
// elapsed, otherwise the jiffies remaining (never negative). The task is
// TASK_RUNNING on return.
//
//   - MaxScheduleTimeout: schedule() with no timer; returns the timeout.
//   - a negative timeout: the kernel's error "schedule_timeout: wrong
//     timeout value %lx" with a stack dump; returns 0 at once.
//   - in TASK_RUNNING it does not sleep (the timer is armed and removed).
//   - in atomic context: the might_sleep BUG report, and it returns the
//     timeout at once (kdefer cannot sleep there; the kernel would report
//     "scheduling while atomic" and sleep).
//
// The wakeup timer fires on the wheel, so with a timeout of n ≤ 62 jiffies
// the task wakes n+1 jiffies later (the level-0 round-up).
func ScheduleTimeout(c *kernel.Ctx, timeout int64) int64 {
	if timeout == MaxScheduleTimeout {
		if kernel.MightSleep(c) {
			kernel.Schedule(c)
		} else if c.InTask() {
			kernel.SetCurrentState(c, kernel.TaskRunning)
		}
		return timeout
	}
	if timeout < 0 {
		kernel.Printk(c, printk.LevelErr, "schedule_timeout: wrong timeout value %x\n", uint64(timeout))
		kernel.DumpStack(c)
		if c.InTask() { // the kernel's __set_current_state is silent anywhere
			kernel.SetCurrentState(c, kernel.TaskRunning)
		}
		return 0
	}
	if !kernel.MightSleep(c) {
		if c.InTask() {
			kernel.SetCurrentState(c, kernel.TaskRunning)
		}
		return timeout
	}
	if c.Dying() {
		// Nothing sleeps any more: report the time as elapsed so that
		// loops such as msleep's end and the task can exit.
		kernel.SetCurrentState(c, kernel.TaskRunning)
		return 0
	}
	expire := c.Jiffies() + uint64(timeout)
	st := &processTimer{task: c.Current()}
	timer.Setup(c, &st.t, processTimeout, 0)
	timer.SetExpires(&st.t, expire)
	timer.Add(c, &st.t)
	kernel.Schedule(c)
	timer.DeleteSync(c, &st.t)
	left := int64(expire - c.Jiffies())
	if left < 0 {
		return 0
	}
	return left
}

// processTimer is schedule_timeout's on-stack timer with its task.
type processTimer struct {
	t    timer.Timer
	task *kernel.Task
}

// processTimeout is process_timeout(): wake the sleeping task.
func processTimeout(c *kernel.Ctx, t *timer.Timer) {
	st := timer.ContainerOf[processTimer](t, 0) // t is the first field
	c.Kernel().WakeUpProcess(st.task)
}

// ScheduleTimeoutInterruptible is schedule_timeout_interruptible(): sleep
// in TASK_INTERRUPTIBLE (a signal ends it early).
func ScheduleTimeoutInterruptible(c *kernel.Ctx, timeout int64) int64 {
	return scheduleTimeoutState(c, kernel.TaskInterruptible, timeout)
}

// ScheduleTimeoutKillable is schedule_timeout_killable(): sleep in
// TASK_KILLABLE (only a fatal signal ends it early).
func ScheduleTimeoutKillable(c *kernel.Ctx, timeout int64) int64 {
	return scheduleTimeoutState(c, kernel.TaskKillable, timeout)
}

// ScheduleTimeoutUninterruptible is schedule_timeout_uninterruptible():
// sleep in TASK_UNINTERRUPTIBLE (state D).
func ScheduleTimeoutUninterruptible(c *kernel.Ctx, timeout int64) int64 {
	return scheduleTimeoutState(c, kernel.TaskUninterruptible, timeout)
}

// ScheduleTimeoutIdle is schedule_timeout_idle(): sleep in TASK_IDLE
// (uninterruptible, not counted in the load average).
func ScheduleTimeoutIdle(c *kernel.Ctx, timeout int64) int64 {
	return scheduleTimeoutState(c, kernel.TaskIdle, timeout)
}

func scheduleTimeoutState(c *kernel.Ctx, state kernel.TaskState, timeout int64) int64 {
	// schedule_timeout rejects a negative timeout before anything sleeps
	// (or is interrupted).
	if c.InTask() && timeout >= 0 {
		kernel.SetCurrentState(c, state)
		// A signal already pending ends an interruptible sleep at once,
		// as schedule() does for signal_pending_state().
		if c.SignalPendingState(state) {
			kernel.SetCurrentState(c, kernel.TaskRunning)
			return timeout
		}
	}
	return ScheduleTimeout(c, timeout)
}

// Msleep is msleep(msecs): sleep uninterruptibly for at least msecs
// milliseconds, on the timer wheel (≥v6.12: msecs_to_jiffies(msecs), no
// extra jiffy; msleep(0) returns at once). Slack: up to one jiffy at level 0
// of the wheel, up to 12.5% above.
func Msleep(c *kernel.Ctx, msecs uint32) {
	timeout := int64(c.Kernel().HZ().MsecsToJiffies(msecs))
	if timeout == 0 {
		return // msleep(0) never schedules, so never complains either
	}
	if !kernel.MightSleep(c) {
		return // atomic context: reported, and kdefer cannot sleep here
	}
	for timeout > 0 {
		timeout = ScheduleTimeoutUninterruptible(c, timeout)
	}
}

// MsleepInterruptible is msleep_interruptible(msecs): Msleep in
// TASK_INTERRUPTIBLE that stops when a signal is pending. It returns the
// milliseconds left (jiffies_to_msecs of the remaining timeout), 0 if it
// slept fully. As in the kernel a mere wakeup (not a signal) does not end
// it; kthread_stop() does, since it makes signal_pending() true.
func MsleepInterruptible(c *kernel.Ctx, msecs uint32) uint32 {
	k := c.Kernel()
	timeout := int64(k.HZ().MsecsToJiffies(msecs))
	if timeout == 0 {
		return 0
	}
	if !kernel.MightSleep(c) {
		return msecs
	}
	for timeout > 0 && !c.SignalPending() {
		timeout = ScheduleTimeoutInterruptible(c, timeout)
	}
	return k.HZ().JiffiesToMsecs(uint64(timeout))
}

// Ssleep is ssleep(seconds): Msleep(seconds*1000).
func Ssleep(c *kernel.Ctx, seconds uint32) { Msleep(c, seconds*1000) }

// UsleepRangeState is usleep_range_state(min, max, state): sleep for at
// least min microseconds on an hrtimer that may fire anywhere up to max,
// so that the wakeup can coalesce with another. It never returns before
// min; with max < min it warns once and uses no slack (≥v6.13; kdefer's
// warning also prints the two values, the kernel's WARN_ON_ONCE does not).
//
// In an interruptible or killable state with a signal pending the task
// cannot sleep: the kernel's loop then spins until the hrtimer fires.
// kdefer spins (kernel.Spin) until min has passed, which in virtual time
// moves the clock instead of looping forever.
func UsleepRangeState(c *kernel.Ctx, minUs, maxUs uint64, state kernel.TaskState) {
	if !kernel.MightSleep(c) {
		return
	}
	delta := int64(0)
	if maxUs < minUs {
		kernel.WarnOnce(c, true, "usleep_range: max (%d) < min (%d)\n", maxUs, minUs)
	} else {
		delta = int64(maxUs-minUs) * 1000
	}
	exp := timekeeping.KtimeGet(c) + int64(minUs)*1000
	for {
		if c.InTask() {
			kernel.SetCurrentState(c, state)
		}
		if hrtimer.ScheduleHrtimeoutRange(c, &exp, delta, hrtimer.ModeAbs) == 0 {
			break
		}
		if c.Dying() {
			return // nothing sleeps or fires any more (as Msleep)
		}
		if c.InTask() && c.SignalPendingState(state) {
			if d := exp - timekeeping.KtimeGet(c); d > 0 {
				kernel.Spin(c, d)
			}
			break
		}
	}
}

// UsleepRange is usleep_range(min, max): UsleepRangeState in
// TASK_UNINTERRUPTIBLE.
func UsleepRange(c *kernel.Ctx, minUs, maxUs uint64) {
	UsleepRangeState(c, minUs, maxUs, kernel.TaskUninterruptible)
}

// UsleepRangeIdle is usleep_range_idle() (≈v6.13 rename of
// usleep_idle_range): UsleepRangeState in TASK_IDLE.
func UsleepRangeIdle(c *kernel.Ctx, minUs, maxUs uint64) {
	UsleepRangeState(c, minUs, maxUs, kernel.TaskIdle)
}

// UsleepRangeUpperBound returns USLEEP_RANGE_UPPER_BOUND for the kernel's
// HZ: (TICK_NSEC << 2) / NSEC_PER_USEC, the longest fsleep that still uses
// an hrtimer (4000 µs at HZ=1000, 16000 at 250).
func UsleepRangeUpperBound(k *kernel.Kernel) uint64 { return uint64(k.TickNsec()<<2) / 1000 }

// Fsleep is fsleep(usecs) as of v6.13: usecs ≤ 10 busy-waits (udelay);
// below UsleepRangeUpperBound it is usleep_range(usecs, usecs + usecs/4)
// (at most 25% slack); otherwise msleep(DIV_ROUND_UP(usecs, 1000)).
func Fsleep(c *kernel.Ctx, usecs uint64) {
	switch {
	case usecs <= 10:
		Udelay(c, usecs)
	case usecs < UsleepRangeUpperBound(c.Kernel()):
		UsleepRange(c, usecs, usecs+usecs>>2)
	default:
		Msleep(c, uint32((usecs+999)/1000))
	}
}
