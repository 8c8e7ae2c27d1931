package timer_test

import (
	"context"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// TestTimerSetUpWithoutACallbackIsSilentlyNeverArmed: as in v6.2+ (where a
// shut-down timer is one whose function is NULL), arming a timer set up
// with a nil callback is silently discarded: mod_timer returns 0, nothing
// is reported, nothing fires. (An hrtimer set up without a callback is
// WARNed about instead, as hrtimer_setup does.)
func TestTimerSetUpWithoutACallbackIsSilentlyNeverArmed(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000})
	var tm timer.Timer
	var ret int
	var pending bool
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, nil, 0)
		ret = timer.Mod(c, &tm, c.Jiffies()+1)
		pending = timer.Pending(&tm)
	})
	if err := k.Run(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ret != 0 || pending || k.Warnings() != 0 {
		t.Errorf("mod_timer = %d, pending %t, %d reports; want 0, false, 0", ret, pending, k.Warnings())
	}
}
