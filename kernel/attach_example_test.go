package kernel_test

import (
	"context"
	"fmt"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

// A plain goroutine attaches to a kernel as a user task, arms a timer,
// sleeps on a completion that the timer's callback completes, and detaches.
func ExampleKernel_Attach() {
	k, _ := kernel.Boot(kernel.Config{CPUs: 2, HZ: 250, Virtual: true, Quiet: true})
	defer k.Shutdown(context.Background())

	c, err := k.Attach(context.Background(), "client")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("attached as %s, child of %s\n", c.Current(), c.Current().Parent().Comm())

	var done wait.Completion
	done.Init()
	var tm timer.Timer
	timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
		fmt.Println("timer callback in softirq context:", c.InServingSoftirq())
		done.Complete()
	}, 0)
	timer.Mod(c, &tm, c.Jiffies()+10) // 10 jiffies, +1 for the wheel's round-up: 44 ms at HZ=250
	done.WaitFor(c)                   // sleeps (TASK_UNINTERRUPTIBLE) until the callback
	fmt.Printf("woken at %d ms\n", k.Now()/1e6)

	if err := kernel.Detach(c); err != nil {
		fmt.Println(err)
	}
	// Output:
	// attached as client/5, child of init
	// timer callback in softirq context: true
	// woken at 44 ms
}
