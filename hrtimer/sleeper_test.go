package hrtimer_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

const eintr = -int(kernel.EINTR)

func TestScheduleHrtimeoutRangeReturnsZeroAtExpiryNeverBefore(t *testing.T) {
	k := boot(t, 2, false)
	var ret int
	var start, end, exp int64
	runTask(t, k, func(c *kernel.Ctx) int {
		start = k.Now()
		exp = start + 1*ms + 3
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		ret = hrtimer.ScheduleHrtimeoutRange(c, &exp, 0, hrtimer.ModeAbs)
		end = k.Now()
		if s := c.Current().State(); s != kernel.TaskRunning {
			t.Errorf("state on return %#x, want TASK_RUNNING", s)
		}
		return 0
	})
	if ret != 0 || end != exp {
		t.Fatalf("returned %d at %d, want 0 at exactly %d", ret, end, exp)
	}
}

func TestScheduleHrtimeoutRangeWakesAtHardExpiryWhenAlone(t *testing.T) {
	k := boot(t, 1, false)
	var ret int
	var end int64
	runTask(t, k, func(c *kernel.Ctx) int {
		exp := int64(2 * ms) // relative
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		start := k.Now()
		ret = hrtimer.ScheduleHrtimeoutRange(c, &exp, 500*us, hrtimer.ModeRel)
		end = k.Now() - start
		return 0
	})
	if ret != 0 || end != 2*ms+500*us {
		t.Fatalf("returned %d after %d ns, want 0 after %d (the hard expiry)", ret, end, 2*ms+500*us)
	}
}

func TestScheduleHrtimeoutRangeCoalescesWithAnotherExpiry(t *testing.T) {
	k := boot(t, 1, false)
	var ret int
	var end int64
	other := newRec("other", nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	runTask(t, k, func(c *kernel.Ctx) int {
		start := k.Now()
		hrtimer.Start(c, &other.HRTimer, start+2*ms+200*us, hrtimer.ModeAbs)
		exp := start + 2*ms
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		ret = hrtimer.ScheduleHrtimeoutRange(c, &exp, 500*us, hrtimer.ModeAbs)
		end = k.Now() - start
		return 0
	})
	if ret != 0 || end != 2*ms+200*us {
		t.Fatalf("returned %d after %d ns, want 0 after %d (with the other timer)", ret, end, 2*ms+200*us)
	}
}

func TestScheduleHrtimeoutRangeReturnsEINTRWhenWokenEarly(t *testing.T) {
	k := boot(t, 2, false)
	var sleeper *kernel.Task
	waker := newRec("waker", nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.Setup(&waker.HRTimer, func(c *kernel.Ctx, _ *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		c.Kernel().WakeUpProcess(sleeper)
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	var ret int
	var end int64
	runTask(t, k, func(c *kernel.Ctx) int {
		sleeper = c.Current()
		hrtimer.Start(c, &waker.HRTimer, 2*ms, hrtimer.ModeAbs)
		exp := int64(10 * ms)
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		ret = hrtimer.ScheduleHrtimeoutRange(c, &exp, 0, hrtimer.ModeAbs)
		end = k.Now()
		return 0
	})
	if ret != eintr || end != 2*ms {
		t.Fatalf("returned %d at %d, want -EINTR at %d", ret, end, 2*ms)
	}
	// The sleeper's timer was cancelled: nothing is left queued.
	if s := hrtimer.TimerList(k); strings.Contains(s, " #0:") {
		t.Fatalf("timer left queued:\n%s", s)
	}
}

func TestScheduleHrtimeoutRangeSpecialCases(t *testing.T) {
	k := boot(t, 1, false)
	waker := newRec("waker", nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	var task *kernel.Task
	hrtimer.Setup(&waker.HRTimer, func(c *kernel.Ctx, _ *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		c.Kernel().WakeUpProcess(task)
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	type result struct {
		ret     int
		elapsed int64
	}
	var zero, infinite, running, atomic result
	runTask(t, k, func(c *kernel.Ctx) int {
		task = c.Current()
		measure := func(f func() int) result {
			start := k.Now()
			r := f()
			return result{r, k.Now() - start}
		}
		zero = measure(func() int {
			var exp int64
			kernel.SetCurrentState(c, kernel.TaskUninterruptible)
			return hrtimer.ScheduleHrtimeoutRange(c, &exp, 0, hrtimer.ModeRel)
		})
		infinite = measure(func() int {
			hrtimer.Start(c, &waker.HRTimer, 3*ms, hrtimer.ModeRel)
			kernel.SetCurrentState(c, kernel.TaskInterruptible)
			return hrtimer.ScheduleHrtimeoutRange(c, nil, 0, hrtimer.ModeRel)
		})
		running = measure(func() int {
			exp := int64(1 * ms)
			return hrtimer.ScheduleHrtimeoutRange(c, &exp, 0, hrtimer.ModeRel)
		})
		atomic = measure(func() int {
			exp := int64(1 * ms)
			kernel.PreemptDisable(c)
			kernel.SetCurrentState(c, kernel.TaskUninterruptible)
			r := hrtimer.ScheduleHrtimeoutRange(c, &exp, 0, hrtimer.ModeRel)
			kernel.PreemptEnable(c)
			return r
		})
		return 0
	})
	if zero != (result{0, 0}) {
		t.Errorf("*expires == 0: %+v, want 0 at once", zero)
	}
	if infinite != (result{eintr, 3 * ms}) {
		t.Errorf("expires == nil: %+v, want -EINTR when woken at 3ms", infinite)
	}
	if running != (result{eintr, 0}) {
		t.Errorf("TASK_RUNNING caller: %+v, want -EINTR at once", running)
	}
	if atomic != (result{0, 0}) {
		t.Errorf("atomic context: %+v, want 0 at once", atomic)
	}
	if !strings.Contains(logText(k), "BUG: sleeping function called from invalid context at hrtimer/sleeper_test.go:") {
		t.Errorf("no might_sleep report:\n%s", logText(k))
	}
}

func TestSleeperWakeupClearsTaskThenWakes(t *testing.T) {
	k := boot(t, 1, false)
	var before, after *kernel.Task
	var ret int
	runTask(t, k, func(c *kernel.Ctx) int {
		var s hrtimer.Sleeper
		hrtimer.InitSleeper(c, &s, hrtimer.ClockMonotonic, hrtimer.ModeRel)
		before = s.Task
		hrtimer.SetExpiresRangeNs(&s.Timer, 1*ms, 0)
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		hrtimer.StartExpires(c, &s, hrtimer.ModeRel)
		kernel.Schedule(c)
		ret = hrtimer.Cancel(c, &s.Timer)
		after = s.Task
		return 0
	})
	if before == nil || after != nil || ret != 0 {
		t.Fatalf("Task before %v after %v, Cancel %d; want set, nil, 0", before, after, ret)
	}
}
