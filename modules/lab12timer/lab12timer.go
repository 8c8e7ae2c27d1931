// Package lab12timer is the linux-kernel-labs "Deferred work" lab's
// exercises 1 and 2, tools/labs/templates/deferred_work/1-2-timer (the
// solution of timer.c): a kernel timer that fires TIMER_TIMEOUT (1) second
// after the module is loaded (exercise 1) and, made periodic, every
// TIMER_TIMEOUT seconds from then on (exercise 2):
//
//	[timer_init] Init module
//	[timer_handler] nseconds = 1
//	[timer_handler] nseconds = 2
//	[timer_exit] Exit module
//
// init logs, runs timer_setup(&timer, timer_handler, 0) and mod_timer(&timer,
// jiffies + TIMER_TIMEOUT * HZ); the handler, in timer softirq context,
// adds TIMER_TIMEOUT to nseconds and logs it, then (exercise 2) re-arms
// the timer the same way; exit logs and runs del_timer_sync. The file has
// no pr_fmt: the messages carry their own "[function]" tags.
//
// The module's name is 1_2_timer: the lab builds it as timer.ko from the
// 1-2-timer directory, and kdefer names it after the directory, with the
// dashes the kernel's KBUILD_MODNAME turns into underscores (and that
// modprobe treats as equal), so that it does not read as the timer
// subsystem; `kdefer run 1-2-timer` finds it.
//
// Parameter (not in the lab, which switches exercises by editing the
// code):
//
//	periodic  bool, Y, 0444  Y: exercise 2 (the finished solution re-arms
//	                         the timer); N: exercise 1, a single firing
//
// Deliberate differences: the timer and the nseconds counter (a static
// variable of the handler in C) live in the module instance, so that two
// kernels in one process each count from zero; the timer is armed for
// jiffies + TIMER_TIMEOUT*HZ, so it fires when the timer wheel rounds that
// expiry to (at HZ=250: 250 jiffies, level 1, up to 8 jiffies later).
package lab12timer

import (
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/timer"
)

// Name is the module's name.
const Name = "1_2_timer"

// TimerTimeout is TIMER_TIMEOUT, in seconds.
const TimerTimeout = 1

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "Simple kernel timer (linux-kernel-labs deferred work, exercises 1-2)",
	License:     "GPL",
	Author:      "SO2",
	New:         newLab,
}

// pr prints without a prefix (no pr_fmt).
var pr = kernel.Logger{}

// lab is one loaded copy of the module. timer is its first field, so
// from_timer is an offset of 0.
type lab struct {
	timer    timer.Timer
	nseconds uint64 // the handler's static size_t
	periodic bool
}

func newLab(p *module.Params) module.Instance {
	m := &lab{}
	p.Bool(&m.periodic, "periodic", true, 0444,
		"re-arm the timer every TIMER_TIMEOUT seconds (exercise 2; N: exercise 1, fire once) (default=Y)")
	return m
}

// timer_handler is the timer's callback (timer softirq context).
func timer_handler(c *kernel.Ctx, t *timer.Timer) {
	m := timer.ContainerOf[lab](t, unsafe.Offsetof(lab{}.timer))

	// TODO 1/4: print a message
	m.nseconds += TimerTimeout
	pr.Info(c, "[timer_handler] nseconds = %d\n", m.nseconds)

	// TODO 2: reschedule timer
	if m.periodic {
		timer.Mod(c, t, c.Jiffies()+TimerTimeout*uint64(c.Kernel().HZ()))
	}
}

// Init is module_init(timer_init).
func (m *lab) Init(c *kernel.Ctx) error { return m.timer_init(c) }

// Exit is module_exit(timer_exit).
func (m *lab) Exit(c *kernel.Ctx) { m.timer_exit(c) }

// timer_init is named as the C function.
func (m *lab) timer_init(c *kernel.Ctx) error {
	pr.Info(c, "[timer_init] Init module\n")

	// TODO 1: initialize timer
	timer.Setup(c, &m.timer, timer_handler, 0)

	// TODO 1: schedule timer for the first time
	timer.Mod(c, &m.timer, c.Jiffies()+TimerTimeout*uint64(c.Kernel().HZ()))
	return nil
}

// timer_exit is named as the C function.
func (m *lab) timer_exit(c *kernel.Ctx) {
	pr.Info(c, "[timer_exit] Exit module\n")

	// TODO 1: cleanup; make sure the timer is not running after we exit
	timer.DeleteSync(c, &m.timer)
}
