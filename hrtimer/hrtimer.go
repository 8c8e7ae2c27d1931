package hrtimer

import (
	"math"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
)

// Mode is enum hrtimer_mode: how the time passed to a start function is
// read (absolute or relative), whether the timer is bound to the CPU, and
// in which context its callback runs.
type Mode uint32

// Mode bits and their combinations (include/linux/hrtimer.h).
const (
	ModeAbs    Mode = 0x00 // HRTIMER_MODE_ABS: the time is absolute on the timer's clock
	ModeRel    Mode = 0x01 // HRTIMER_MODE_REL: the time is relative to now
	ModePinned Mode = 0x02 // HRTIMER_MODE_PINNED: the timer is bound to the CPU (considered at start only)
	ModeSoft   Mode = 0x04 // HRTIMER_MODE_SOFT: the callback runs in HRTIMER_SOFTIRQ
	ModeHard   Mode = 0x08 // HRTIMER_MODE_HARD: the callback runs in hard interrupt context even on PREEMPT_RT

	ModeAbsPinned = ModeAbs | ModePinned // HRTIMER_MODE_ABS_PINNED
	ModeRelPinned = ModeRel | ModePinned // HRTIMER_MODE_REL_PINNED

	ModeAbsSoft = ModeAbs | ModeSoft // HRTIMER_MODE_ABS_SOFT
	ModeRelSoft = ModeRel | ModeSoft // HRTIMER_MODE_REL_SOFT

	ModeAbsPinnedSoft = ModeAbsPinned | ModeSoft // HRTIMER_MODE_ABS_PINNED_SOFT
	ModeRelPinnedSoft = ModeRelPinned | ModeSoft // HRTIMER_MODE_REL_PINNED_SOFT

	ModeAbsHard = ModeAbs | ModeHard // HRTIMER_MODE_ABS_HARD
	ModeRelHard = ModeRel | ModeHard // HRTIMER_MODE_REL_HARD

	ModeAbsPinnedHard = ModeAbsPinned | ModeHard // HRTIMER_MODE_ABS_PINNED_HARD
	ModeRelPinnedHard = ModeRelPinned | ModeHard // HRTIMER_MODE_REL_PINNED_HARD
)

// HRTimerRestart is enum hrtimer_restart, the value a callback returns.
type HRTimerRestart int

// Callback return values.
const (
	// NoRestart is HRTIMER_NORESTART: the timer is not restarted.
	NoRestart HRTimerRestart = 0
	// Restart is HRTIMER_RESTART: the timer is enqueued again at its
	// (usually forwarded) expiry time, unless the callback already
	// restarted it.
	Restart HRTimerRestart = 1
)

// ClockID is clockid_t: the clock a timer's expiry time is measured on.
type ClockID int32

// The clocks an hrtimer can be based on, with the Linux clockid values.
const (
	// ClockRealtime is CLOCK_REALTIME, kernel.Kernel.KtimeGetRealNs: the
	// wall clock in ns since the Unix epoch. A relative realtime timer is
	// a monotonic timer (POSIX), see Setup.
	ClockRealtime ClockID = 0
	// ClockMonotonic is CLOCK_MONOTONIC, kernel.Kernel.Now: ns since boot.
	ClockMonotonic ClockID = 1
	// ClockBoottime is CLOCK_BOOTTIME. kdefer never suspends, so it reads
	// the same as CLOCK_MONOTONIC.
	ClockBoottime ClockID = 7
	// ClockTAI is CLOCK_TAI. kdefer's TAI offset is 0 (as on a system
	// where NTP never set it), so it reads the same as CLOCK_REALTIME.
	ClockTAI ClockID = 11
)

// Timer states (include/linux/hrtimer_defs.h). "Callback running" is not a
// state bit: it is tracked by the clock base (base->running == timer), so
// a timer can be running and enqueued at the same time.
const (
	StateInactive uint32 = 0x00 // HRTIMER_STATE_INACTIVE
	StateEnqueued uint32 = 0x01 // HRTIMER_STATE_ENQUEUED
)

// Resolution is hrtimer_resolution in ns. kdefer's CPUs always run in
// high-resolution mode (hres_active), so it is HIGH_RES_NSEC, 1 ns.
const Resolution = 1

