// Package taskletdriver is the tasklet example of the seed article "Day
// 10: Using Workqueues & Tasklets – Deferred Work Handling in Kernel
// Space" (tasklet_driver.c): a module whose init schedules a tasklet
// that logs the data it was initialised with.
//
//	Tasklet scheduled
//	Tasklet executed with data: 1234
//	Tasklet removed
//
// Init runs tasklet_init(&my_tasklet, my_tasklet_func, 1234) — the old,
// pre-v5.9 form whose callback receives an unsigned long — then
// tasklet_schedule(&my_tasklet), which puts it on the calling CPU's
// tasklet list and raises TASKLET_SOFTIRQ, and logs "Tasklet scheduled".
// The callback runs afterwards in softirq context (ps would show the CPU's
// ksoftirqd, or the interrupted task) and logs "Tasklet executed with
// data: 1234". Exit runs tasklet_kill, which waits for a pending run, and
// logs "Tasklet removed". The lines are printk(KERN_INFO …) without a
// pr_fmt: no prefix. /proc/softirqs counts the run in its TASKLET row.
//
// Deliberate differences: the article names its init and exit functions
// tasklet_init and tasklet_exit, which collide with the kernel's own
// tasklet_init() and would not compile; here they are tasklet_driver_init
// and tasklet_driver_exit. The tasklet lives in the module instance (a
// static in C), so that two kernels in one process each have their own.
package taskletdriver

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/tasklet"
)

// Name is the module's name (tasklet_driver.ko).
const Name = "tasklet_driver"

// Data is the value the tasklet is initialised with.
const Data = 1234

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "Tasklet Example",
	License:     "GPL",
	Author:      "Your Name",
	New:         func(p *module.Params) module.Instance { return &drv{} },
}

// drv is one loaded copy of the module.
type drv struct {
	myTasklet tasklet.Tasklet
}

// my_tasklet_func is the tasklet's function (softirq context).
func my_tasklet_func(c *kernel.Ctx, data uint64) {
	kernel.Printk(c, printk.LevelInfo, "Tasklet executed with data: %d\n", data)
}

// Init is module_init(tasklet_init).
func (m *drv) Init(c *kernel.Ctx) error { return m.tasklet_driver_init(c) }

// Exit is module_exit(tasklet_exit).
func (m *drv) Exit(c *kernel.Ctx) { m.tasklet_driver_exit(c) }

// tasklet_driver_init is the article's tasklet_init (renamed: see the
// package documentation).
func (m *drv) tasklet_driver_init(c *kernel.Ctx) error {
	tasklet.Init(&m.myTasklet, my_tasklet_func, Data)
	tasklet.Schedule(c, &m.myTasklet)
	kernel.Printk(c, printk.LevelInfo, "Tasklet scheduled\n")
	return nil
}

// tasklet_driver_exit is the article's tasklet_exit.
func (m *drv) tasklet_driver_exit(c *kernel.Ctx) {
	tasklet.Kill(c, &m.myTasklet)
	kernel.Printk(c, printk.LevelInfo, "Tasklet removed\n")
}
