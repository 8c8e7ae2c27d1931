package hrtimer_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

// TestNullCallbackIsReportedOncePerKernel: __hrtimer_setup's
// WARN_ON_ONCE(!function) fires once however many timers make the mistake.
func TestNullCallbackIsReportedOncePerKernel(t *testing.T) {
	k := boot(t, 1, false)
	var a, b hrtimer.HRTimer
	hrtimer.Setup(&a, nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Setup(&b, nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(k.IdleCtx(0), &a, 1*ms, hrtimer.ModeRel)
	hrtimer.Start(k.IdleCtx(0), &b, 1*ms, hrtimer.ModeRel)
	run(t, k, 2*ms)
	if n := strings.Count(logText(k), "WARNING:"); n != 1 {
		t.Errorf("%d WARNINGs for two NULL-callback timers, want 1:\n%s", n, logText(k))
	}
}

// TestZeroHrtimeoutFromASoftirqIsSilent: schedule_hrtimeout_range with a
// zero expiry returns 0 without sleeping, so it is legal anywhere.
func TestZeroHrtimeoutFromASoftirqIsSilent(t *testing.T) {
	k := boot(t, 1, false)
	var tm hrtimer.HRTimer
	ret := 99
	hrtimer.Setup(&tm, func(c *kernel.Ctx, _ *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		var zero int64
		ret = hrtimer.ScheduleHrtimeoutRange(c, &zero, 0, hrtimer.ModeRel)
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	hrtimer.Start(k.IdleCtx(0), &tm, 1*ms, hrtimer.ModeRelSoft)
	run(t, k, 2*ms)
	if ret != 0 || logText(k) != "" {
		t.Errorf("returned %d, log:\n%s", ret, logText(k))
	}
}
