// Package timekeeping holds the time-of-day accessors of LDD3 chapter 7 and
// their current replacements: the wall clock as a timespec64 or timeval
// (fine and coarse), the cycle counter, and the calendar conversion
// mktime64.
//
// Kernel counterparts: kernel/time/timekeeping.c (ktime_get_real_ts64,
// ktime_get_coarse_real_ts64), kernel/time/time.c (mktime64),
// include/linux/timekeeping.h, arch/x86/include/asm/tsc.h (get_cycles),
// and the LDD3-era names later kernels removed (do_gettimeofday,
// current_kernel_time, mktime), each documented with its last kernel
// version.
//
// The clock readers take the caller's execution context first, like every
// kdefer kernel API, and read the clocks of its kernel through the
// kernel's exported queries (Kernel.Now, Kernel.RealtimeOffset,
// Kernel.Jiffies, Kernel.TickNsec…). They never sleep and may be called
// from any context: process, softirq or hardirq (a test driving a virtual
// kernel between Run calls can use Kernel.IdleCtx).
//
// Deliberate differences: CLOCK_REALTIME is the kernel's boot-time wall
// clock plus CLOCK_MONOTONIC (no settimeofday, no NTP slewing), 2000-01-01
// in virtual time; the TSC is the monotonic clock at 1 GHz; see each
// function.
package timekeeping

import (
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
)

const nsecPerSec = 1000000000

// nsToTimespec64 splits ns into seconds and a non-negative nanosecond part,
// as ns_to_timespec64 does: for negative times tv_sec is the earlier second
// and tv_nsec counts up from it.
func nsToTimespec64(ns int64) jiffies.Timespec64 {
	sec, rem := ns/nsecPerSec, ns%nsecPerSec
	if rem < 0 {
		sec--
		rem += nsecPerSec
	}
	return jiffies.Timespec64{Sec: sec, Nsec: rem}
}

// GetCycles returns the time-stamp counter.
//
// Kernel counterpart: get_cycles() (cycles_t, unsigned long long on x86),
// which on x86 is rdtsc(), or 0 on a CPU without a TSC. kdefer's TSC is
// always present, runs at exactly 1 GHz, is synchronized across CPUs and
// starts at 0 at boot: it reads CLOCK_MONOTONIC in nanoseconds, the same
// value as [kernel.Kernel.Now], so one cycle is one nanosecond. In virtual
// time it therefore advances only with the virtual clock (a busy loop that
// does not Spin sees it stand still).
func GetCycles(c *kernel.Ctx) uint64 {
	return uint64(c.Kernel().Now())
}

// KtimeGetRealTs64 returns CLOCK_REALTIME as seconds and nanoseconds since
// the Unix epoch, at full (nanosecond) resolution.
//
// Kernel counterpart: ktime_get_real_ts64() (the replacement for
// getnstimeofday). It is [KtimeGetRealNs] split like
// ns_to_timespec64: Nsec is always in [0, 1e9), also for a realtime base
// before 1970. As with KtimeGetRealNs, the wall clock is fixed at boot and
// does not follow settimeofday or NTP.
func KtimeGetRealTs64(c *kernel.Ctx) jiffies.Timespec64 {
	return nsToTimespec64(KtimeGetRealNs(c))
}

// KtimeGetCoarseRealTs64 returns CLOCK_REALTIME_COARSE: the wall clock as of
// the last tick, with jiffy resolution and no clock read.
//
// Kernel counterpart: ktime_get_coarse_real_ts64(), which returns the
// timekeeper's xtime as updated at the last tick. kdefer has no periodic
// tick (jiffies is derived from the clock), so the "last tick" is the last
// jiffies boundary: the value is the boot-time wall clock plus
// (jiffies - INITIAL_JIFFIES) * TICK_NSEC. It is never ahead of
// [KtimeGetRealTs64] and trails it by less than one TICK_NSEC; two
// reads within the same jiffy return the same value. (The kernel's coarse
// clock can lag more when ticks are stopped on an idle NOHZ CPU; kdefer's
// never does.)
func KtimeGetCoarseRealTs64(c *kernel.Ctx) jiffies.Timespec64 {
	k := c.Kernel()
	ticks := int64(k.Jiffies() - k.InitialJiffies())
	return nsToTimespec64(k.RealtimeOffset() + ticks*k.TickNsec())
}

