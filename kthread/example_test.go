package kthread_test

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
)

// A kernel thread that sleeps until it is stopped, as the seed demos'
// threads do: kthread_run, then kthread_stop from the module's exit.
func Example() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	defer k.Shutdown(context.Background())
	k.RunTask(context.Background(), "insmod", func(c *kernel.Ctx) int {
		t, err := kthread.Run(c, func(c *kernel.Ctx) int {
			for !kthread.ShouldStop(c) {
				kernel.SetCurrentState(c, kernel.TaskInterruptible)
				if kthread.ShouldStop(c) {
					break
				}
				kernel.Schedule(c)
			}
			kernel.SetCurrentState(c, kernel.TaskRunning)
			return 0
		}, "llkd/%s", "kt_simple")
		if err != nil {
			return 1
		}
		delay.Msleep(c, 100)
		fmt.Printf("[%s] state %c, parent %s\n", t.Comm(), t.State().Letter(), t.Parent().Comm())
		fmt.Println("kthread_stop:", kthread.Stop(c, t))
		return 0
	})
	// Output:
	// [llkd/kt_simple] state S, parent kthreadd
	// kthread_stop: 0
}

// A kthread_worker running works embedded in a driver's struct.
func ExampleQueueWork() {
	type dev struct {
		name string
		work kthread.Work
	}
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	defer k.Shutdown(context.Background())
	k.RunTask(context.Background(), "insmod", func(c *kernel.Ctx) int {
		w, err := kthread.RunWorker(c, 0, "%s/worker", "mydrv")
		if err != nil {
			return 1
		}
		fn := func(c *kernel.Ctx, work *kthread.Work) {
			d := kthread.FromWork[dev](work, unsafe.Offsetof(dev{}.work))
			fmt.Printf("%s runs in [%s]\n", d.name, c.Current().Comm())
		}
		a, b := &dev{name: "a"}, &dev{name: "b"}
		kthread.InitWork(&a.work, fn)
		kthread.InitWork(&b.work, fn)
		fmt.Println(kthread.QueueWork(c, w, &a.work), kthread.QueueWork(c, w, &a.work), kthread.QueueWork(c, w, &b.work))
		kthread.FlushWorker(c, w)
		kthread.DestroyWorker(c, w)
		return 0
	})
	// Output:
	// true false true
	// a runs in [mydrv/worker]
	// b runs in [mydrv/worker]
}
