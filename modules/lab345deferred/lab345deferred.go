// Package lab345deferred is the linux-kernel-labs "Deferred work" lab's
// exercises 3, 4, 5 and 7, tools/labs/templates/deferred_work/3-4-5-deferred
// (the solution of kernel/deferred.c, include/deferred.h and the user/test
// program): a character device, /dev/deferred (major 42, minor 0), whose
// ioctls drive a kernel timer.
//
//   - MY_IOCTL_TIMER_SET (_IOW('k', 1, unsigned long) = 0x40086B01, the
//     argument in seconds, by value): a one-shot timer that logs the task
//     it interrupted — "[timer_handler] pid = 0, comm = swapper/0" on an
//     idle CPU, as the lab points out (exercise 3).
//   - MY_IOCTL_TIMER_CANCEL (_IO('k', 2) = 0x00006B02): del_timer_sync.
//   - MY_IOCTL_TIMER_ALLOC (0x40086B03, seconds): when the timer fires,
//     alloc_io() — set_current_state(TASK_INTERRUPTIBLE) and
//     schedule_timeout(5*HZ), a blocking call, then "Yawn! I've been
//     sleeping for 5 seconds." — runs in a work item on the kernel-global
//     workqueue (schedule_work), in process context (exercise 5). With the
//     parameter alloc_io_direct=1 the timer callback calls alloc_io()
//     itself, in softirq context, as exercise 4 does with ALLOC_IO_DIRECT:
//     the kernel reports sleeping in atomic context (below).
//   - MY_IOCTL_TIMER_MON (_IO('k', 4) = 0x00006B04, a pid by value): the
//     process with that pid is added, under a spinlock taken with
//     spin_lock_bh in process context, to the list the timer walks every
//     second (under spin_lock, in softirq context); a process found dead is
//     reported, "task sleep (4242) is dead", and dropped (exercise 7). A
//     pid with no process fails with ESRCH. Monitoring goes on, the timer
//     re-armed every second, until a SET or ALLOC changes the timer's
//     type.
//
// Every open, ioctl ("[deferred_ioctl] Command: Set timer") and release is
// logged. Exit unregisters the device, stops the timer, cancels the work
// and frees the monitor list.
//
// The program Test is the lab's user/test.c: "test s N", "test c",
// "test a N", "test p PID".
//
// # The processes of p PID
//
// kdefer's tasks are not the host's processes, and `test p PID` monitors a
// real process of the host, as the lab does in its VM: get_proc() looks
// the pid up in the host's /proc (ESRCH if there is none) and remembers its
// comm and start time (the reference get_task_struct keeps); the timer
// reports it dead once it has exited — gone from /proc, a zombie, or its
// pid reused by a process started later. Start one with `sleep 1000 &` in
// a shell and pass its pid; kill it and the next tick reports it. Outside
// Linux there is no /proc to look in, and MY_IOCTL_TIMER_MON fails with
// ENOSYS.
//
// # Exercise 4 in kdefer
//
// The kernel's report for alloc_io() in a timer callback is "BUG:
// scheduling while atomic: swapper/0/0/0x00000102", from __schedule().
// kdefer's schedule_timeout checks might_sleep first, so the report is
// might_sleep's "BUG: sleeping function called from invalid context at
// …" (with in_atomic(): 1 and the idle task's pid 0), preceded by kdefer's
// warning that set_current_state() was called from softirq context; then
// schedule_timeout returns at once, without sleeping, and "Yawn! …" is
// logged in the same tick.
//
// Parameter (not in the lab, which switches exercises 4 and 5 by editing
// the #define):
//
//	alloc_io_direct  bool, N, 0444  Y: exercise 4 (alloc_io() from the
//	                                timer callback); N: exercise 5
//
// Deliberate differences: the device's state lives in the module instance,
// not in the static struct dev, and its timer type is an atomic (the C
// int is written by ioctl and read by the timer without a lock). Exit
// cancels the work (cancel_work_sync, which the newer solution adds)
// instead of flush_scheduled_work(), which kernels since 6.x warn about;
// and it stops the timer before it removes the device. The lab's
// MY_IOCTL_TIMER_MON argument is a pid of the host, not of a kdefer task
// (see above). The module is named 3_4_5_deferred after its directory (the
// lab builds deferred.ko); `kdefer run 3-4-5-deferred` finds it.
package lab345deferred

import (
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/workqueue"
)