// Clock base indices (enum hrtimer_base_type). HRTIMER_MAX_CLOCK_BASES is 8.
const (
	baseMonotonic     = iota // HRTIMER_BASE_MONOTONIC
	baseRealtime             // HRTIMER_BASE_REALTIME
	baseBoottime             // HRTIMER_BASE_BOOTTIME
	baseTAI                  // HRTIMER_BASE_TAI
	baseMonotonicSoft        // HRTIMER_BASE_MONOTONIC_SOFT
	baseRealtimeSoft         // HRTIMER_BASE_REALTIME_SOFT
	baseBoottimeSoft         // HRTIMER_BASE_BOOTTIME_SOFT
	baseTAISoft              // HRTIMER_BASE_TAI_SOFT
	maxClockBases            // HRTIMER_MAX_CLOCK_BASES
)

// ktimeMax is KTIME_MAX; ktimeSecMaxNs is ktime_set(KTIME_SEC_MAX, 0), the
// value ktime_add_safe saturates to.
const (
	ktimeMax      = int64(math.MaxInt64)
	ktimeSecMaxNs = (ktimeMax / 1e9) * 1e9
)

// Pending setup diagnostics, reported at the first start (Setup has no
// context to report them with).
const (
	warnBadClock = 1 << iota
	warnNilFunc
	traceSetupPending // hrtimer_setup is recorded at the first start
)

// HRTimer is a high-resolution timer, the kernel's struct hrtimer. Embed it
// in your own struct and initialise it with Setup; arming, re-arming and
// cancelling it then allocate nothing (the per-CPU queues are intrusive:
// the timer records its own position in its clock base's queue).
//
// The expiry times are in ns on the timer's clock: CLOCK_MONOTONIC and
// CLOCK_BOOTTIME count from boot, CLOCK_REALTIME and CLOCK_TAI from the
// Unix epoch. A timer has a soft expiry (the earliest time it may fire)
// and a hard expiry (the latest); they are equal unless it was started
// with a range (StartRangeNs).
//
// An HRTimer must not be copied once set up. Its fields are guarded by the
// lock of the CPU base it is queued on, as the kernel's are by
// cpu_base->lock. The accessors that the kernel leaves unlocked
// (GetExpires, Forward, SetExpires…) take that lock here, so that they
// never race with a start from another context; the kernel's rule still
// applies to their meaning: change the expiry only from the timer's
// callback or while the timer is neither queued nor running.
type HRTimer struct {
	// expires is node.expires (_expires): the hard expiry, the queue key.
	expires int64
	// softexpires is _softexpires: the earliest time the timer may fire.
	softexpires int64
	// function is the callback.
	function func(c *kernel.Ctx, t *HRTimer) HRTimerRestart
	// base is the clock base the timer was last queued on (nil before the
	// first start after Setup), or a kernel's migration sentinel while a
	// start moves it between CPUs.
	base atomic.Pointer[clockBase]
	// state is HRTIMER_STATE_*; read locklessly by IsQueued.
	state atomic.Uint32
	// ranPass is the CPU base's queue pass this timer last ran in.
	ranPass uint32

	// heapIdx is the timer's index in base's queue while enqueued.
	heapIdx int
	// seq orders timers with equal hard expiry first-in first-out, as
	// timerqueue_add does (equal keys go to the right).
	seq uint64
	// id numbers the timer within its kernel for /proc/timer_list's
	// deterministic pointer tokens (0: not numbered yet).
	id uint64

	baseIdx     uint8  // HRTIMER_BASE_* chosen at setup (soft bases +4)
	isSoft      bool   // is_soft: expires in HRTIMER_SOFTIRQ
	isHard      bool   // is_hard: HRTIMER_MODE_HARD was requested
	initialized bool   // Setup was called
	setupGen    uint32 // bumped by every Setup: a callback that set its timer up again is not restarted
	clockArg    ClockID
	setupWarn   atomic.Uint32 // warnBadClock | warnNilFunc | traceSetupPending, reported at start
	setupClock  ClockID       // the clock and mode given to Setup, for hrtimer_setup
	setupMode   Mode

	// sleeper is the hrtimer_sleeper this timer belongs to (container_of
	// for hrtimerWakeup), nil for plain timers.
	sleeper *Sleeper
}

