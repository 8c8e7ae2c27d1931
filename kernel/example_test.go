package kernel_test

import (
	"context"
	"fmt"

	"github.com/kdefer/kdefer/kernel"
)

// A softirq raised with bottom halves disabled runs at the outermost
// local_bh_enable, in softirq context on behalf of the raising task.
func Example() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	defer k.Shutdown(context.Background())

	k.OpenSoftirq(kernel.TaskletSoftirq, func(c *kernel.Ctx) {
		fmt.Printf("softirq on cpu %d for %s; in_serving_softirq: %t in_task: %t\n",
			c.CPU(), c.Current().Comm(), c.InServingSoftirq(), c.InTask())
	})
	k.RunTask(context.Background(), "app", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.TaskletSoftirq)
		fmt.Println("raised; in_softirq:", c.InSoftirq(), "in_task:", c.InTask())
		kernel.LocalBHEnable(c)
		return 0
	})
	// Output:
	// raised; in_softirq: true in_task: true
	// softirq on cpu 0 for app; in_serving_softirq: true in_task: false
}

// Sleeping in atomic context prints the kernel's report and does not sleep.
func ExampleMightSleep() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	defer k.Shutdown(context.Background())
	k.RunTask(context.Background(), "app", func(c *kernel.Ctx) int {
		var lock kernel.SpinLock
		lock.Lock(c)
		fmt.Println("may sleep:", kernel.MightSleep(c))
		lock.Unlock(c)
		fmt.Println("may sleep:", kernel.MightSleep(c))
		return 0
	})
	recs, _ := k.Log().Records(0)
	fmt.Println(recs[1].Text)
	// Output:
	// may sleep: false
	// may sleep: true
	// in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 4, name: app
}
