package jiffies

import (
	"errors"
	"fmt"
	"math"
)

// HZ is the kernel tick rate: the number of jiffies per second
// (CONFIG_HZ). Only [HZ100], [HZ250], [HZ300] and [HZ1000] are valid.
//
// Kernel counterpart: the compile-time constant HZ from asm/param.h. Here it
// is a run-time value and the conversions are its methods. Every method
// except [HZ.Valid] panics if hz is not valid.
type HZ uint32

// The tick rates Kconfig offers (kernel/Kconfig.hz).
const (
	HZ100  HZ = 100
	HZ250  HZ = 250
	HZ300  HZ = 300
	HZ1000 HZ = 1000

	// DefaultHZ is Kconfig's default, CONFIG_HZ_250.
	DefaultHZ = HZ250
)

// UserHZ is the tick rate of the clock_t values the kernel exports to user
// space (USER_HZ), independent of HZ.
const UserHZ = 100

// MaxJiffyOffset is the largest timeout in jiffies that the conversions
// return: the kernel's 64-bit MAX_JIFFY_OFFSET, (LONG_MAX >> 1) - 1 =
// 0x3FFFFFFFFFFFFFFE. It is kept below LONG_MAX so that jiffies+timeout+1
// stays positive as a signed value; the kernel uses it as "wait forever".
const MaxJiffyOffset uint64 = (math.MaxInt64 >> 1) - 1

// MaxScheduleTimeout is the timeout that makes schedule_timeout sleep until
// woken: the kernel's MAX_SCHEDULE_TIMEOUT, LONG_MAX.
const MaxScheduleTimeout int64 = math.MaxInt64

// ErrInvalidHZ is wrapped by the error [HZ.Valid] returns for a tick rate the
// kernel cannot be configured with.
var ErrInvalidHZ = errors.New("jiffies: invalid HZ")

// Unit constants from include/vdso/time64.h.
const (
	msecPerSec  = 1000
	usecPerSec  = 1000000
	nsecPerSec  = 1000000000
	nsecPerUsec = 1000
)

// Valid reports whether hz is one of the Kconfig tick rates 100, 250, 300 or
// 1000. The error wraps [ErrInvalidHZ].
//
// Kernel counterpart: none at run time; kernel/Kconfig.hz restricts the
// choice and jiffies.h refuses to build with an unsupported value.
func (hz HZ) Valid() error {
	switch hz {
	case HZ100, HZ250, HZ300, HZ1000:
		return nil
	}
	return fmt.Errorf("%w: %d (allowed: 100, 250, 300, 1000)", ErrInvalidHZ, uint32(hz))
}

// mustValid returns hz as a uint64 and panics if hz is not valid: the kernel
// would not build with it, so using one is a programming error.
func (hz HZ) mustValid() uint64 {
	if err := hz.Valid(); err != nil {
		panic(err.Error())
	}
	return uint64(hz)
}

// InitialJiffies returns the value jiffies has at boot: the kernel's
// INITIAL_JIFFIES, ((unsigned long)(unsigned int)(-300*HZ)). It is a 32-bit
// value even on 64-bit kernels, so the low 32 bits of jiffies wrap 300*HZ
// ticks (5 minutes) after boot, while the 64-bit counter never wraps in
// practice. For HZ=250 it is 4294892296 (0xFFFEDB08).
func (hz HZ) InitialJiffies() uint64 {
	h := hz.mustValid()
	return uint64(uint32(-300 * int64(h)))
}

// TickNsec returns the length of one tick in nanoseconds, rounded to
// nearest: the kernel's TICK_NSEC, (NSEC_PER_SEC + HZ/2) / HZ
// (10000000 at HZ=100, 4000000 at 250, 3333333 at 300, 1000000 at 1000).
func (hz HZ) TickNsec() int64 {
	h := int64(hz.mustValid())
	return (nsecPerSec + h/2) / h
}

// TickUsec returns the length of one tick in microseconds, rounded to
// nearest: the kernel's TICK_USEC, (USEC_PER_SEC + HZ/2) / HZ
// (10000 at HZ=100, 4000 at 250, 3333 at 300, 1000 at 1000).
func (hz HZ) TickUsec() int64 {
	h := int64(hz.mustValid())
	return (usecPerSec + h/2) / h
}

// timeconst holds the 64-bit part of include/generated/timeconst.h that
// kernel/time/timeconst.bc generates for one HZ. The MUL32/ADJ32/SHR32
// triples turn a multiply-and-round-up by HZ/1000 (or HZ/1000000) into a
// multiply, add and shift; the NUM/DEN pairs are the reduced ratios.
// TestTimeconstMatchesTimeconstBC recomputes every value the way
// timeconst.bc does.
type timeconst struct {
	msecToHZMul32, msecToHZAdj32 uint64 // MSEC_TO_HZ_MUL32, MSEC_TO_HZ_ADJ32
	msecToHZShr32                uint   // MSEC_TO_HZ_SHR32
	usecToHZMul32, usecToHZAdj32 uint64 // USEC_TO_HZ_MUL32, USEC_TO_HZ_ADJ32
	usecToHZShr32                uint   // USEC_TO_HZ_SHR32
	hzToMsecNum, hzToMsecDen     uint64 // HZ_TO_MSEC_NUM, HZ_TO_MSEC_DEN
	hzToUsecNum, hzToUsecDen     uint64 // HZ_TO_USEC_NUM, HZ_TO_USEC_DEN
}

// timeconst returns the generated constants for hz; it panics if hz is not
// valid. Only HZ=300 reaches the MUL32 and NUM/DEN paths on 64-bit, but the
// table is complete so it can be checked as a whole.
func (hz HZ) timeconst() timeconst {
	switch hz {
	case HZ100:
		return timeconst{
			0xCCCCCCCD, 0x733333333, 35,
			0xD1B71759, 0x1FFF2E48E8A7, 45,
			10, 1, 10000, 1,
		}
	case HZ250:
		return timeconst{
			0x80000000, 0x180000000, 33,
			0x83126E98, 0x7FF7CED9168, 43,
			4, 1, 4000, 1,
		}
	case HZ300:
		return timeconst{
			0x9999999A, 0x1CCCCCCCC, 33,
			0x9D495183, 0x7FFCB923A29, 43,
			10, 3, 10000, 3,
		}
	case HZ1000:
		return timeconst{
			0x80000000, 0x0, 31,
			0x83126E98, 0x1FF7CED9168, 41,
			1, 1, 1000, 1,
		}
	default:
		panic(hz.Valid().Error())
	}
}
