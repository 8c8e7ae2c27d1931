package hrtimer_test

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

func TestTryToCancelReturnsMinusOneWhileCallbackRunsOnAnotherCPU(t *testing.T) {
	k := boot(t, 2, true)
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		close(entered)
		<-release
		finished.Store(true)
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)

	var try, try2, cancel int
	var running, active, fin bool
	runTask(t, k, func(c *kernel.Ctx) int {
		hrtimer.Start(c, &tm, 10*us, hrtimer.ModeRel)
		<-entered
		try = hrtimer.TryToCancel(&tm)
		running, active = hrtimer.CallbackRunning(&tm), hrtimer.Active(&tm)
		close(release)
		cancel = hrtimer.Cancel(c, &tm)
		fin = finished.Load()
		try2 = hrtimer.TryToCancel(&tm)
		return 0
	})
	if try != -1 || !running || !active {
		t.Fatalf("while running: TryToCancel %d, CallbackRunning %v, Active %v; want -1 true true", try, running, active)
	}
	if cancel != 0 || !fin || try2 != 0 {
		t.Fatalf("Cancel %d (callback finished %v), then TryToCancel %d; want 0 true 0", cancel, fin, try2)
	}
}

// TestStressStartCancelNoCallbackAfterCancelReturns runs tasks on every
// CPU of a real-time kernel that start and cancel self-restarting timers
// (hard and soft) as fast as they can, and checks that no callback ever
// runs after Cancel returned, while the -race detector watches the locking.
// It also bounces one shared timer between CPUs by starting it from all
// of them. (Its callback does not forward it: hrtimer_forward is only safe
// from the callback while nobody else can start the timer, in the kernel
// as here.)
func TestStressStartCancelNoCallbackAfterCancelReturns(t *testing.T) {
	const (
		tasks = 6
		iters = 1000
	)
	k := boot(t, 4, true)
	type victim struct {
		timer     hrtimer.HRTimer
		cancelled atomic.Bool
		fired     atomic.Int64
		late      atomic.Int64
	}
	var shared hrtimer.HRTimer
	hrtimer.Setup(&shared, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)

	victims := make([]*victim, tasks)
	done := make([]*kernel.Task, tasks)
	for i := range victims {
		v := &victim{}
		victims[i] = v
		mode := hrtimer.ModeRel
		if i%2 == 1 {
			mode = hrtimer.ModeRelSoft
		}
		hrtimer.Setup(&v.timer, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
			if v.cancelled.Load() {
				v.late.Add(1)
			}
			v.fired.Add(1)
			hrtimer.ForwardNow(t, 100*us)
			return hrtimer.Restart
		}, hrtimer.ClockMonotonic, mode)
		task, err := k.Spawn("stress", func(c *kernel.Ctx) int {
			for n := 0; n < iters; n++ {
				v.cancelled.Store(false)
				hrtimer.StartRangeNs(c, &v.timer, int64(n%5)*5*us, int64(n%3)*us, mode)
				if n%4 == 0 {
					hrtimer.Start(c, &shared, int64(n%7)*us, hrtimer.ModeRel)
				}
				for j := 0; j < n%13; j++ {
					runtime.Gosched()
				}
				if n%3 == 0 {
					for hrtimer.TryToCancel(&v.timer) < 0 {
						runtime.Gosched()
					}
				} else {
					hrtimer.Cancel(c, &v.timer)
				}
				v.cancelled.Store(true)
				if hrtimer.Active(&v.timer) {
					v.late.Add(1000)
				}
				if n%5 == 0 {
					hrtimer.Cancel(c, &shared)
				}
			}
			return 0
		})
		if err != nil {
			t.Fatal(err)
		}
		done[i] = task
	}
	for _, task := range done {
		<-task.Exited()
	}
	hrtimer.Cancel(k.IdleCtx(0), &shared)
	// Give stray expiries a chance to show up (no assertion on time).
	for i := 0; i < 200; i++ {
		runtime.Gosched()
	}
	var fired int64
	for i, v := range victims {
		if n := v.late.Load(); n != 0 {
			t.Errorf("victim %d: %d callbacks (or active timers) after Cancel returned", i, n)
		}
		fired += v.fired.Load()
	}
	if hrtimer.Active(&shared) {
		t.Error("shared timer still active after Cancel")
	}
	t.Logf("%d callbacks ran", fired)
}
