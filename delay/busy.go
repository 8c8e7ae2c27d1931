package delay

import (
	"github.com/kdefer/kdefer/kernel"
)

// MaxUdelayMs is MAX_UDELAY_MS: mdelay(n) with n above it loops udelay(1000).
const MaxUdelayMs = 5

// DelayConstMax is DELAY_CONST_MAX: in the kernel a constant argument of
// udelay/ndelay at or above it is a link error (__bad_udelay). Go has no
// such compile-time check; larger values simply busy-wait that long.
const DelayConstMax = 20000

// Ndelay is ndelay(nsecs): a busy wait of at least nsecs nanoseconds. It
// never sleeps, so it is legal in atomic context (softirq, hardirq, under a
// spinlock). It never returns early: unlike the kernel's loop-count
// approximation, the wait is measured on the monotonic clock. In virtual
// time it advances the clock by exactly nsecs.
func Ndelay(c *kernel.Ctx, nsecs uint64) { c.Kernel().Spin(int64(nsecs)) }

// Udelay is udelay(usecs): a busy wait of at least usecs microseconds; see
// Ndelay.
func Udelay(c *kernel.Ctx, usecs uint64) { c.Kernel().Spin(int64(usecs) * 1000) }

// Mdelay is mdelay(msecs): up to MaxUdelayMs a single udelay(msecs*1000),
// above it a loop of udelay(1000), as <linux/delay.h> does. It busy-waits:
// the kernel documents it as "Do not use!" for long intervals; prefer
// Msleep in process context.
func Mdelay(c *kernel.Ctx, msecs uint64) {
	if msecs <= MaxUdelayMs {
		Udelay(c, msecs*1000)
		return
	}
	for ; msecs > 0; msecs-- {
		Udelay(c, 1000)
	}
}
