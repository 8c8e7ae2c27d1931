package hrtimer_test

import (
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

// TestStartFromATaskWhileTheCallbackForwardsIsSerialised: a periodic
// hrtimer whose callback forwards it and returns Restart, re-armed from a
// task meanwhile (as hrtimer demos do): the expiry is read and written
// under the base lock on both sides, so -race sees no data race and the
// queue stays consistent (a forward never moves a queued timer). A
// real-time race test; it asserts no timing.
func TestStartFromATaskWhileTheCallbackForwardsIsSerialised(t *testing.T) {
	k := boot(t, 2, true)
	var tm hrtimer.HRTimer
	var fired atomic.Int64
	hrtimer.Setup(&tm, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		fired.Add(1)
		hrtimer.ForwardNow(t, 2*us)
		_ = hrtimer.GetExpires(t) + hrtimer.GetSoftExpires(t)
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	runTask(t, k, func(c *kernel.Ctx) int {
		hrtimer.Start(c, &tm, 2*us, hrtimer.ModeRel)
		for i := 0; i < 20000 || fired.Load() < 50; i++ {
			if i%2 == 0 {
				hrtimer.Start(c, &tm, 3*us, hrtimer.ModeRel)
			} else {
				hrtimer.SetExpiresRangeNs(&tm, hrtimer.CbGetTime(&tm)+3*us, 0)
				hrtimer.StartTimerExpires(c, &tm, hrtimer.ModeAbs)
			}
		}
		hrtimer.Cancel(c, &tm)
		return 0
	})
	if hrtimer.Active(&tm) {
		t.Error("timer active after Cancel")
	}
}
