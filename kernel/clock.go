package kernel

import (
	"math/bits"
	"os"
	"runtime"
	"strings"
	"sync"
	_ "unsafe" // go:linkname
)

// Now returns CLOCK_MONOTONIC in nanoseconds since boot (ktime_get()). In
// real time it reads the machine's clock (see realClock); in virtual time
// it is the virtual clock, which moves only when every task is blocked (or
// a task busy-waits with Spin).
func (k *Kernel) Now() int64 {
	if k.virtual {
		return k.vnow.Load()
	}
	return k.clock.now()
}

// nanotime is the Go runtime's monotonic clock in ns (what time.Now's
// monotonic reading and time.Since use), without the wall-clock read.
// runtime.nanotime is on the Go toolchain's list of linknamed symbols that
// stay available.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// realClock is a real-time kernel's clock source. Where the operating
// system itself keeps CLOCK_MONOTONIC on the CPU's time-stamp counter
// (Linux on x86-64 with clocksource "tsc", an invariant TSC: constant_tsc
// and nonstop_tsc), it reads the TSC directly, scaled by a rate calibrated
// against the runtime's monotonic clock: RDTSC without the LFENCE and the
// vDSO call costs a few ns where a monotonic-clock read costs 20-30, and
// jiffies is read on every timer arm. Elsewhere (or with
// KDEFER_CLOCK=monotonic in the environment) it reads the runtime's
// monotonic clock.
//
// The TSC clock is CLOCK_MONOTONIC's rate as measured once per process
// (a hardware constant, not kernel state: every kernel has its own
// origin); it does not follow the NTP frequency corrections the
// operating system applies later, so it may drift from time.Now by a few
// parts per million. Everything in a kernel (jiffies, timers, sleeps,
// printk times) reads this one clock, so that drift never makes a timer
// early.
type realClock struct {
	tsc   bool   // read the TSC
	tsc0  uint64 // TSC at boot
	mult  uint64 // ns per TSC tick, 32.32 fixed point
	multJ uint64 // jiffies per TSC tick, 0.64 fixed point: mult / TICK_NSEC, rounded down (Ctx.readJiffies)
	nano0 int64  // nanotime at boot (the fallback's origin)
}

// init sets the clock's origin to now, for a kernel whose jiffy is tickNs.
func (rc *realClock) init(tickNs int64) {
	cal := tscCalibration()
	rc.tsc, rc.mult = cal.ok, cal.mult
	if rc.tsc {
		rc.multJ, _ = bits.Div64(rc.mult>>32, rc.mult<<32, uint64(tickNs))
	}
	rc.nano0 = nanotime()
	rc.tsc0 = rdtsc()
}

// now returns ns since the clock's origin.
func (rc *realClock) now() int64 {
	if rc.tsc {
		d := int64(rdtsc() - rc.tsc0)
		if d < 0 { // read on a CPU whose counter is a hair behind
			return 0
		}
		hi, lo := bits.Mul64(uint64(d), rc.mult)
		return int64(hi<<32 | lo>>32)
	}
	return nanotime() - rc.nano0
}

// tscCal is the measured TSC rate, shared by the kernels of a process as
// the hardware constant it is (like the runtime's own tick calibration).
var tscCal struct {
	once sync.Once
	ok   bool
	mult uint64
}

// tscCalibration measures, on first use, the TSC's rate against the
// runtime's monotonic clock over 5 ms, if the TSC may be used at all.
func tscCalibration() (cal struct {
	ok   bool
	mult uint64
}) {
	tscCal.once.Do(func() {
		if !haveTSC || os.Getenv("KDEFER_CLOCK") == "monotonic" || !tscTrusted() {
			return
		}
		// Pair a nanotime with the TSC read halfway between two
		// TSC reads around it; keep the tightest of a few.
		pair := func() (int64, uint64) {
			best, ns, tsc := ^uint64(0), int64(0), uint64(0)
			for range 7 {
				a := rdtsc()
				n := nanotime()
				b := rdtsc()
				if b > a && b-a < best {
					best, ns, tsc = b-a, n, a+(b-a)/2
				}
			}
			return ns, tsc
		}
		n0, t0 := pair()
		for nanotime()-n0 < 5_000_000 {
		}
		n1, t1 := pair()
		if n1 <= n0 || t1 <= t0 {
			return
		}
		mult := (uint64(n1-n0) << 32) / (t1 - t0)
		// A TSC between 100 MHz and 20 GHz, or something is wrong.
		if mult < 1<<32/20 || mult > 10<<32 {
			return
		}
		tscCal.ok, tscCal.mult = true, mult
	})
	cal.ok, cal.mult = tscCal.ok, tscCal.mult
	return cal
}

// tscTrusted reports whether the operating system keeps its own monotonic
// clock on an invariant TSC, which it checks for synchronisation between
// CPUs before it does.
func tscTrusted() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil || strings.TrimSpace(string(cs)) != "tsc" {
		return false
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(line, "flags") {
			f := " " + line + " "
			return strings.Contains(f, " constant_tsc ") && strings.Contains(f, " nonstop_tsc ")
		}
	}
	return false
}

// RealtimeOffset is the kernel's offs_real: CLOCK_REALTIME minus
// CLOCK_MONOTONIC, fixed at boot in kdefer.
func (k *Kernel) RealtimeOffset() int64 { return k.realBase }

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
//
//go:noinline
func (k *Kernel) realJiffies() uint64 { return k.initialJ + k.ticks(k.clock.now()) }

// Ctx.readJiffies has its own TSC-to-jiffies conversion (one multiply,
// never ahead of realJiffies), to save calls on the arm path.

// ticks returns ns / TICK_NSEC without a division instruction: tickRecip
// is floor(2^64 / TICK_NSEC), so the high word of the product is the
// quotient or one less.
func (k *Kernel) ticks(ns int64) uint64 {
	n := uint64(ns)
	q, _ := bits.Mul64(n, k.tickRecip)
	if (q+1)*uint64(k.tickNs) <= n {
		q++
	}
	return q
}

// setVnow moves the virtual clock (only the driver or the task holding the
// run token does) and keeps the cached jiffies in step.
func (k *Kernel) setVnow(ns int64) {
	k.vnow.Store(ns)
	k.vjiffies.Store(k.initialJ + k.ticks(ns))
}

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
