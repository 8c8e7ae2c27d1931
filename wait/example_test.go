package wait_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

// A task sleeps on a wait queue until a timer callback (softirq context)
// makes its condition true and wakes the queue.
func ExampleEventInterruptibleTimeout() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, Quiet: true})
	defer k.Shutdown(context.Background())

	var wq wait.Queue // DECLARE_WAIT_QUEUE_HEAD(wq)
	var dataReady atomic.Bool
	var tm timer.Timer

	k.RunTask(context.Background(), "reader", func(c *kernel.Ctx) int {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			dataReady.Store(true)
			wait.WakeUpInterruptible(c, &wq)
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+10)

		ret := wait.EventInterruptibleTimeout(c, &wq, dataReady.Load, 100)
		fmt.Printf("data ready, %d of 100 jiffies left\n", ret)

		dataReady.Store(false)
		ret = wait.EventInterruptibleTimeout(c, &wq, dataReady.Load, 20)
		fmt.Println("second wait:", ret)
		return 0
	})
	// Output:
	// data ready, 89 of 100 jiffies left
	// second wait: 0
}

// A worker thread signals its completion; complete() before the wait is
// not lost, and complete_all() lets every later wait through.
func ExampleCompletion() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	defer k.Shutdown(context.Background())

	var setupDone wait.Completion // DECLARE_COMPLETION(setup_done)
	worker, _ := k.CreateTask(kernel.TaskOpts{Comm: "worker", Kthread: true, CPU: -1}, func(c *kernel.Ctx) int {
		setupDone.Complete()
		return 0
	})
	k.WakeUpProcess(worker)

	k.RunTask(context.Background(), "insmod", func(c *kernel.Ctx) int {
		setupDone.WaitFor(c)
		fmt.Println("worker set up; done now:", setupDone.Done())
		fmt.Println("wait with nothing done:", setupDone.WaitForTimeout(c, 5))
		setupDone.CompleteAll()
		fmt.Println("after complete_all:", setupDone.WaitForTimeout(c, 5), setupDone.WaitForTimeout(c, 5), setupDone.TryWaitFor())
		setupDone.Reinit()
		fmt.Println("after reinit_completion:", setupDone.TryWaitFor())
		return 0
	})
	// Output:
	// worker set up; done now: false
	// wait with nothing done: 0
	// after complete_all: 5 5 true
	// after reinit_completion: false
}

// wake_up wakes every non-exclusive waiter but only one exclusive waiter;
// wake_up_all wakes the rest.
func ExampleWakeUp() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	defer k.Shutdown(context.Background())

	var wq wait.Queue
	var tokens atomic.Int32
	take := func() bool { // consume a token if there is one
		for {
			n := tokens.Load()
			if n == 0 {
				return false
			}
			if tokens.CompareAndSwap(n, n-1) {
				return true
			}
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		k.Spawn(name, func(c *kernel.Ctx) int {
			wait.EventInterruptibleExclusive(c, &wq, take)
			fmt.Println(name, "got a token")
			return 0
		})
	}
	k.RunUntilIdle(context.Background())

	k.RunTask(context.Background(), "waker", func(c *kernel.Ctx) int {
		tokens.Add(1)
		fmt.Println("wake_up woke", wait.WakeUp(c, &wq), "exclusive waiter")
		return 0
	})
	k.RunUntilIdle(context.Background())

	k.RunTask(context.Background(), "waker", func(c *kernel.Ctx) int {
		tokens.Add(2)
		fmt.Println("wake_up_all woke", wait.WakeUpAll(c, &wq), "exclusive waiters")
		return 0
	})
	k.RunUntilIdle(context.Background())
	// Output:
	// wake_up woke 1 exclusive waiter
	// a got a token
	// wake_up_all woke 2 exclusive waiters
	// b got a token
	// c got a token
}
