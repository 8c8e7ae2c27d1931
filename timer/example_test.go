package timer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// A connection whose idle timeout is a timer embedded in the struct: the
// callback captures its owner, and re-arming on activity allocates nothing.
type conn struct {
	name    string
	timeout timer.Timer
}

func Example() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, Quiet: true})
	defer k.Shutdown(context.Background())

	cn := &conn{name: "conn1"}
	start := k.Jiffies()
	k.RunTask(context.Background(), "server", func(c *kernel.Ctx) int {
		timer.Setup(c, &cn.timeout, func(c *kernel.Ctx, _ *timer.Timer) {
			fmt.Printf("%s timed out after %d jiffies (in softirq: %v)\n", cn.name, c.Jiffies()-start, c.InServingSoftirq())
		}, 0)
		fmt.Println("mod_timer:", timer.Mod(c, &cn.timeout, c.Jiffies()+100)) // 0: was inactive
		// 1: was pending. 500 jiffies is level 1 (granularity 8): it fires at
		// the next multiple of 8 above the expiry.
		fmt.Println("mod_timer:", timer.Mod(c, &cn.timeout, c.Jiffies()+500))
		return 0
	})
	k.Run(context.Background(), time.Second)
	// Output:
	// mod_timer: 0
	// mod_timer: 1
	// conn1 timed out after 504 jiffies (in softirq: true)
}
