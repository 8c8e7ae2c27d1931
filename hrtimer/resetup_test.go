package hrtimer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

// TestCancelWaitsForACallbackThatSetItsTimerUpAgain: a callback that calls
// Setup on its own timer keeps it on its CPU's base (as hrtimer_setup
// binds it to the current CPU), so hrtimer_cancel from elsewhere still
// waits for the callback to finish. Real time; no timing is asserted.
func TestCancelWaitsForACallbackThatSetItsTimerUpAgain(t *testing.T) {
	k := boot(t, 2, true)
	var tm hrtimer.HRTimer
	var running atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	var fn func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart
	fn = func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		running.Store(true)
		hrtimer.Setup(t, fn, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
		close(entered)
		<-release
		running.Store(false)
		return hrtimer.Restart // ignored: the timer was set up afresh
	}
	hrtimer.Setup(&tm, fn, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	var after atomic.Bool
	code, err := k.RunTask(context.Background(), "canceller", func(c *kernel.Ctx) int {
		hrtimer.Start(c, &tm, 100*1000, hrtimer.ModeRelSoft)
		<-entered
		go func() { time.Sleep(20 * time.Millisecond); close(release) }()
		hrtimer.Cancel(c, &tm)
		after.Store(running.Load())
		return 0
	})
	if err != nil || code != 0 {
		t.Fatal(code, err)
	}
	if after.Load() {
		t.Error("hrtimer_cancel returned while the callback still ran")
	}
	if hrtimer.Active(&tm) {
		t.Error("the re-set-up timer was restarted")
	}
}
