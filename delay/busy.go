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
// time the clock moves on by exactly nsecs while the caller busy-waits (see
// kernel.Spin). A wait beyond the clock's range (about 292 years) busy-waits
// forever rather than wrapping to a short one; a wait of more than 20 s is
// reported by the soft-lockup watchdog, and Shutdown ends any of them.
func Ndelay(c *kernel.Ctx, nsecs uint64) { kernel.Spin(c, satNs(nsecs, 1)) }

// Udelay is udelay(usecs): a busy wait of at least usecs microseconds; see
// Ndelay.
func Udelay(c *kernel.Ctx, usecs uint64) { kernel.Spin(c, satNs(usecs, 1000)) }

// Mdelay is mdelay(msecs): up to MaxUdelayMs a single udelay(msecs*1000),
// above it a loop of udelay(1000), as <linux/delay.h> does — which kdefer
// runs as one busy wait of the same total, so that a wait of any length
// costs the same to model. It busy-waits: the kernel documents it as "Do not
// use!" for long intervals; prefer Msleep in process context. See Ndelay for
// waits too long to express.
func Mdelay(c *kernel.Ctx, msecs uint64) { kernel.Spin(c, satNs(msecs, 1000000)) }

// satNs returns n*unit nanoseconds, saturated at the largest int64: a wait
// that long never ends.
func satNs(n, unit uint64) int64 {
	const maxNs = uint64(1<<63 - 1)
	if n > maxNs/unit {
		return int64(maxNs)
	}
	return int64(n * unit)
}
