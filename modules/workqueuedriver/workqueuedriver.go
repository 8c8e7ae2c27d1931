// Package workqueuedriver is the workqueue example of the seed article
// "Using Workqueues & Tasklets – Deferred Work Handling in Kernel Space"
// (R.K. Williams, Day 10; workqueue_driver.c): a module that creates its
// own single-threaded workqueue, queues one work item on it at load time
// and flushes and destroys the queue at unload.
//
// Init runs create_singlethread_workqueue("my_wq") (an ordered workqueue
// with a rescuer thread, kworker/R-my_wq), INIT_WORK(&my_work,
// my_work_func), queue_work(my_workqueue, &my_work) and logs "Workqueue
// scheduled"; the work function runs in process context on a kworker of
// the unbound pool and logs "Workqueue executed in process context". Exit
// runs flush_workqueue, destroy_workqueue (which stops the rescuer) and
// logs "Workqueue removed". The file has no pr_fmt: the lines carry no
// prefix.
//
//	workqueue_driver: loading out-of-tree module taints kernel.
//	Workqueue scheduled
//	Workqueue executed in process context
//	Workqueue removed
//
// The article's "cat /sys/kernel/debug/workqueue" names a file no kernel
// has (kernel-semantics §8.6); kdefer's console has the workqueue dump the
// kernel prints on SysRq-t as /proc/workqueues, and ps shows the rescuer
// [kworker/R-my_wq] while the module is loaded.
//
// Deliberate differences: the workqueue and the work item live in the
// module instance, not in static variables, so that two kernels in one
// process each have their own. (The C module's init function is named
// workqueue_init, like a function of the kernel's own workqueue code; the
// name is static there, and kept here.)
package workqueuedriver

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/workqueue"
)

// Name is the module's name.
const Name = "workqueue_driver"

// WQName is the name of the module's workqueue.
const WQName = "my_wq"

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "Workqueue Example",
	License:     "GPL",
	Author:      "Your Name",
	New:         func(*module.Params) module.Instance { return &driver{} },
}

// pr prints without a prefix (printk(KERN_INFO …), no pr_fmt).
var pr = kernel.Logger{}

// driver is one loaded copy of the module: its workqueue and work item.
type driver struct {
	myWorkqueue *workqueue.Workqueue
	myWork      workqueue.Work
}

// my_work_func is the work function (process context, a kworker).
func my_work_func(c *kernel.Ctx, work *workqueue.Work) {
	pr.Info(c, "Workqueue executed in process context\n")
}

// Init is module_init(workqueue_init).
func (d *driver) Init(c *kernel.Ctx) error { return d.workqueue_init(c) }

// Exit is module_exit(workqueue_exit).
func (d *driver) Exit(c *kernel.Ctx) { d.workqueue_exit(c) }

// workqueue_init is named as the C function.
func (d *driver) workqueue_init(c *kernel.Ctx) error {
	wq, err := workqueue.CreateSinglethreadWorkqueue(c, WQName)
	if err != nil {
		return kernel.ENOMEM
	}
	d.myWorkqueue = wq

	workqueue.Init(&d.myWork, my_work_func)
	workqueue.QueueWork(c, d.myWorkqueue, &d.myWork)
	pr.Info(c, "Workqueue scheduled\n")
	return nil
}

// workqueue_exit is named as the C function.
func (d *driver) workqueue_exit(c *kernel.Ctx) {
	workqueue.FlushWorkqueue(c, d.myWorkqueue)
	workqueue.DestroyWorkqueue(c, d.myWorkqueue)
	pr.Info(c, "Workqueue removed\n")
}