// Names and numbers (kernel/deferred.c, include/deferred.h).
const (
	// Name is the module's name.
	Name = "3_4_5_deferred"
	// ModuleName is MODULE_NAME, the char device region's name.
	ModuleName = "deferred"
	// MyMajor and MyMinor are MY_MAJOR and MY_MINOR.
	MyMajor = 42
	MyMinor = 0
	// DevicePath is the test program's DEVICE_PATH.
	DevicePath = "/dev/deferred"
)

// The ioctl commands of include/deferred.h.
var (
	// CmdTimerSet is MY_IOCTL_TIMER_SET, _IOW('k', 1, unsigned long).
	CmdTimerSet = module.IOW('k', 1, 8)
	// CmdTimerCancel is MY_IOCTL_TIMER_CANCEL, _IO('k', 2).
	CmdTimerCancel = module.IO('k', 2)
	// CmdTimerAlloc is MY_IOCTL_TIMER_ALLOC, _IOW('k', 3, unsigned long).
	CmdTimerAlloc = module.IOW('k', 3, 8)
	// CmdTimerMon is MY_IOCTL_TIMER_MON, _IO('k', 4).
	CmdTimerMon = module.IO('k', 4)
)

// Timer types (the flag).
const (
	timerTypeNone  = -1 // TIMER_TYPE_NONE
	timerTypeSet   = 0  // TIMER_TYPE_SET
	timerTypeAlloc = 1  // TIMER_TYPE_ALLOC
	timerTypeMon   = 2  // TIMER_TYPE_MON
)

// IoctlCommandToString is include/deferred.h's ioctl_command_to_string().
func IoctlCommandToString(cmd uint32) string {
	switch cmd {
	case CmdTimerSet:
		return "Set timer"
	case CmdTimerCancel:
		return "Cancel timer"
	case CmdTimerAlloc:
		return "Allocate memory"
	case CmdTimerMon:
		return "Monitor pid"
	}
	return "Unknown command"
}

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "Deferred work character device",
	License:     "GPL",
	Author:      "SO2",
	New:         newDev,
}

// pr prints without a prefix (no pr_fmt): the messages carry their own
// "[function]" tags.
var pr = kernel.Logger{}

// monProc is struct mon_proc: a monitored process of the host.
type monProc struct {
	task *hostTask
	next *monProc
}

// myDeviceData is struct my_device_data. timer is its first field, so
// from_timer is an offset of 0; work is found with from_work.
type myDeviceData struct {
	timer timer.Timer
	cdev  module.Cdev
	flag  atomic.Int32
	work  workqueue.Work
	list  *monProc // guarded by lock
	lock  kernel.SpinLock

	allocIODirect bool
	fops          module.FileOps
}

func newDev(p *module.Params) module.Instance {
	d := &myDeviceData{}
	p.Bool(&d.allocIODirect, "alloc_io_direct", false, 0444,
		"call alloc_io() from the timer callback, as exercise 4's ALLOC_IO_DIRECT (N: exercise 5, from a work item) (default=N)")
	return d
}

// alloc_io blocks for 5 seconds.
func alloc_io(c *kernel.Ctx) {
	kernel.SetCurrentState(c, kernel.TaskInterruptible)
	delay.ScheduleTimeout(c, 5*int64(c.Kernel().HZ()))
	pr.Info(c, "Yawn! I've been sleeping for 5 seconds.\n")
}

// get_proc finds the host process pid and takes a "reference" on it.
func get_proc(pid int) (*monProc, error) {
	t, err := findHostTask(pid)
	if err != nil {
		return nil, err
	}
	return &monProc{task: t}, nil
}

// work_handler is the work function (a kworker, process context).
func work_handler(c *kernel.Ctx, work *workqueue.Work) {
	alloc_io(c)
}

