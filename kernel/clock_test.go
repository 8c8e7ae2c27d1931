package kernel_test

import (
	"testing"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
)

func TestJiffiesFollowTheClockAtEveryHZ(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		k := boot(t, kernel.Config{CPUs: 1, HZ: hz, Quiet: true})
		if k.Jiffies() != hz.InitialJiffies() {
			t.Fatalf("HZ=%d: jiffies at boot %d, want INITIAL_JIFFIES %d", hz, k.Jiffies(), hz.InitialJiffies())
		}
		tick := hz.TickNsec()
		for _, ns := range []int64{tick - 1, 1, tick, 2*tick - 1, 300 * int64(time.Second), 3*int64(time.Hour) + 7} {
			run(t, k, time.Duration(ns))
			want := hz.InitialJiffies() + uint64(k.Now()/tick)
			if got := k.Jiffies(); got != want {
				t.Fatalf("HZ=%d now=%d: jiffies %d, want %d", hz, k.Now(), got, want)
			}
		}
		// The low 32 bits wrap 5 minutes after boot.
		if uint32(k.Jiffies()) >= uint32(hz.InitialJiffies()) {
			t.Fatalf("HZ=%d: 32-bit jiffies did not wrap after 3 h", hz)
		}
	}
}

// TestCtxJiffiesIsNeverAheadOfTheKernelsAndAtMostAJiffyBehind: the arm
// path's jiffies (Ctx.Jiffies, straight from the TSC where that is the
// clock) against Kernel.Jiffies read just before and just after it, on
// the real clock at every HZ. Only ordering is asserted.
func TestCtxJiffiesIsNeverAheadOfTheKernelsAndAtMostAJiffyBehind(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		k := boot(t, kernel.Config{CPUs: 1, HZ: hz, Quiet: true})
		c := k.IdleCtx(0)
		for i := 0; i < 200000; i++ {
			before := k.Jiffies()
			got := c.Jiffies()
			after := k.Jiffies()
			if got > after || got+1 < before {
				t.Fatalf("HZ=%d: Ctx.Jiffies %d between Kernel.Jiffies %d and %d", hz, got, before, after)
			}
			if arm := c.ArmJiffies(); arm != got {
				t.Fatalf("HZ=%d: ArmJiffies %d right after Jiffies %d", hz, arm, got)
			}
			if arm := c.ArmJiffies(); arm < got || arm > k.Jiffies() {
				t.Fatalf("HZ=%d: a second ArmJiffies %d is not a fresh read (last %d)", hz, arm, got)
			}
		}
	}
}
