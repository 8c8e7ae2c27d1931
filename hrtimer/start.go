package hrtimer

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// Start is hrtimer_start(): StartRangeNs with no slack. The timer fires at
// tim exactly (ModeAbs) or tim ns from now (ModeRel).
func Start(c *kernel.Ctx, t *HRTimer, tim int64, mode Mode) {
	StartRangeNs(c, t, tim, 0, mode)
}

// StartTimerExpires is hrtimer_start_expires(): it (re)starts t with the
// soft and hard expiry already set on it (SetExpires, SetExpiresRangeNs,
// Forward), keeping the range.
func StartTimerExpires(c *kernel.Ctx, t *HRTimer, mode Mode) {
	startRange(c, t, 0, 0, mode, true)
}

// StartRangeNs is hrtimer_start_range_ns(): it (re)starts t so that it
// fires at a time in [tim, tim+deltaNs] (tim relative to now with
// ModeRel, on t's clock), the earliest moment another expiry on the same
// CPU runs the queue after tim, and at tim+deltaNs at the latest. A timer
// that is queued is removed first: a restart is always a full re-enqueue,
// even for an unchanged expiry. A timer whose callback is running is
// queued again while the callback goes on; its Restart return then has
// no further effect. It may be called from any context.
//
// The SOFT bit of mode must match the one t was set up with; a mismatch
// is reported with the kernel's WARN_ON_ONCE and the timer keeps the
// context chosen at setup.
//
// CPU choice: the timer is queued on the caller's CPU (c.CPU()), except
// that a timer whose callback is running stays on the CPU that runs it.
// That is the kernel's behaviour with timer migration disabled
// (kernel.timer_migration=0, or !CONFIG_NO_HZ_COMMON); the NO_HZ
// migration of unpinned timers to a busy CPU is not modelled, so PINNED
// changes nothing here. If the timer becomes the first to expire on its
// CPU, the CPU is kicked to re-program its sleep (the kernel reprograms
// the clock-event device).
//
// A timer that was never set up is not started: that is reported (the
// kernel would crash on it).
func StartRangeNs(c *kernel.Ctx, t *HRTimer, tim, deltaNs int64, mode Mode) {
	startRange(c, t, tim, deltaNs, mode, false)
}

// startRange is hrtimer_start_range_ns; with keep, tim and deltaNs are
// the soft expiry and range set on t, read under the base lock
// (hrtimer_start_expires).
func startRange(c *kernel.Ctx, t *HRTimer, tim, deltaNs int64, mode Mode, keep bool) {
	k := c.Kernel()
	st := getState(k)
	if !t.initialized {
		if !st.warnedNoSetup.Swap(true) {
			kernel.Warn(c, "hrtimer_start_range_ns: hrtimer used before hrtimer_setup()\n")
		}
		return
	}
	if w := t.setupWarn.Load(); w != 0 && t.setupWarn.CompareAndSwap(w, 0) {
		if w&warnBadClock != 0 {
			kernel.Warn(c, "Invalid clockid %d. Using MONOTONIC\n", t.clockArg)
		}
		if w&warnNilFunc != 0 {
			// WARN_ON_ONCE(!function) in __hrtimer_setup: once per
			// kernel; kdefer adds the explanation.
			kernel.WarnOnce(c, true, "hrtimer_setup: NULL callback function\n")
		}
		if w&traceSetupPending != 0 {
			traceSetup(c, t)
		}
	}
	// WARN_ON_ONCE(!(mode & HRTIMER_MODE_SOFT) ^ !timer->is_soft)
	if (mode&ModeSoft != 0) != t.isSoft && !st.warnedSoftMode.Swap(true) {
		kernel.Warn(c, "")
	}
	this := &st.cpus[c.CPU()]
	for {
		b := lockBase(t)
		if b == nil {
			// First start since Setup: bind the timer to this CPU.
			nb := &this.clock[t.baseIdx]
			nb.cpu.lock.Lock()
			if !t.base.CompareAndSwap(nil, nb) {
				nb.cpu.lock.Unlock()
				continue
			}
			b = nb
		}
		// remove_hrtimer(restart=true): the state stays ENQUEUED through
		// the re-enqueue so that lockless readers never see a gap.
		b.cpu.traceCancel(c, t)
		b.remove(t, t.state.Load())
		if keep {
			tim, deltaNs = t.softexpires, t.expires-t.softexpires
		}
		if mode&ModeRel != 0 {
			tim = addSafe(tim, b.getTime())
		}
		setExpiresRange(t, tim, deltaNs)

		// switch_hrtimer_base(): the caller's CPU, unless the callback
		// is running (it cannot move then).
		nb := b
		if b.running != t {
			nb = &this.clock[t.baseIdx]
		}
		if nb != b {
			t.base.Store(&st.migration)
			b.cpu.lock.Unlock()
			nb.cpu.lock.Lock()
			t.base.Store(nb)
		}
		cb := nb.cpu
		kick := nb.enqueue(t) && cb.needsKick(nb, t)
		if cb.tr.On(trace.HrtimerStart) {
			emitStart(c, t, mode)
		}
		cb.lock.Unlock()
		if kick {
			k.KickCPU(cb.cpu)
		}
		return
	}
}

