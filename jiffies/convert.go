package jiffies

// The conversions follow the kernel's #if ladders in include/linux/jiffies.h
// and kernel/time/time.c for a 64-bit kernel. The branches for HZ > 1000 and
// for HZ a multiple of 512 cannot be reached with a valid HZ and are left
// out. Arithmetic wraps modulo 2^64 (unsigned long, u64) and results of type
// unsigned int are truncated to 32 bits, exactly as in C.

// MsecsToJiffies converts m milliseconds to jiffies, rounding up, so that a
// non-zero timeout never becomes zero jiffies. A value of m with the top bit
// set ((int)m < 0, a negative millisecond count) means "infinite" and yields
// [MaxJiffyOffset].
//
// Kernel counterpart: msecs_to_jiffies (and __msecs_to_jiffies,
// _msecs_to_jiffies). At HZ=100 and 250 this is (m + 1000/HZ - 1) /
// (1000/HZ); at HZ=1000 it is m; at HZ=300 it is timeconst's
// (MSEC_TO_HZ_MUL32*m + MSEC_TO_HZ_ADJ32) >> MSEC_TO_HZ_SHR32, which equals
// ceil(m*300/1000) for every m it is applied to.
func (hz HZ) MsecsToJiffies(m uint32) uint64 {
	h := hz.mustValid()
	if int32(m) < 0 {
		return MaxJiffyOffset
	}
	if msecPerSec%h == 0 {
		return (uint64(m) + msecPerSec/h - 1) / (msecPerSec / h)
	}
	tc := hz.timeconst()
	return (tc.msecToHZMul32*uint64(m) + tc.msecToHZAdj32) >> tc.msecToHZShr32
}

// UsecsToJiffies converts u microseconds to jiffies, rounding up. Values
// above JiffiesToUsecs(MaxJiffyOffset) yield [MaxJiffyOffset].
//
// Kernel counterpart: usecs_to_jiffies (and __usecs_to_jiffies,
// _usecs_to_jiffies). The clamp threshold is the kernel's own
// jiffies_to_usecs(MAX_JIFFY_OFFSET), whose unsigned int result is
// truncated on 64-bit: 4294947296 at HZ=100, 4294959296 at 250, 4294965296
// at 1000, and only 1431649098 at HZ=300, so at HZ=300 any u above that
// (about 1432 s) is clamped. Below the threshold the result is
// ceil(u*HZ/1000000), computed with timeconst's USEC_TO_HZ constants at
// HZ=300.
func (hz HZ) UsecsToJiffies(u uint32) uint64 {
	h := hz.mustValid()
	if u > hz.JiffiesToUsecs(MaxJiffyOffset) {
		return MaxJiffyOffset
	}
	if usecPerSec%h == 0 {
		return (uint64(u) + usecPerSec/h - 1) / (usecPerSec / h)
	}
	tc := hz.timeconst()
	return (tc.usecToHZMul32*uint64(u) + tc.usecToHZAdj32) >> tc.usecToHZShr32
}

// NsecsToJiffies64 converts n nanoseconds to jiffies, rounding down. It does
// not clamp to [MaxJiffyOffset]; the kernel meant it for the scheduler, not
// for driver timeouts.
//
// Kernel counterpart: nsecs_to_jiffies64. At HZ=100, 250 and 1000 this is
// n / (NSEC_PER_SEC/HZ). At HZ=300 it is the kernel's generic
// n*9 / ((9*NSEC_PER_SEC + HZ/2) / HZ), whose 64-bit product n*9 wraps for
// n above about 2^64/9 ns (65 years); the wrapped value is returned, as in
// the kernel.
func (hz HZ) NsecsToJiffies64(n uint64) uint64 {
	h := hz.mustValid()
	if nsecPerSec%h == 0 {
		return n / (nsecPerSec / h)
	}
	return n * 9 / ((9*nsecPerSec + h/2) / h)
}

// NsecsToJiffies converts n nanoseconds to jiffies, rounding down, without
// clamping. Kernel counterpart: nsecs_to_jiffies, which is
// (unsigned long)nsecs_to_jiffies64(n) and so, on 64-bit, the same as
// [HZ.NsecsToJiffies64].
func (hz HZ) NsecsToJiffies(n uint64) uint64 {
	return hz.NsecsToJiffies64(n)
}

// JiffiesToMsecs converts j jiffies to milliseconds, rounding up, truncated
// to 32 bits like the kernel's unsigned int result.
//
// Kernel counterpart: jiffies_to_msecs. At HZ=100, 250 and 1000 this is
// (1000/HZ)*j; at HZ=300 it is the 64-bit DIV_ROUND_UP(j*HZ_TO_MSEC_NUM,
// HZ_TO_MSEC_DEN) = (j*10 + 2) / 3, whose intermediate wraps modulo 2^64 for
// huge j.
func (hz HZ) JiffiesToMsecs(j uint64) uint32 {
	h := hz.mustValid()
	if msecPerSec%h == 0 {
		return uint32(msecPerSec / h * j)
	}
	tc := hz.timeconst()
	return uint32((j*tc.hzToMsecNum + tc.hzToMsecDen - 1) / tc.hzToMsecDen)
}

// JiffiesToUsecs converts j jiffies to microseconds, truncated to 32 bits
// like the kernel's unsigned int result.
//
// Kernel counterpart: jiffies_to_usecs. At HZ=100, 250 and 1000 this is
// (1000000/HZ)*j; at HZ=300 it is the 64-bit, rounding-down
// (j*HZ_TO_USEC_NUM) / HZ_TO_USEC_DEN = j*10000/3, whose product wraps
// modulo 2^64 for huge j.
func (hz HZ) JiffiesToUsecs(j uint64) uint32 {
	h := hz.mustValid()
	if usecPerSec%h == 0 {
		return uint32(usecPerSec / h * j)
	}
	tc := hz.timeconst()
	return uint32(j * tc.hzToUsecNum / tc.hzToUsecDen)
}

// JiffiesToNsecs converts j jiffies to nanoseconds.
//
// Kernel counterpart: jiffies_to_nsecs, which is
// (u64)jiffies_to_usecs(j) * NSEC_PER_USEC: it goes through the 32-bit
// microsecond value, so it has microsecond resolution (HZ=300: 1 jiffy =
// 3333000 ns) and wraps after 2^32 microseconds (about 71.6 minutes).
func (hz HZ) JiffiesToNsecs(j uint64) uint64 {
	return uint64(hz.JiffiesToUsecs(j)) * nsecPerUsec
}

// SecsToJiffies converts s seconds to jiffies, s*HZ, wrapping modulo 2^64.
//
// Kernel counterpart: the secs_to_jiffies macro (v6.13+),
// (unsigned long)((_secs) * HZ). Like the kernel it does not clamp.
func (hz HZ) SecsToJiffies(s uint64) uint64 {
	return s * hz.mustValid()
}
