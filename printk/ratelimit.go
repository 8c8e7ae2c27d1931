package printk

import "sync"

// The kernel's default rate limit, DEFAULT_RATELIMIT_INTERVAL (5*HZ, that
// is 5 seconds) and DEFAULT_RATELIMIT_BURST, used by pr_*_ratelimited and
// printk_ratelimit.
const (
	DefaultRateLimitInterval int64 = 5_000_000_000 // nanoseconds
	DefaultRateLimitBurst          = 10
)

// A RateLimit is the kernel's struct ratelimit_state with ___ratelimit: it
// allows at most Burst events per window of Interval nanoseconds. A window
// starts at the first call to [RateLimit.Allow] and is replaced by a new one
// at the first call more than Interval after its start.
//
// For the kernel's pr_*_ratelimited defaults, set Interval to
// [DefaultRateLimitInterval] and Burst to [DefaultRateLimitBurst]. The zero
// RateLimit (Interval 0) allows everything, as the kernel does for a zero
// interval. Set Interval and Burst before the first call to Allow and do not
// change them while it may run. A RateLimit must not be copied after first
// use. It is safe for concurrent use.
type RateLimit struct {
	// Interval is the window length in nanoseconds. Zero disables rate
	// limiting: Allow always reports true. A negative Interval does too
	// when Burst is positive, and allows nothing otherwise (the
	// kernel's interval <= 0 || burst <= 0 case).
	Interval int64
	// Burst is the number of events allowed per window. With a positive
	// Interval, a Burst of zero or less allows nothing.
	Burst int

	mu sync.Mutex
	// All fields below are guarded by mu.
	begin   int64 // start of the current window
	started bool  // begin is set (the kernel tests begin != 0)
	printed int   // events allowed in the current window
	missed  int   // events refused in the current window
	// suppressed is the number of events refused in windows that have
	// ended, not yet returned by Suppressed.
	suppressed int
}

// Allow reports whether an event at nowNs (nanoseconds since boot) may
// proceed, and counts it as suppressed if not. nowNs must not run backwards
// by more than the window length; a call before the window's start does not
// start a new window.
//
// When a new window starts, the events refused in the previous one become
// available to [RateLimit.Suppressed]; this is the moment the kernel prints
// "<func>: N callbacks suppressed".
func (rl *RateLimit) Allow(nowNs int64) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.Interval < 0 {
		return rl.Burst > 0
	}
	if rl.Interval == 0 {
		return true
	}
	if !rl.started {
		rl.begin = nowNs
		rl.started = true
	}
	// time_is_before_jiffies(begin + interval): strictly after the window.
	if nowNs-rl.begin > rl.Interval {
		rl.suppressed += rl.missed
		rl.missed = 0
		rl.begin = nowNs
		rl.printed = 0
	}
	if rl.Burst > 0 && rl.printed < rl.Burst {
		rl.printed++
		return true
	}
	rl.missed++
	return false
}

// Suppressed returns the number of events that Allow refused during windows
// that have ended, and resets that count to zero. Events refused in the
// current window are counted once it ends. The usual pattern, printing what
// the kernel prints, is
//
//	if rl.Allow(now) {
//		if n := rl.Suppressed(); n > 0 {
//			ring.Emit(now, printk.LevelWarning, cpu, pid,
//				fmt.Sprintf("%s: %d callbacks suppressed\n", fn, n))
//		}
//		ring.Emit(now, level, cpu, pid, msg)
//	}
func (rl *RateLimit) Suppressed() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	n := rl.suppressed
	rl.suppressed = 0
	return n
}
