package printk_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/printk"
)

const sec = int64(1_000_000_000)

func TestDefaultRateLimitIsFiveSecondsBurstTen(t *testing.T) {
	if printk.DefaultRateLimitInterval != 5*sec || printk.DefaultRateLimitBurst != 10 {
		t.Fatalf("defaults = %d ns, %d", printk.DefaultRateLimitInterval, printk.DefaultRateLimitBurst)
	}
}

func TestRateLimitAllowsBurstPerWindow(t *testing.T) {
	rl := &printk.RateLimit{Interval: 5 * sec, Burst: 3}
	steps := []struct {
		now            int64
		allow          bool
		wantSuppressed int // read (and reset) after the call
	}{
		{10 * sec, true, 0}, // the first call starts the window
		{11 * sec, true, 0},
		{12 * sec, true, 0},
		{13 * sec, false, 0}, // burst spent; counted in the current window
		{14 * sec, false, 0},
		{15 * sec, false, 0},   // exactly begin+interval: still the same window
		{15*sec + 1, true, 3},  // strictly after: new window, 3 were suppressed
		{15*sec + 2, true, 0},  // the count was reset by Suppressed
		{20 * sec, true, 0},    // still in the window that began at 15s+1
		{20*sec + 1, false, 0}, // burst spent; exactly begin+interval
		{30 * sec, true, 1},    // new window
		{100 * sec, true, 0},   // new window with nothing suppressed
	}
	for i, s := range steps {
		if got := rl.Allow(s.now); got != s.allow {
			t.Fatalf("step %d: Allow(%d) = %v, want %v", i, s.now, got, s.allow)
		}
		if got := rl.Suppressed(); got != s.wantSuppressed {
			t.Fatalf("step %d: Suppressed() = %d, want %d", i, got, s.wantSuppressed)
		}
	}
}

func TestRateLimitSuppressedWaitsForTheWindowToEnd(t *testing.T) {
	rl := &printk.RateLimit{Interval: sec, Burst: 1}
	rl.Allow(0)
	rl.Allow(1)
	rl.Allow(2)
	if n := rl.Suppressed(); n != 0 {
		t.Fatalf("Suppressed() inside the window = %d, want 0", n)
	}
	if !rl.Allow(2 * sec) {
		t.Fatal("Allow in a new window refused")
	}
	if n := rl.Suppressed(); n != 2 {
		t.Fatalf("Suppressed() = %d, want 2", n)
	}
}

func TestRateLimitZeroIntervalAllowsEverything(t *testing.T) {
	var rl printk.RateLimit
	for i := range 1000 {
		if !rl.Allow(0) {
			t.Fatalf("call %d refused", i)
		}
	}
	if n := rl.Suppressed(); n != 0 {
		t.Fatalf("Suppressed() = %d", n)
	}
}

func TestRateLimitZeroBurstAllowsNothing(t *testing.T) {
	rl := &printk.RateLimit{Interval: sec}
	for i := range 5 {
		if rl.Allow(int64(i)) {
			t.Fatalf("call %d allowed", i)
		}
	}
	rl.Allow(10 * sec)
	if n := rl.Suppressed(); n != 5 {
		t.Fatalf("Suppressed() = %d, want 5", n)
	}
}

// TestRateLimitNegativeIntervalFollowsBurst: ___ratelimit's
// "interval <= 0 || burst <= 0" case allows an event only for a zero
// interval or a positive burst.
func TestRateLimitNegativeIntervalFollowsBurst(t *testing.T) {
	for _, tc := range []struct {
		burst int
		want  bool
	}{{0, false}, {-1, false}, {1, true}, {10, true}} {
		rl := &printk.RateLimit{Interval: -1, Burst: tc.burst}
		for i := range 20 {
			if got := rl.Allow(int64(i)); got != tc.want {
				t.Fatalf("burst %d, call %d: Allow = %t, want %t", tc.burst, i, got, tc.want)
			}
		}
	}
}

func TestRateLimitConcurrentCallersShareOneBurst(t *testing.T) {
	rl := &printk.RateLimit{Interval: printk.DefaultRateLimitInterval, Burst: printk.DefaultRateLimitBurst}
	const goroutines, calls = 8, 100
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				if rl.Allow(sec) {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != printk.DefaultRateLimitBurst {
		t.Fatalf("%d allowed, want %d", got, printk.DefaultRateLimitBurst)
	}
	if !rl.Allow(sec + printk.DefaultRateLimitInterval + 1) {
		t.Fatal("new window refused")
	}
	if got, want := rl.Suppressed(), goroutines*calls-printk.DefaultRateLimitBurst; got != want {
		t.Fatalf("Suppressed() = %d, want %d", got, want)
	}
}
