package timer_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// TestDeleteSyncWaiterIsUninterruptibleWhileALongCallbackRunsInVirtualTime:
// a callback on CPU 0 busy-waits 100 ms (mdelay); a task on CPU 1 calls
// timer_delete_sync in the middle of it. The task must sleep in
// TASK_UNINTERRUPTIBLE (ps: D) through the kernel's wait primitive, virtual
// time must move on to the callback's end, and the task must return then —
// with no virtual-time special case in timer/.
func TestDeleteSyncWaiterIsUninterruptibleWhileALongCallbackRunsInVirtualTime(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var tm timer.Timer
	var cbStart, cbEnd, syncStart, syncEnd int64
	var seen []kernel.TaskState
	timer.Setup(nil, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
		cbStart = c.Kernel().Now()
		delay.Mdelay(c, 100)
		cbEnd = c.Kernel().Now()
	}, 0)
	var obs hrtimer.HRTimer
	waiter, err := k.CreateTask(kernel.TaskOpts{Comm: "waiter", CPU: 1}, func(c *kernel.Ctx) int {
		hrtimer.Start(c, &obs, 5*int64(time.Millisecond), hrtimer.ModeRel) // on CPU 1
		delay.Msleep(c, 50)                                                // into the middle of the callback
		syncStart = c.Kernel().Now()
		timer.DeleteSync(c, &tm)
		syncEnd = c.Kernel().Now()
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	// An observer samples the waiter's state every 10 ms from an hrtimer
	// on CPU 1 (hard interrupt context; CPU 0 is busy in the callback).
	hrtimer.Setup(&obs, func(c *kernel.Ctx, h *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		seen = append(seen, waiter.State())
		if len(seen) == 20 {
			return hrtimer.NoRestart
		}
		hrtimer.ForwardNow(h, 10*int64(time.Millisecond))
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.SetExpires(&tm, c.Jiffies()+1)
		timer.AddOn(c, &tm, 0)
		k.WakeUpProcess(waiter)
	})
	ktest.Run(t, k, 0)
	select {
	case <-waiter.Exited():
	default:
		t.Fatal("the waiter did not finish")
	}
	if cbStart == 0 || cbEnd-cbStart != 100*int64(time.Millisecond) {
		t.Fatalf("callback ran from %d to %d, want 100 ms", cbStart, cbEnd)
	}
	if syncStart <= cbStart || syncStart >= cbEnd {
		t.Fatalf("timer_delete_sync called at %d, not during the callback [%d, %d]", syncStart, cbStart, cbEnd)
	}
	if syncEnd != cbEnd {
		t.Fatalf("timer_delete_sync returned at %d, want the callback's end %d", syncEnd, cbEnd)
	}
	var d int
	for _, s := range seen {
		if s == kernel.TaskUninterruptible {
			d++
			if s.Letter() != 'D' {
				t.Fatalf("state letter %c, want D", s.Letter())
			}
		}
	}
	if d < 3 {
		t.Fatalf("waiter states seen %v: want TASK_UNINTERRUPTIBLE while it waited", seen)
	}
}

// TestDeleteSyncWaiterIsUninterruptibleInRealTime: the same in real time,
// with a callback that spins until the test has seen the waiter asleep.
// It asserts no timing.
func TestDeleteSyncWaiterIsUninterruptibleInRealTime(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	var tm timer.Timer
	var entered, release atomic.Bool
	timer.Setup(nil, &tm, func(*kernel.Ctx, *timer.Timer) {
		entered.Store(true)
		for !release.Load() {
		}
	}, 0)
	var waiter *kernel.Task
	arm := ktest.OnCPU(t, k, "arm", 0, func(c *kernel.Ctx) { timer.Mod(c, &tm, c.Jiffies()+1) })
	<-arm.Exited()
	ktest.Eventually(t, entered.Load)
	returned := make(chan struct{})
	waiter = ktest.OnCPU(t, k, "waiter", 1, func(c *kernel.Ctx) { timer.DeleteSync(c, &tm); close(returned) })
	ktest.Eventually(t, func() bool { return waiter.State() == kernel.TaskUninterruptible })
	select {
	case <-returned:
		t.Fatal("timer_delete_sync returned while the callback still ran")
	default:
	}
	release.Store(true)
	<-returned
}
