package workqueue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// job is a user struct with an embedded work item: queueing it allocates
// nothing, and queueing it while it is pending is a no-op.
type job struct {
	name string
	work workqueue.Work
}

// A Go program attaches its goroutine to a kernel and uses workqueues with
// its own context: queue items (queue_work returns false for one already
// pending), delay one, and shut the queue down, draining it, within a time
// limit.
func Example() {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, Virtual: true, Quiet: true})
	if err != nil {
		panic(err)
	}
	defer k.Shutdown(context.Background())
	c, err := k.Attach(context.Background(), "main")
	if err != nil {
		panic(err)
	}
	defer kernel.Detach(c)

	wq, _ := workqueue.AllocWorkqueue(c, "jobs", workqueue.Unbound, 4)
	j := &job{name: "resize"}
	workqueue.Init(&j.work, func(c *kernel.Ctx, w *workqueue.Work) {
		fmt.Printf("%s ran on %s at %v\n", j.name, c.Current().Comm(), time.Duration(c.Kernel().Now()))
	})
	fmt.Println(workqueue.QueueWork(c, wq, &j.work)) // queued
	fmt.Println(workqueue.QueueWork(c, wq, &j.work)) // already pending: it runs once

	var reminder workqueue.DelayedWork
	workqueue.InitDelayed(&reminder, func(c *kernel.Ctx, w *workqueue.Work) {
		fmt.Println("reminder at", time.Duration(c.Kernel().Now()))
	})
	workqueue.QueueDelayedWork(c, wq, &reminder, uint64(k.HZ())) // one second

	// Drain runs everything now, the delayed item included.
	err = workqueue.Shutdown(c, wq, workqueue.Drain, 5*time.Second)
	fmt.Println("shutdown:", err, workqueue.Snapshot(wq).Completed, "items ran")
	// Output:
	// true
	// false
	// resize ran on kworker/u8:0 at 0s
	// reminder at 0s
	// shutdown: <nil> 2 items ran
}
