// Package jiffies reimplements the Linux kernel's jiffies helpers: the tick
// rate HZ, the wrap-safe comparisons (time_after and friends), the
// conversions between jiffies and milliseconds, microseconds, nanoseconds and
// seconds, and the round_jiffies family.
//
// Kernel counterparts: include/linux/jiffies.h, include/vdso/jiffies.h,
// kernel/time/time.c, the generated include/generated/timeconst.h (from
// kernel/time/timeconst.bc) and the round_jiffies functions of
// kernel/time/timer.c.
//
// Every result is bit-for-bit what a 64-bit kernel (BITS_PER_LONG == 64,
// unsigned long = uint64, unsigned int = uint32) built with the same HZ
// returns, including its rounding, its clamping to [MaxJiffyOffset] and its
// silent wrap-around on overflow. The tests check every conversion against a
// math/big model of the kernel's formulas.
//
// Deliberate differences from the kernel:
//
//   - There is no global jiffies variable. Functions that read jiffies in the
//     kernel (time_is_before_jiffies, __round_jiffies_relative, ...) take the
//     current jiffies as an explicit now argument. The caller owns the clock.
//   - HZ is a run-time value, not a compile-time constant: each conversion is
//     a method on [HZ]. Only the Kconfig choices 100, 250, 300 and 1000 are
//     supported; [HZ.Valid] reports any other value, and every other method
//     of HZ panics on one (the kernel refuses to build instead).
//   - The kernel chooses between an inline and an out-of-line variant of
//     msecs_to_jiffies and usecs_to_jiffies with __builtin_constant_p; both
//     compute the same value, so there is one function for each.
//   - Jiffies are always 64 bits wide. The kernel's *64 comparison variants
//     (time_after64, ...) are identical to the plain ones on 64-bit and are
//     not provided, nor are the 32-bit conversion constants
//     (HZ_TO_MSEC_MUL32, ...) that only 32-bit kernels use.
//   - [HZ.InitialJiffies] keeps the kernel's 32-bit INITIAL_JIFFIES value, so the
//     low 32 bits of a jiffies counter started there wrap 5 minutes (300*HZ
//     ticks) after boot, exactly as on Linux.
//
// The package has no mutable package-level state and starts no goroutines;
// all functions are safe for concurrent use.
package jiffies