// TryToCancel is hrtimer_try_to_cancel(): it dequeues t if it is queued
// and its callback is not running. It returns 0 if t was not active, 1 if
// it was queued and is now removed, and -1 if its callback is running
// (then t is left alone, even if the callback already re-queued it). It
// never waits and may be called from any context, including t's callback.
func TryToCancel(t *HRTimer) int {
	b := lockBase(t)
	if b == nil {
		return 0
	}
	ret := -1
	if b.running != t {
		ret = 0
		b.cpu.traceCancelNoCtx(t)
		if b.remove(t, StateInactive) {
			ret = 1
		}
	}
	b.cpu.lock.Unlock()
	return ret
}

// Cancel is hrtimer_cancel(): it dequeues t and waits until its callback
// is not running. It returns 0 if t was not active and 1 if it was. Once
// it returns, t is neither queued nor running (unless someone else
// restarts it). It may be called from any context but, as in the kernel,
// never from t's own callback nor while holding a lock the callback takes.
//
// Waiting goes through the kernel (kernel.WaitVarEvent): a task in process
// context sleeps in TASK_UNINTERRUPTIBLE until the callback returns (the
// kernel spins, or sleeps on the softirq expiry lock on PREEMPT_RT); an
// atomic context busy-waits. In virtual time a callback can only be running
// while it busy-waits, and the caller waits while time moves on. The kernel
// would spin forever on a callback that cancels its own timer; kdefer
// reports it with a WARN instead and returns -1, leaving the timer as it is.
func Cancel(c *kernel.Ctx, t *HRTimer) int {
	for {
		b := lockBase(t)
		if b == nil {
			return 0
		}
		cb := b.cpu
		if b.running != t {
			ret := 0
			cb.traceCancel(c, t)
			if b.remove(t, StateInactive) {
				ret = 1
			}
			cb.lock.Unlock()
			return ret
		}
		if b.runningCtx == c {
			cb.lock.Unlock()
			kernel.Warn(c, "hrtimer_cancel: %s: cancelling a timer from its own callback would wait forever\n", funcName(t))
			return -1
		}
		// hrtimer_cancel_wait_running(): through the kernel's wait
		// primitive (a task sleeps in TASK_UNINTERRUPTIBLE, an atomic
		// context busy-waits).
		cb.waiters++
		cb.lock.Unlock()
		kernel.WaitVarEvent(c, t, func() bool {
			cb.lock.Lock()
			r := b.running != t
			cb.lock.Unlock()
			return r
		})
		cb.lock.Lock()
		cb.waiters--
		cb.lock.Unlock()
	}
}

// Active is hrtimer_active(): whether t is queued or its callback is
// running. Unlike the kernel's lockless read it takes the base lock, so it
// has no false negatives either.
func Active(t *HRTimer) bool {
	b := lockBase(t)
	if b == nil {
		return false
	}
	r := t.state.Load() != StateInactive || b.running == t
	b.cpu.lock.Unlock()
	return r
}

// CallbackRunning is hrtimer_callback_running(): whether t's callback is
// running right now (base->running == t).
func CallbackRunning(t *HRTimer) bool {
	b := lockBase(t)
	if b == nil {
		return false
	}
	r := b.running == t
	b.cpu.lock.Unlock()
	return r
}

// GetRemaining is hrtimer_get_remaining(): the time left until t's hard
// expiry on its clock, negative if it has passed. Read under the base lock.
// For a timer never started since Setup the clock reads 0.
func GetRemaining(t *HRTimer) int64 {
	b := lockBase(t)
	if b == nil {
		return t.expires
	}
	rem := t.expires - b.getTime()
	b.cpu.lock.Unlock()
	return rem
}
