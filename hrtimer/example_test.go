package hrtimer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
)

// A periodic timer that forwards itself by a fixed period, and a range
// timer that rides along with it instead of waking the CPU on its own.
func Example() {
	k, err := kernel.Boot(kernel.Config{CPUs: 1, Virtual: true, Quiet: true})
	if err != nil {
		panic(err)
	}
	defer k.Shutdown(context.Background())
	c := k.IdleCtx(0)

	var periodic, lazy hrtimer.HRTimer
	n := 0
	hrtimer.Setup(&periodic, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		n++
		fmt.Printf("tick %d at %v (hardirq %v)\n", n, time.Duration(c.Kernel().Now()), c.InHardirq())
		if n == 3 {
			return hrtimer.NoRestart
		}
		hrtimer.ForwardNow(t, int64(250*time.Microsecond))
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Setup(&lazy, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		fmt.Printf("lazy at %v (softirq %v)\n", time.Duration(c.Kernel().Now()), c.InServingSoftirq())
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)

	hrtimer.Start(c, &periodic, int64(250*time.Microsecond), hrtimer.ModeRel)
	// Anywhere in [400µs, 900µs]: a soft timer, so it goes with the next
	// soft expiry or its own hard one.
	hrtimer.StartRangeNs(c, &lazy, int64(400*time.Microsecond), int64(500*time.Microsecond), hrtimer.ModeRelSoft)
	k.Run(context.Background(), time.Millisecond)
	// Output:
	// tick 1 at 250µs (hardirq true)
	// tick 2 at 500µs (hardirq true)
	// tick 3 at 750µs (hardirq true)
	// lazy at 900µs (softirq true)
}
