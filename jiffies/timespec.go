package jiffies

// Conversions between jiffies and struct timespec64 / struct timeval, as in
// kernel/time/time.c and the scaled-math constants of include/linux/jiffies.h
// for a 64-bit kernel. As elsewhere in this package, unsigned long and u64
// arithmetic wraps modulo 2^64; where the kernel's signed long arithmetic
// would overflow (undefined behaviour in C, only reachable with a tv_nsec or
// tv_usec far outside its valid range), Go's two's-complement wrap is used.

// Timespec64 is a time as seconds and nanoseconds. A normalized value has
// 0 <= Nsec < 1e9; negative times have a negative Sec and a non-negative
// Nsec.
//
// Kernel counterpart: struct timespec64 (include/linux/time64.h), whose
// tv_sec is a time64_t and tv_nsec a long. On a 64-bit kernel the old
// struct timespec had the same layout, so this type also stands for it.
type Timespec64 struct {
	Sec  int64 // tv_sec
	Nsec int64 // tv_nsec
}

// Timeval is a time as seconds and microseconds; a normalized value has
// 0 <= Usec < 1e6.
//
// Kernel counterpart: struct timeval (64-bit layout: time_t tv_sec,
// suseconds_t tv_usec), now struct __kernel_old_timeval. The kernel removed
// struct timeval from its internal API in Linux 5.6 (y2038 work); it is
// kept here for the LDD3-era functions that use it.
type Timeval struct {
	Sec  int64 // tv_sec
	Usec int64 // tv_usec
}

// shiftHZ returns SHIFT_HZ from include/linux/jiffies.h: log2 of the power of
// two nearest to HZ (7 at HZ=100, 8 at 250 and 300, 10 at 1000).
func (hz HZ) shiftHZ() uint {
	h := hz.mustValid()
	switch {
	case h >= 96 && h < 192:
		return 7
	case h >= 192 && h < 384:
		return 8
	case h >= 384 && h < 768:
		return 9
	default: // 768 <= HZ < 1536
		return 10
	}
}

// scaled holds the scaled-math constants of include/linux/jiffies.h for one
// HZ on a 64-bit kernel.
type scaled struct {
	secSC      uint   // SEC_JIFFIE_SC
	secConv    uint64 // SEC_CONVERSION
	nsecConv   uint64 // NSEC_CONVERSION
	maxSecInJf uint64 // MAX_SEC_IN_JIFFIES (64-bit definition)
}

// nsecJiffieShift is NSEC_JIFFIE_SC - SEC_JIFFIE_SC: NSEC_JIFFIE_SC is
// defined as SEC_JIFFIE_SC + 29.
const nsecJiffieShift = 29

// scaled derives the constants exactly as the preprocessor does:
//
//	SEC_JIFFIE_SC   = 31 - SHIFT_HZ, bumped to 32 - SHIFT_HZ when
//	                  (((NSEC_PER_SEC << 2) / TICK_NSEC) << (SEC_JIFFIE_SC - 2))
//	                  & 0x80000000 is clear (25, 24, 23, 22 at HZ=100, 250,
//	                  300, 1000)
//	SEC_CONVERSION  = ((NSEC_PER_SEC << SEC_JIFFIE_SC) + TICK_NSEC - 1) / TICK_NSEC
//	NSEC_CONVERSION = ((1 << NSEC_JIFFIE_SC) + TICK_NSEC - 1) / TICK_NSEC
//	MAX_SEC_IN_JIFFIES = SH_DIV((MAX_JIFFY_OFFSET >> SEC_JIFFIE_SC) * TICK_NSEC,
//	                            NSEC_PER_SEC, 1) - 1
//
// with SH_DIV(NOM, DEN, LSH) = ((NOM / DEN) << LSH) +
// (((NOM % DEN) << LSH) + DEN / 2) / DEN. Every intermediate fits in 64 bits
// for the valid HZ values, as it does in the kernel's long arithmetic.
func (hz HZ) scaled() scaled {
	tick := uint64(hz.TickNsec())
	shift := hz.shiftHZ()
	sc := 31 - shift
	if ((nsecPerSec<<2)/tick)<<(sc-2)&0x80000000 == 0 {
		sc = 32 - shift
	}
	nom := (MaxJiffyOffset >> sc) * tick
	const den = nsecPerSec
	shDiv := (nom/den)<<1 + ((nom%den)<<1+den/2)/den
	return scaled{
		secSC:      sc,
		secConv:    (nsecPerSec<<sc + tick - 1) / tick,
		nsecConv:   (uint64(1)<<(sc+nsecJiffieShift) + tick - 1) / tick,
		maxSecInJf: shDiv - 1,
	}
}

// timespecToJiffies is the body of timespec64_to_jiffies (and, up to Linux
// 5.5, of __timespec64_to_jiffies) for a seconds value already converted to
// u64 and a tv_nsec of type long.
func (hz HZ) timespecToJiffies(sec uint64, nsec int64) uint64 {
	c := hz.scaled()
	nsec += hz.TickNsec() - 1
	if sec >= c.maxSecInJf {
		sec = c.maxSecInJf
		nsec = 0
	}
	return (sec*c.secConv + (uint64(nsec)*c.nsecConv)>>nsecJiffieShift) >> c.secSC
}

