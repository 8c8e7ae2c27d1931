package hrtimer_test

import (
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestCancelWaiterIsUninterruptibleWhileALongCallbackRunsInVirtualTime: a
// soft hrtimer's callback on CPU 0 busy-waits 100 ms; a task on CPU 1
// cancels the timer halfway. It sleeps in TASK_UNINTERRUPTIBLE through the
// kernel's wait primitive, virtual time moves on, and hrtimer_cancel returns
// 0 (the timer is no longer queued) exactly when the callback ends.
func TestCancelWaiterIsUninterruptibleWhileALongCallbackRunsInVirtualTime(t *testing.T) {
	k := boot(t, 2, false)
	var h hrtimer.HRTimer
	var cbEnd, cancelEnd int64
	var ret int
	hrtimer.Setup(&h, func(c *kernel.Ctx, _ *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		delay.Mdelay(c, 100)
		cbEnd = c.Kernel().Now()
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	var seen []kernel.TaskState
	var waiter *kernel.Task
	var obs hrtimer.HRTimer
	hrtimer.Setup(&obs, func(c *kernel.Ctx, o *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		seen = append(seen, waiter.State())
		hrtimer.ForwardNow(o, 10*ms)
		if len(seen) == 15 {
			return hrtimer.NoRestart
		}
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	starter, _ := k.CreateTask(kernel.TaskOpts{Comm: "starter", CPU: 0}, func(c *kernel.Ctx) int {
		hrtimer.Start(c, &h, ms, hrtimer.ModeRelSoft)
		return 0
	})
	waiter, _ = k.CreateTask(kernel.TaskOpts{Comm: "waiter", CPU: 1}, func(c *kernel.Ctx) int {
		hrtimer.Start(c, &obs, 5*ms, hrtimer.ModeRel)
		delay.Msleep(c, 50)
		ret = hrtimer.Cancel(c, &h)
		cancelEnd = c.Kernel().Now()
		return 0
	})
	k.WakeUpProcess(starter)
	k.WakeUpProcess(waiter)
	run(t, k, 200*ms)
	if cbEnd != 101*ms {
		t.Fatalf("callback ended at %d, want 101 ms", cbEnd)
	}
	if cancelEnd != cbEnd || ret != 0 {
		t.Fatalf("hrtimer_cancel returned %d at %d, want 0 at the callback's end %d", ret, cancelEnd, cbEnd)
	}
	d := 0
	for _, s := range seen {
		if s == kernel.TaskUninterruptible {
			d++
		}
	}
	if d < 3 {
		t.Fatalf("waiter states %v: want TASK_UNINTERRUPTIBLE while it waited", seen)
	}
}

// TestCancelWaiterIsUninterruptibleInRealTime: the same on the real clock,
// with a callback that spins until the test saw the waiter asleep. It
// asserts no timing.
func TestCancelWaiterIsUninterruptibleInRealTime(t *testing.T) {
	k := boot(t, 2, true)
	var h hrtimer.HRTimer
	var entered, release atomic.Bool
	hrtimer.Setup(&h, func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		entered.Store(true)
		for !release.Load() {
		}
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	k.Spawn("starter", func(c *kernel.Ctx) int { hrtimer.Start(c, &h, 10*us, hrtimer.ModeRel); return 0 })
	ktest.Eventually(t, entered.Load)
	returned := make(chan struct{})
	w, _ := k.Spawn("waiter", func(c *kernel.Ctx) int { hrtimer.Cancel(c, &h); close(returned); return 0 })
	ktest.Eventually(t, func() bool { return w.State() == kernel.TaskUninterruptible })
	select {
	case <-returned:
		t.Fatal("hrtimer_cancel returned while the callback ran")
	default:
	}
	release.Store(true)
	<-returned
}
