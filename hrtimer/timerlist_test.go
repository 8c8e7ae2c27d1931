package hrtimer_test

import (
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timekeeping"
)

type device struct {
	beat  hrtimer.HRTimer
	poll  hrtimer.HRTimer
	alarm hrtimer.HRTimer
	count int
}

func (d *device) heartbeat(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
	d.count++
	hrtimer.ForwardNow(t, 2*ms)
	return hrtimer.Restart
}

func (d *device) pollStatus(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart {
	return hrtimer.NoRestart
}

func wallAlarm(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart { return hrtimer.NoRestart }

func TestTimerListGolden(t *testing.T) {
	k := boot(t, 2, false)
	c0, c1 := k.IdleCtx(0), k.IdleCtx(1)
	d := &device{}
	hrtimer.Setup(&d.beat, d.heartbeat, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Setup(&d.poll, d.pollStatus, hrtimer.ClockMonotonic, hrtimer.ModeAbsSoft)
	hrtimer.Setup(&d.alarm, wallAlarm, hrtimer.ClockRealtime, hrtimer.ModeAbs)
	var boot, tai hrtimer.HRTimer
	hrtimer.Setup(&boot, wallAlarm, hrtimer.ClockBoottime, hrtimer.ModeAbs)
	hrtimer.Setup(&tai, d.pollStatus, hrtimer.ClockTAI, hrtimer.ModeAbsSoft)

	hrtimer.Start(c0, &d.beat, 2*ms, hrtimer.ModeRel)
	hrtimer.StartRangeNs(c0, &d.poll, 9*ms, 50*us, hrtimer.ModeAbsSoft)
	hrtimer.Start(c1, &d.alarm, timekeeping.KtimeGetRealNs(c1)+1000*ms, hrtimer.ModeAbs)
	hrtimer.Start(c1, &boot, 60*1000*ms, hrtimer.ModeAbs)
	hrtimer.Start(c1, &tai, timekeeping.KtimeGetRealNs(c1)+20*ms, hrtimer.ModeAbsSoft)
	// A sleeper shows up as hrtimer_wakeup.
	var sleptRet int
	if _, err := k.Spawn("sleeper", func(c *kernel.Ctx) int {
		exp := int64(500 * ms)
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		sleptRet = hrtimer.ScheduleHrtimeoutRange(c, &exp, 100*us, hrtimer.ModeRel)
		return 0
	}); err != nil {
		t.Fatal(err)
	}
	run(t, k, 5*ms+123)
	golden.Check(t, "testdata/timer_list.golden", hrtimer.TimerList(k))
	if d.count != 2 {
		t.Fatalf("heartbeat ran %d times, want 2", d.count)
	}
	run(t, k, 600*ms)
	if sleptRet != 0 {
		t.Fatalf("sleeper returned %d, want 0", sleptRet)
	}
}
