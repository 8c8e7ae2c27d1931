package hrtimer_test

import (
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timekeeping"
)

func nop(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart { return hrtimer.NoRestart }

func TestStartCancelForwardAllocateNothing(t *testing.T) {
	k := boot(t, 2, false)
	c := k.IdleCtx(0)
	var hard, soft, other hrtimer.HRTimer
	hrtimer.Setup(&hard, nop, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Setup(&soft, nop, hrtimer.ClockRealtime, hrtimer.ModeAbsSoft)
	hrtimer.Setup(&other, nop, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.Start(c, &other, 5*ms, hrtimer.ModeAbs) // keep a queue populated
	step := func() {
		hrtimer.Start(c, &hard, 1*ms, hrtimer.ModeRel)
		hrtimer.StartRangeNs(c, &hard, 2*ms, 50*us, hrtimer.ModeRel) // restart while queued
		hrtimer.StartRangeNs(c, &soft, timekeeping.KtimeGetRealNs(c)+ms, 10*us, hrtimer.ModeAbsSoft)
		hrtimer.Start(k.IdleCtx(1), &hard, 3*ms, hrtimer.ModeRel) // migrate to CPU1
		hrtimer.TryToCancel(&soft)
		hrtimer.Cancel(c, &hard)
		hrtimer.SetExpires(&hard, 0)
		hrtimer.Forward(&hard, 10*ms, 1*ms)
		hrtimer.ForwardNow(&hard, 1*ms)
		_ = hrtimer.Active(&hard) || hrtimer.IsQueued(&hard) || hrtimer.CallbackRunning(&hard)
		_ = hrtimer.GetRemaining(&hard)
	}
	step()
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Fatalf("start/cancel/forward allocate %.1f times per run, want 0", n)
	}
	hrtimer.Cancel(c, &other)
}

func BenchmarkStartCancel(b *testing.B) {
	k := boot(b, 1, false)
	c := k.IdleCtx(0)
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, nop, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		hrtimer.Start(c, &tm, int64(i%1000)*us, hrtimer.ModeRel)
		hrtimer.Cancel(c, &tm)
	}
}