// Setup is hrtimer_setup() (hrtimer_init() before v6.13): it initialises t
// to run fn on clock. From mode only the SOFT and HARD bits matter here
// (the context the callback will run in) and the REL bit: a relative
// CLOCK_REALTIME timer becomes a CLOCK_MONOTONIC one, as POSIX requires
// (relative timers are not affected by clock steps). PINNED is ignored;
// pinning happens at start.
//
// The kernel's WARNs for an invalid clock ("Invalid clockid %d. Using
// MONOTONIC") and for a nil fn (the timer then runs a dummy callback) are
// printed at the timer's first start, because Setup has no context.
// Differences: the kernel also binds the timer to the current CPU's base at
// setup; here the timer has no base until its first start, so until then
// CbGetTime and GetRemaining read the clock as 0. Calling Setup on a queued
// timer dequeues it first (the kernel's debugobjects fixup; without it the
// kernel corrupts its tree).
func Setup(t *HRTimer, fn func(c *kernel.Ctx, t *HRTimer) HRTimerRestart, clock ClockID, mode Mode) {
	// A timer set up again from its own running callback stays on that
	// base (the kernel binds it to the current CPU's), so that Cancel still
	// finds the callback running and waits for it.
	var keep *clockBase
	if t.base.Load() != nil {
		if b := lockBase(t); b != nil {
			if t.state.Load() != StateInactive {
				b.cpu.traceCancelNoCtx(t)
				b.remove(t, StateInactive)
			}
			if b.running == t {
				keep = b
			}
			b.cpu.lock.Unlock()
		}
	}
	soft := mode&ModeSoft != 0
	if clock == ClockRealtime && mode&ModeRel != 0 {
		clock = ClockMonotonic
	}
	warn := uint32(traceSetupPending)
	t.setupClock, t.setupMode = clock, mode
	idx, ok := clockToBase(clock)
	if !ok {
		warn |= warnBadClock
	}
	if soft {
		idx += maxClockBases / 2
	}
	if fn == nil {
		warn |= warnNilFunc
		fn = hrtimerDummyTimeout
	}
	t.expires, t.softexpires = 0, 0
	t.function = fn
	t.base.Store(keep)
	t.setupGen++
	t.heapIdx = -1
	t.baseIdx = uint8(idx)
	t.isSoft = soft
	t.isHard = mode&ModeHard != 0
	t.clockArg = clock
	t.setupWarn.Store(warn)
	t.sleeper = nil
	t.initialized = true
}

// hrtimerDummyTimeout is the callback of a timer set up without one.
func hrtimerDummyTimeout(*kernel.Ctx, *HRTimer) HRTimerRestart { return NoRestart }

// clockToBase is hrtimer_clockid_to_base().
func clockToBase(clock ClockID) (int, bool) {
	switch clock {
	case ClockRealtime:
		return baseRealtime, true
	case ClockMonotonic:
		return baseMonotonic, true
	case ClockBoottime:
		return baseBoottime, true
	case ClockTAI:
		return baseTAI, true
	}
	return baseMonotonic, false
}

// addSafe is ktime_add_safe(): lhs + rhs, saturating to KTIME_SEC_MAX
// seconds on overflow (and, as in the kernel, whenever the sum is smaller
// than either operand, which a negative rhs makes it).
func addSafe(lhs, rhs int64) int64 {
	res := int64(uint64(lhs) + uint64(rhs))
	if res < 0 || res < lhs || res < rhs {
		res = ktimeSecMaxNs
	}
	return res
}

// The expiry accessors below take the lock of the base t is on (if any),
// so that a callback forwarding its timer and a task re-starting it are
// serialised, as the kernel's cpu_base->lock serialises hrtimer_start
// with the queue. Inside kdefer, where that lock is held, the unlocked
// forms (setExpiresRange, forward) are used.

// SetExpires is hrtimer_set_expires(): soft and hard expiry both become
// time. It does not (re)queue the timer.
func SetExpires(t *HRTimer, time int64) {
	b := lockBase(t)
	t.expires, t.softexpires = time, time
	unlockBase(b)
}

// SetExpiresRange is hrtimer_set_expires_range(): the soft expiry becomes
// time and the hard expiry time + delta (saturating, ktime_add_safe).
func SetExpiresRange(t *HRTimer, time, delta int64) {
	b := lockBase(t)
	setExpiresRange(t, time, delta)
	unlockBase(b)
}

// SetExpiresRangeNs is hrtimer_set_expires_range_ns(): as SetExpiresRange
// with the slack in ns. The kernel's delta is a u64: a negative delta here
// saturates the hard expiry just as a huge u64 does there.
func SetExpiresRangeNs(t *HRTimer, time, deltaNs int64) {
	b := lockBase(t)
	setExpiresRange(t, time, deltaNs)
	unlockBase(b)
}