// timer_handler is the timer's callback (timer softirq context).
func timer_handler(c *kernel.Ctx, tl *timer.Timer) {
	myData := timer.ContainerOf[myDeviceData](tl, unsafe.Offsetof(myDeviceData{}.timer))
	cur := c.Current()
	pr.Info(c, "[timer_handler] pid = %d, comm = %s\n", cur.PID(), cur.Comm())

	// check flags: TIMER_TYPE_SET or TIMER_TYPE_ALLOC
	switch myData.flag.Load() {
	case timerTypeSet:
	case timerTypeAlloc:
		if myData.allocIODirect {
			alloc_io(c) // exercise 4: a BUG, blocking in atomic context
		} else {
			workqueue.ScheduleWork(c, &myData.work) // exercise 5
		}
	case timerTypeMon:
		// iterate the list and check the process state
		myData.lock.Lock(c)
		for pp := &myData.list; *pp != nil; {
			p := *pp
			if p.task.dead() {
				pr.Info(c, "task %s (%d) is dead\n", p.task.comm, p.task.pid)
				*pp = p.next // put_task_struct, list_del, kfree
				continue
			}
			pp = &p.next
		}
		myData.lock.Unlock(c)
		timer.Mod(c, &myData.timer, c.Jiffies()+uint64(c.Kernel().HZ()))
	}
}

// deferred_open logs the open.
func (d *myDeviceData) deferred_open(c *kernel.Ctx, f *module.File) error {
	f.Private = d // container_of(inode->i_cdev, struct my_device_data, cdev)
	pr.Info(c, "[deferred_open] Device opened\n")
	return nil
}

// deferred_release logs the release.
func (d *myDeviceData) deferred_release(c *kernel.Ctx, f *module.File) error {
	pr.Info(c, "[deferred_release] Device released\n")
	return nil
}

// deferred_ioctl drives the timer.
func (d *myDeviceData) deferred_ioctl(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
	myData := f.Private.(*myDeviceData)
	hz := uint64(c.Kernel().HZ())

	pr.Info(c, "[deferred_ioctl] Command: %s\n", IoctlCommandToString(cmd))

	switch cmd {
	case CmdTimerSet:
		myData.flag.Store(timerTypeSet)
		timer.Mod(c, &myData.timer, c.Jiffies()+arg.Value()*hz)
	case CmdTimerCancel:
		timer.DeleteSync(c, &myData.timer)
	case CmdTimerAlloc:
		myData.flag.Store(timerTypeAlloc)
		timer.Mod(c, &myData.timer, c.Jiffies()+arg.Value()*hz)
	case CmdTimerMon:
		p, err := get_proc(int(int32(arg.Value())))
		if err != nil {
			return 0, err
		}
		// protect access to list
		myData.lock.LockBH(c)
		p.next = myData.list
		myData.list = p
		myData.lock.UnlockBH(c)

		myData.flag.Store(timerTypeMon)
		timer.Mod(c, &myData.timer, c.Jiffies()+hz)
	default:
		return 0, kernel.ENOTTY
	}
	return 0, nil
}

// Init is module_init(deferred_init).
func (d *myDeviceData) Init(c *kernel.Ctx) error { return d.deferred_init(c) }

// Exit is module_exit(deferred_exit).
func (d *myDeviceData) Exit(c *kernel.Ctx) { d.deferred_exit(c) }

// deferred_init is named as the C function.
func (d *myDeviceData) deferred_init(c *kernel.Ctx) error {
	pr.Info(c, "[deferred_init] Init module\n")
	if err := module.RegisterChrdevRegion(c, MyMajor, MyMinor, 1, ModuleName); err != nil {
		e, _ := kernel.AsErrno(err)
		pr.Info(c, "[deffered_init] register_chrdev_region: %d\n", -int(e))
		return err
	}

	d.flag.Store(timerTypeNone)
	workqueue.Init(&d.work, work_handler)

	d.list = nil
	d.fops = module.FileOps{Open: d.deferred_open, Release: d.deferred_release, UnlockedIoctl: d.deferred_ioctl}
	d.cdev.Ops = &d.fops
	if err := module.CdevAdd(c, &d.cdev, MyMajor, MyMinor, 1); err != nil {
		module.UnregisterChrdevRegion(c, MyMajor, MyMinor, 1)
		return err
	}

	timer.Setup(c, &d.timer, timer_handler, 0)
	return nil
}

// deferred_exit is named as the C function.
func (d *myDeviceData) deferred_exit(c *kernel.Ctx) {
	pr.Info(c, "[deferred_exit] Exit module\n")

	// kdefer: stop the timer before the device goes
	timer.DeleteSync(c, &d.timer)
	module.CdevDel(c, &d.cdev)
	module.UnregisterChrdevRegion(c, MyMajor, MyMinor, 1)

	// Cleanup: make sure the work handler is not scheduled
	workqueue.CancelWorkSync(c, &d.work)

	// Cleanup the monitored process list
	d.lock.Lock(c)
	d.list = nil
	d.lock.Unlock(c)
}
