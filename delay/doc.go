// Package delay holds the kernel's busy-wait delays and its sleeps:
// ndelay/udelay/mdelay (include/linux/delay.h, include/asm-generic/delay.h,
// arch/x86/lib/delay.c) and schedule_timeout, msleep, msleep_interruptible,
// ssleep, usleep_range and fsleep (kernel/time/sleep_timeout.c, v6.13+).
//
// The *delay functions busy-wait and are legal in atomic context; every
// sleep calls might_sleep first, so calling one from a timer callback or
// under a spinlock prints the might_sleep report "BUG: sleeping function
// called from invalid context" (naming the caller's file and line) and
// returns without sleeping. (kernel/time/sleep_timeout.c itself has no
// might_sleep: there the bug surfaces in schedule() as "BUG: scheduling
// while atomic". kdefer reports it at the call, as a might_sleep-annotated
// API would. A sleep that would not schedule, such as msleep(0), reports
// nothing.)
//
// Deliberate differences:
//   - The busy waits spin on the monotonic clock rather than counting
//     calibrated loops, so they never return early (the kernel's udelay
//     may). Their constant-argument limit (__bad_udelay at 20000) cannot be
//     a link error in Go. In virtual time they advance the clock.
//   - The sleeps follow v6.13: msleep without the old "+1" jiffy,
//     fsleep's 25% slack, usleep_range_idle.
//   - In atomic context schedule_timeout returns its timeout at once
//     (after the report) instead of sleeping anyway.
//   - usleep_range is built on kdefer's hrtimers, which in real time are
//     woken by a nanosleep with 1 ns timer slack followed by a short spin:
//     Go's own timers have about a millisecond of granularity.
package delay
