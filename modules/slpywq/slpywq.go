// Package slpywq is the courseware demo slpy_wq (Kaiwan N Billimoria's
// slpy_wq.c, the driver workq_splydrv): a "sleepy" character driver whose
// readers sleep on a wait queue until a writer comes along; the write
// wakes them all and schedules a work item on the kernel-global
// workqueue, which starts an auto-repeating 7 s kernel timer.
//
// Init registers the char device with register_chrdev(0, "workq_splydrv")
// (a dynamic major, logged by pr_debug "sleepy: major # = 254"), runs
// INIT_WORK(&ws, wq_func) and timer_setup(&timr, whee, 0), and logs
// "workq_splydrv: workQ and timer initialized..".
//
//   - read: "process PID (comm) going to sleep", then
//     wait_event_interruptible(wq, data_present == 1); a signal ends the
//     wait ("wait interrupted by signal, ret -ERESTARTSYS to VFS..", and
//     the reader's read(2) fails with EINTR); woken, "workq_splydrv: awoken
//     PID (comm), data_present=1", and it returns 0 (end of file).
//   - write: "workq_splydrv: scheduling deferred work in the work queue
//     now...", schedule_work(&ws), "process PID (comm) awakening the
//     readers...", data_present = 1 and wake_up_interruptible(&wq), which
//     wakes every reader (non-exclusive waiters, the latest first); it
//     returns the count written. data_present is never cleared: after the
//     first write, reads return at once.
//   - wq_func (a kworker, process context): "We're here doing some
//     deferred work! HZ=250 jiffies=…", PRINT_CTX, QPDS (the courseware's
//     "func:line : " line and a dump_stack), "Now setting up a
//     (auto-repeating) timer with 7s expiry..." and mod_timer(jiffies +
//     7*HZ).
//   - whee (timer softirq): "Timed out. jiffies=…", PRINT_CTX, and the
//     timer is armed again 7 s later, for as long as the module is loaded.
//
// The file defines no pr_fmt, so lines carry the DRVNAME prefix only where
// the format does. The debug lines (pr_debug, PRINT_CTX, QPDS) are on, as
// with the courseware's DEBUG build.
//
// Parameter:
//
//	debug  bool, Y, 0444  pr_debug, PRINT_CTX and QPDS output
//
// The program Sleepy ("sleepy DEVICE [READERS]") plays the user side: it
// makes the device node from /proc/devices if it is missing, starts
// READERS readers (tasks named cat, as with `cat DEVICE &`), and a second
// later a writer (echo), then waits for the readers.
//
// Deliberate differences:
//
//   - Exit flushes the module's own work item (flush_work) and then stops
//     the timer; the C exit stops the timer first (so a work item still
//     running could arm it again after del_timer_sync, the latent bug
//     seed-demos §10 notes) and then calls flush_scheduled_work(), which
//     today's kernels refuse to build without a warning and which warns at
//     run time ("Flushing system-wide workqueues will be prohibited in near
//     future").
//   - The courseware's older "Kernel Masters" variant (init_timer,
//     timr.data, MSG()) is not modelled; this is the timer_setup one.
//   - The driver's state (wait queue, work, timer, data_present) lives in
//     the module instance, not in static variables, so that two kernels in
//     one process each have their own.
package slpywq

import (
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/wait"
	"github.com/kdefer/kdefer/workqueue"
)

// Names.
const (
	// Name is the module's name (slpy_wq.ko).
	Name = "slpy_wq"
	// DrvName is DRVNAME, the char device's name.
	DrvName = "workq_splydrv"
	// AppName is the user program's name.
	AppName = "sleepy"
	// DelaySec is delaysec, the timer's period in seconds.
	DelaySec = 7
)

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "Demo of using a work queue (and timer).",
	License:     "Dual MIT/GPL",
	Author:      "Kaiwan NB, kaiwanTECH",
	New:         newDrv,
}

// drv is one loaded copy of the module: the C file's static variables.
// ws is the first field, so that the work function finds the driver with
// an offset of 0.
type drv struct {
	ws          workqueue.Work // for our workqueue
	timr        timer.Timer
	wq          wait.Queue   // DECLARE_WAIT_QUEUE_HEAD(wq)
	dataPresent atomic.Int32 // event condition flag
	sleepyMajor uint32
	delaysec    int
	debug       bool
	pr          kernel.Logger
	fops        module.FileOps
}

func newDrv(p *module.Params) module.Instance {
	d := &drv{delaysec: DelaySec}
	p.Bool(&d.debug, "debug", true, 0444, "pr_debug, PRINT_CTX and QPDS output (default=Y)")
	return d
}