// Timespec64ToJiffies converts a relative time to jiffies, rounding up, so
// that a non-zero timeout never becomes zero jiffies.
//
// Kernel counterpart: timespec64_to_jiffies (kernel/time/time.c). It uses the
// kernel's scaled math: tv_nsec + TICK_NSEC - 1 is multiplied by
// NSEC_CONVERSION (about 2^NSEC_JIFFIE_SC / TICK_NSEC, rounded up) and
// shifted right by 29, tv_sec is multiplied by SEC_CONVERSION (about
// 2^SEC_JIFFIE_SC * NSEC_PER_SEC / TICK_NSEC, rounded up), and the sum is
// shifted right by SEC_JIFFIE_SC. Because both multipliers are rounded up,
// the result is never below ceil((Sec*1e9 + Nsec) / TICK_NSEC) for a
// normalized ts under the clamp. At HZ=100, 250 and 1000 it equals that
// ceiling. At HZ=300 SEC_CONVERSION is 0.34 too large (2516582652 for
// 2^23*1e9/3333333 = 2516582651.66), so every second counts about 4e-8
// jiffies too many: a duration of a whole number of jiffies comes out one
// jiffy long from 1471 jiffies (4.9 s) on, and the excess grows to 150
// jiffies just below the clamp. The kernel's comment accepts this
// multiplier error. A side effect at HZ=300: {MAX_SEC_IN_JIFFIES-1,
// 999999999} gives one jiffy more than the clamp itself.
//
// tv_sec is converted to u64, so a negative Sec is a huge value. Any Sec at
// or above MAX_SEC_IN_JIFFIES is clamped to it, and Nsec is then ignored:
// the result is MAX_SEC_IN_JIFFIES * HZ jiffies, about 2^38 to 2^41
// (87 years at HZ=100, 70 years at 250 and 1000, 116 years at 300), far
// below [MaxJiffyOffset]: the kernel's 64-bit MAX_SEC_IN_JIFFIES is scaled
// down by 2^(SEC_JIFFIE_SC-1) so that Sec * SEC_CONVERSION cannot overflow
// (2748779068, 2199023255, 3665038392 and 2199023255 seconds at HZ=100,
// 250, 300 and 1000). Nsec is not validated: values
// outside [0, 1e9) go through the same arithmetic and wrap as in the
// kernel.
func (hz HZ) Timespec64ToJiffies(ts Timespec64) uint64 {
	return hz.timespecToJiffies(uint64(ts.Sec), ts.Nsec)
}

// JiffiesToTimespec64 converts j jiffies to seconds and nanoseconds.
//
// Kernel counterpart: jiffies_to_timespec64, which splits the u64 product
// j * TICK_NSEC with one div_u64_rem by NSEC_PER_SEC. The product wraps
// modulo 2^64 for j above about 1.8e12 (HZ=100) to 1.8e13 (HZ=1000), as in
// the kernel. At HZ=300 a jiffy is TICK_NSEC = 3333333 ns, so 300 jiffies
// are 999999900 ns, not one second.
func (hz HZ) JiffiesToTimespec64(j uint64) Timespec64 {
	n := j * uint64(hz.TickNsec())
	return Timespec64{Sec: int64(n / nsecPerSec), Nsec: int64(n % nsecPerSec)}
}

// TimespecToJiffies is the LDD3 name of [HZ.Timespec64ToJiffies].
//
// Kernel counterpart: timespec_to_jiffies(const struct timespec *), removed
// in Linux 5.6 with the other struct timespec helpers (y2038 cleanup). Its
// last version converted the timespec to a timespec64 and called
// timespec64_to_jiffies; on a 64-bit kernel the two structures are the same,
// so the result is identical.
func (hz HZ) TimespecToJiffies(ts Timespec64) uint64 {
	return hz.Timespec64ToJiffies(ts)
}

// JiffiesToTimespec is the LDD3 name of [HZ.JiffiesToTimespec64].
//
// Kernel counterpart: jiffies_to_timespec(unsigned long, struct timespec *),
// removed in Linux 5.6. Its last version called jiffies_to_timespec64 and
// copied the result, which on a 64-bit kernel changes nothing.
func (hz HZ) JiffiesToTimespec(j uint64) Timespec64 {
	return hz.JiffiesToTimespec64(j)
}

// TimevalToJiffies converts a relative time in seconds and microseconds to
// jiffies, rounding up.
//
// Kernel counterpart: timeval_to_jiffies, removed in Linux 5.6. Its last
// version (kernel/time/time.c up to 5.5) did not use the older
// USEC_CONVERSION/USEC_ROUND scaled math, which could overestimate; it
// called the timespec conversion with tv_usec * NSEC_PER_USEC as the
// nanoseconds, so the result equals [HZ.Timespec64ToJiffies] of
// {Sec, Usec*1000}, including its clamp to MAX_SEC_IN_JIFFIES.
func (hz HZ) TimevalToJiffies(tv Timeval) uint64 {
	return hz.timespecToJiffies(uint64(tv.Sec), tv.Usec*nsecPerUsec)
}

// JiffiesToTimeval converts j jiffies to seconds and microseconds, rounding
// the sub-second part down to a microsecond.
//
// Kernel counterpart: jiffies_to_timeval, removed in Linux 5.6. Its last
// version split j * TICK_NSEC (u64, wrapping) with div_u64_rem by
// NSEC_PER_SEC and divided the remainder by NSEC_PER_USEC.
func (hz HZ) JiffiesToTimeval(j uint64) Timeval {
	ts := hz.JiffiesToTimespec64(j)
	return Timeval{Sec: ts.Sec, Usec: ts.Nsec / nsecPerUsec}
}