// CurrentKernelTime returns the wall clock with the resolution of one jiffy:
// the same value as [KtimeGetCoarseRealTs64].
//
// Kernel counterpart: current_kernel_time(), the LDD3 name. It returned a
// struct timespec; its last version (include/linux/timekeeping32.h) was a
// wrapper around ktime_get_coarse_real_ts64, and it was removed in the Linux
// 5.x y2038 cleanup along with the rest of timekeeping32.h. New code uses
// ktime_get_coarse_real_ts64.
func CurrentKernelTime(c *kernel.Ctx) jiffies.Timespec64 {
	return KtimeGetCoarseRealTs64(c)
}

// DoGettimeofday returns the wall clock as seconds and microseconds since
// the Unix epoch: [KtimeGetRealTs64] with the nanoseconds divided by
// 1000 (rounded down).
//
// Kernel counterpart: do_gettimeofday(struct timeval *), removed in Linux
// 5.0. Its last version read ktime_get_real_ts64 and stored tv_nsec / 1000
// as tv_usec, which is also what the gettimeofday system call still does.
// New code uses ktime_get_real_ts64.
func DoGettimeofday(c *kernel.Ctx) jiffies.Timeval {
	ts := KtimeGetRealTs64(c)
	return jiffies.Timeval{Sec: ts.Sec, Usec: ts.Nsec / 1000}
}

// Mktime64 converts a Gregorian date and time (UTC) to seconds since
// 1970-01-01 00:00:00, for example Mktime64(1980, 12, 31, 23, 59, 59).
//
// Kernel counterpart: mktime64() in kernel/time/time.c, Gauss's algorithm,
// with the kernel's exact unsigned int arithmetic. The months are first
// shifted so that the year starts in March (1..12 becomes 11, 12, 1..10,
// with January and February counted in the previous year), putting the leap
// day last; then
//
//	((((year/4 - year/100 + year/400 + 367*mon/12 + day) + year*365 - 719499)
//	   *24 + hour)*60 + min)*60 + sec
//
// where the first sum and year*365 are unsigned int (32-bit, wrapping) and
// the rest is time64_t. The inputs are not validated, and the arithmetic is
// linear, so some out-of-range values have documented meanings: hour 24 is
// midnight at the end of the day (ISO 8601), sec 60 (a leap second) is the
// same as the first second of the next minute, day 0 is the last day of the
// previous month, month 0 is December of the previous year, and months 13
// and 14 are January and February of the next year. Other out-of-range
// values give what the formula gives. Year 0 in January or February becomes
// year 0xFFFFFFFF after the shift, as in C.
func Mktime64(year, mon, day, hour, min, sec uint32) int64 {
	// 1..12 -> 11, 12, 1..10
	mon -= 2
	if int32(mon) <= 0 {
		mon += 12 // puts Feb last since it has leap day
		year--
	}
	days := int64(year/4-year/100+year/400+367*mon/12+day) + int64(year*365) - 719499
	return ((days*24+int64(hour))*60+int64(min))*60 + int64(sec)
}

// Mktime is [Mktime64] with the result converted to unsigned long, the LDD3
// signature: a date before 1970 wraps to a huge value, as it did in C.
//
// Kernel counterpart: mktime(), which returned unsigned long and computed
// the same formula. From Linux 3.19 it was a deprecated inline wrapper,
// (unsigned long)mktime64(...), and it is gone from current kernels; new
// code uses mktime64.
func Mktime(year, mon, day, hour, min, sec uint32) uint64 {
	return uint64(Mktime64(year, mon, day, hour, min, sec))
}

// KtimeGet is ktime_get(): CLOCK_MONOTONIC in ns since boot (Kernel.Now).
func KtimeGet(c *kernel.Ctx) int64 { return c.Kernel().Now() }

// KtimeGetBoottimeNs is ktime_get_boottime_ns(). kdefer never suspends, so
// it equals CLOCK_MONOTONIC.
func KtimeGetBoottimeNs(c *kernel.Ctx) int64 { return c.Kernel().Now() }

// KtimeGetRealNs is ktime_get_real_ns(): CLOCK_REALTIME in ns since the
// Unix epoch: the boot-time wall clock plus CLOCK_MONOTONIC
// (Kernel.RealtimeOffset + Kernel.Now). Unlike the kernel's it does not
// follow later settimeofday or NTP steps.
func KtimeGetRealNs(c *kernel.Ctx) int64 {
	k := c.Kernel()
	return k.RealtimeOffset() + k.Now()
}

// KtimeGetRealFastNs is ktime_get_real_fast_ns(), NMI-safe in the kernel;
// here the same as KtimeGetRealNs.
func KtimeGetRealFastNs(c *kernel.Ctx) int64 { return KtimeGetRealNs(c) }

// GetJiffies64 is get_jiffies_64(): the 64-bit jiffies (c.Jiffies()).
func GetJiffies64(c *kernel.Ctx) uint64 { return c.Jiffies() }
