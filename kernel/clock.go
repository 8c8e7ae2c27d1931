package kernel

import (
	"math/bits"
	"time"
)

// Now returns CLOCK_MONOTONIC in nanoseconds since boot (ktime_get()). In
// real time it reads Go's monotonic clock; in virtual time it is the
// virtual clock, which moves only when every task is blocked (or a task
// busy-waits with Spin).
func (k *Kernel) Now() int64 {
	if k.virtual {
		return k.vnow.Load()
	}
	return int64(time.Since(k.bootMono))
}

// KtimeGet is ktime_get(): CLOCK_MONOTONIC in ns.
func (k *Kernel) KtimeGet() int64 { return k.Now() }

// KtimeGetBoottimeNs is ktime_get_boottime_ns(). kdefer never suspends, so
// it equals CLOCK_MONOTONIC.
func (k *Kernel) KtimeGetBoottimeNs() int64 { return k.Now() }

// KtimeGetRealNs is ktime_get_real_ns(): CLOCK_REALTIME in ns since the
// Unix epoch. It is the boot-time wall clock plus CLOCK_MONOTONIC: unlike
// the kernel's it does not follow later settimeofday or NTP steps.
func (k *Kernel) KtimeGetRealNs() int64 { return k.realBase + k.Now() }

// RealtimeOffset is the kernel's offs_real: CLOCK_REALTIME minus
// CLOCK_MONOTONIC, fixed at boot in kdefer.
func (k *Kernel) RealtimeOffset() int64 { return k.realBase }

// KtimeGetRealFastNs is ktime_get_real_fast_ns(), NMI-safe in the kernel;
// here the same as KtimeGetRealNs.
func (k *Kernel) KtimeGetRealFastNs() int64 { return k.KtimeGetRealNs() }

// Jiffies returns jiffies (jiffies_64 on a 64-bit kernel): INITIAL_JIFFIES
// plus the ticks since boot. kdefer is tickless: jiffies is derived from
// the clock when read rather than incremented by a periodic interrupt, so
// every reader sees the same value at the same instant.
func (k *Kernel) Jiffies() uint64 {
	if k.virtual {
		return k.vjiffies.Load()
	}
	return k.realJiffies()
}

// realJiffies is Jiffies in real time, kept out of line so that the
// virtual-time read inlines.
func (k *Kernel) realJiffies() uint64 { return k.initialJ + k.ticks(k.Now()) }

// ticks returns ns / TICK_NSEC without a division instruction.
func (k *Kernel) ticks(ns int64) uint64 {
	n := uint64(ns)
	q, _ := bits.Mul64(n, k.tickRecip)
	t := uint64(k.tickNs)
	for (q+1)*t <= n {
		q++
	}
	for q*t > n {
		q--
	}
	return q
}

// setVnow moves the virtual clock (only the driver or the task holding the
// run token does) and keeps the cached jiffies in step.
func (k *Kernel) setVnow(ns int64) {
	k.vnow.Store(ns)
	k.vjiffies.Store(k.initialJ + k.ticks(ns))
}

// GetJiffies64 is get_jiffies_64().
func (k *Kernel) GetJiffies64() uint64 { return k.Jiffies() }

// JiffiesToNs returns the time (ns since boot) at which jiffies reaches j,
// or 0 if it already has; the inverse of Jiffies.
func (k *Kernel) JiffiesToNs(j uint64) int64 {
	d := int64(j - k.initialJ)
	if d <= 0 {
		return 0
	}
	if d > NoEvent/k.tickNs {
		return NoEvent // beyond the clock's range: never
	}
	return d * k.tickNs
}

// TickNsec returns TICK_NSEC, the length of one jiffy in ns.
func (k *Kernel) TickNsec() int64 { return k.tickNs }

// InitialJiffies returns INITIAL_JIFFIES for the kernel's HZ.
func (k *Kernel) InitialJiffies() uint64 { return k.initialJ }
