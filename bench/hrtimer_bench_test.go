package bench

import (
	"context"
	"testing"
	"time"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

// BenchmarkHRTimerPeriodic: a periodic hrtimer that forwards itself by
// 1 µs and returns Restart, driven in virtual time: the cost of one expiry
// (the interrupt, the callback's hrtimer_forward_now, the re-enqueue).
func BenchmarkHRTimerPeriodic(b *testing.B) {
	k, c := virtKernel(b, 1)
	var t hrtimer.HRTimer
	hrtimer.Setup(&t, func(_ *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		hrtimer.ForwardNow(t, 1000)
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &t, 1000, hrtimer.ModeRel)
	b.ReportAllocs()
	b.ResetTimer()
	k.Run(context.Background(), time.Duration(b.N)*time.Microsecond)
	b.StopTimer()
	hrtimer.Cancel(c, &t)
}

// BenchmarkHRTimerForward: hrtimer_forward on a timer that is neither
// queued nor running (as a callback's or a re-arm's forward).
func BenchmarkHRTimerForward(b *testing.B) {
	_, c := virtKernel(b, 1)
	var t hrtimer.HRTimer
	hrtimer.Setup(&t, func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart { return hrtimer.NoRestart },
		hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &t, 1000, hrtimer.ModeRel)
	hrtimer.TryToCancel(&t)
	now := hrtimer.GetExpires(&t)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += 1000
		hrtimer.Forward(&t, now, 1000)
	}
}

// BenchmarkSpinLock: an uncontended spin_lock/spin_unlock pair in a task's
// context (the preempt count, the owner bookkeeping of debug spinlocks).
func BenchmarkSpinLock(b *testing.B) {
	_, c := virtKernel(b, 1)
	var l kernel.SpinLock
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Lock(c)
		l.Unlock(c)
	}
}