// setExpiresRange is SetExpiresRange for a caller holding t's base lock.
func setExpiresRange(t *HRTimer, time, delta int64) {
	t.softexpires = time
	t.expires = addSafe(time, delta)
}

// unlockBase unlocks b, the result of lockBase, unless it is nil.
func unlockBase(b *clockBase) {
	if b != nil {
		b.cpu.lock.Unlock()
	}
}

// AddExpires is hrtimer_add_expires(): both expiries move by time
// (saturating).
func AddExpires(t *HRTimer, time int64) {
	b := lockBase(t)
	addExpires(t, time)
	unlockBase(b)
}

func addExpires(t *HRTimer, time int64) {
	t.expires = addSafe(t.expires, time)
	t.softexpires = addSafe(t.softexpires, time)
}

// AddExpiresNs is hrtimer_add_expires_ns(): both expiries move by ns
// (plain addition, as ktime_add_ns).
func AddExpiresNs(t *HRTimer, ns uint64) {
	b := lockBase(t)
	t.expires += int64(ns)
	t.softexpires += int64(ns)
	unlockBase(b)
}

// GetExpires is hrtimer_get_expires(): the hard expiry.
func GetExpires(t *HRTimer) int64 {
	b := lockBase(t)
	e := t.expires
	unlockBase(b)
	return e
}

// GetSoftExpires is hrtimer_get_softexpires(): the soft expiry.
func GetSoftExpires(t *HRTimer) int64 {
	b := lockBase(t)
	e := t.softexpires
	unlockBase(b)
	return e
}

// Forward is hrtimer_forward(): it moves t's expiry forward by whole
// intervals until it lies after now and returns the number of intervals
// added (the overruns). The timer is not requeued: call it from the
// callback and return Restart, or start the timer afterwards.
//
// The math is the kernel's: it returns 0 and changes nothing if now is
// before the expiry; an interval below the resolution (1 ns) is raised to
// it; if now is at least one interval past the expiry, orun = delta /
// interval intervals are added at once and, if the expiry is still not
// after now, one more (orun + 1); otherwise one interval is added and 1
// returned. The soft expiry moves with the hard one, keeping the range.
//
// Forward runs under t's base lock, so a task that starts t while its
// callback forwards it is serialised with it: the start wins if it comes
// second, and a forward that comes second finds t queued.
//
// Difference: forwarding a queued timer is a bug the kernel reports with
// WARN_ON; here it returns 0 without a report (there is no context to
// report it in).
func Forward(t *HRTimer, now, interval int64) uint64 {
	b := lockBase(t)
	orun := forward(t, now, interval)
	unlockBase(b)
	return orun
}

// forward is Forward for a caller holding t's base lock (or for a timer
// without a base).
func forward(t *HRTimer, now, interval int64) uint64 {
	delta := now - t.expires
	if delta < 0 {
		return 0
	}
	if t.state.Load()&StateEnqueued != 0 {
		return 0
	}
	if interval < Resolution {
		interval = Resolution
	}
	orun := uint64(1)
	if delta >= interval {
		orun = uint64(delta / interval)
		t.expires += interval * int64(orun)
		t.softexpires += interval * int64(orun)
		if t.expires > now {
			return orun
		}
		// This and the addExpires below are the correction for exact
		// multiples (the kernel's comment).
		orun++
	}
	addExpires(t, interval)
	return orun
}

// ForwardNow is hrtimer_forward_now(): Forward(t, time of t's clock,
// interval). t must have been started at least once (see Setup).
func ForwardNow(t *HRTimer, interval int64) uint64 {
	return Forward(t, CbGetTime(t), interval)
}

// CbGetTime is hrtimer_cb_get_time(): the current time of t's clock
// (monotonic ns since boot, or realtime ns since the epoch). It reads 0 for
// a timer that has not been started since Setup.
func CbGetTime(t *HRTimer) int64 {
	b := stableBase(t)
	if b == nil {
		return 0
	}
	return b.getTime()
}

// IsQueued is hrtimer_is_queued(): whether t is enqueued (a lockless read
// of its state, as in the kernel).
func IsQueued(t *HRTimer) bool { return t.state.Load()&StateEnqueued != 0 }