// qpds is convenient.h's QPDS under DEBUG: MSG("\n") — a rate-limited
// pr_info of "func:line : " — then dump_stack(). The line is the Go
// source line of the call.
func qpds(c *kernel.Ctx, pr kernel.Logger) {
	if pr.NoDebug {
		return
	}
	pc, _, line, _ := runtime.Caller(1)
	kernel.Printk(c, printk.LevelInfo, "%s:%d : \n", trace.SymbolName(uint64(pc)), line)
	kernel.DumpStack(c)
}

// whee is the timeout function (timer softirq context).
func whee(c *kernel.Ctx, t *timer.Timer) {
	d := timer.ContainerOf[drv](t, unsafe.Offsetof(drv{}.timr))
	d.pr.Debug(c, "Timed out. jiffies=%d\n", c.Jiffies())
	convenient.PrintCtx(c, d.pr)

	// Reset and activate the timer
	timer.Mod(c, &d.timr, c.Jiffies()+uint64(d.delaysec)*uint64(c.Kernel().HZ()))
}

// wq_func is our deferred processing work queue handler; it runs in
// process context (via a kernel thread).
func wq_func(c *kernel.Ctx, work *workqueue.Work) {
	d := workqueue.FromWork[drv](work, unsafe.Offsetof(drv{}.ws))
	d.pr.Debug(c, "We're here doing some deferred work! HZ=%d jiffies=%d\n", c.Kernel().HZ(), c.Jiffies())
	convenient.PrintCtx(c, d.pr)
	qpds(c, d.pr)
	d.pr.Debug(c, "\nNow setting up a (auto-repeating) timer with %ds expiry...\n", d.delaysec)

	// Activate the timer
	timer.Mod(c, &d.timr, c.Jiffies()+uint64(d.delaysec)*uint64(c.Kernel().HZ()))
}

// sleepy_read puts the reader to sleep until data is present.
func (d *drv) sleepy_read(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
	cur := c.Current()
	d.pr.Debug(c, "process %d (%s) going to sleep\n", cur.PID(), cur.Comm())

	// put our process context into an interruptible sleep...
	if wait.EventInterruptible(c, &d.wq, func() bool { return d.dataPresent.Load() == 1 }) != 0 {
		d.pr.Debug(c, "wait interrupted by signal, ret -ERESTARTSYS to VFS..\n")
		return 0, kernel.ERESTARTSYS
	}

	d.pr.Info(c, "%s: awoken %d (%s), data_present=%d\n", DrvName, cur.PID(), cur.Comm(), d.dataPresent.Load())
	return 0, nil // EOF
}

// sleepy_write schedules the deferred work and wakes the readers.
func (d *drv) sleepy_write(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
	d.pr.Info(c, "%s: scheduling deferred work in the work queue now...\n", DrvName)
	workqueue.ScheduleWork(c, &d.ws)

	cur := c.Current()
	d.pr.Debug(c, "process %d (%s) awakening the readers...\n", cur.PID(), cur.Comm())

	d.dataPresent.Store(1)
	wait.WakeUpInterruptible(c, &d.wq) // Awakens all interruptible sleepers on wq
	return len(data), nil              // succeed, to avoid retrial
}

// Init is module_init(workq_slpydrv_init_module).
func (d *drv) Init(c *kernel.Ctx) error { return d.workq_slpydrv_init_module(c) }

// Exit is module_exit(workq_slpydrv_cleanup_module).
func (d *drv) Exit(c *kernel.Ctx) { d.workq_slpydrv_cleanup_module(c) }

// workq_slpydrv_init_module is named as the C function.
func (d *drv) workq_slpydrv_init_module(c *kernel.Ctx) error {
	d.pr = kernel.Logger{NoDebug: !d.debug}
	d.fops = module.FileOps{Read: d.sleepy_read, Write: d.sleepy_write}

	result, err := module.RegisterChrdev(c, d.sleepyMajor, DrvName, &d.fops)
	if err != nil {
		return err
	}
	if d.sleepyMajor == 0 {
		d.sleepyMajor = result
	}
	d.pr.Debug(c, "sleepy: major # = %d\n", d.sleepyMajor)

	workqueue.Init(&d.ws, wq_func)
	timer.Setup(c, &d.timr, whee, 0)

	d.pr.Info(c, "%s: workQ and timer initialized..\n", DrvName)
	d.pr.Debug(c, "Loaded ok.\n")
	return nil // success
}

// workq_slpydrv_cleanup_module is named as the C function.
func (d *drv) workq_slpydrv_cleanup_module(c *kernel.Ctx) {
	// kdefer: our work first (it arms the timer), then the timer
	workqueue.FlushWork(c, &d.ws)
	timer.DeleteSync(c, &d.timr)
	module.UnregisterChrdev(c, d.sleepyMajor, DrvName)
	d.pr.Debug(c, "Removed.\n")
}
