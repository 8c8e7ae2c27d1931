// Package lab6kthread is the linux-kernel-labs "Deferred work" lab's
// exercise 6, tools/labs/templates/deferred_work/6-kthread (the solution of
// kthread.c): a kernel thread that prints its pid and name, then waits
// until the module is unloaded, the unload waiting in turn until the thread
// is done. The two are synchronised with two wait queues and two atomic
// flags, as the exercise asks:
//
//	[kthread_init] Init module
//	[my_thread_f] Current process id is 6 (mykthread0)
//	[my_thread_f] Exiting
//	[kthread_exit] Exit module
//
// Init initialises wq_stop_thread and wq_thread_terminated and sets both
// flags to 0, then starts the thread with kthread_run(my_thread_f, NULL,
// "%skthread%d", "my", 0): its name is mykthread0. The thread logs its pid
// and comm and sleeps in wait_event_interruptible(wq_stop_thread,
// flag_stop_thread != 0) (ps shows S). Exit sets flag_stop_thread and
// wakes wq_stop_thread, then sleeps in wait_event_interruptible(
// wq_thread_terminated, flag_thread_terminated != 0); the thread sets
// flag_thread_terminated, wakes wq_thread_terminated, logs "Exiting" and
// ends (do_exit(0)); exit logs "Exit module".
//
// In the lab the last two lines may come in either order: the thread sets
// the flag before it logs. In kdefer's virtual time the woken unload runs
// once the thread has ended, so the order is the one above; in real time
// it may vary, as in the kernel.
//
// The module's name is 6_kthread: the lab builds it as kthread.ko from the
// 6-kthread directory, and kdefer names it after the directory, with the
// dashes KBUILD_MODNAME turns into underscores (and that modprobe treats
// as equal); `kdefer run 6-kthread` finds it.
//
// Deliberate differences:
//   - do_exit(0), which modules can no longer call (v5.17), is a return
//     from the thread function.
//   - The wait queues and flags live in the module instance (global
//     variables in C), so that two kernels in one process each have their
//     own.
//
// The lab's synchronisation has a window the kernel closes with
// kthread_complete_and_exit: once it has set flag_thread_terminated, the
// thread still runs module code (the pr_info, the return) while the unload
// may already be freeing it. kdefer keeps the lab's code as it is.
package lab6kthread

import (
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/wait"
)

// Name is the module's name.
const Name = "6_kthread"

// ThreadComm is the thread's name, "%skthread%d" of "my" and 0.
const ThreadComm = "mykthread0"

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "Simple kernel thread (linux-kernel-labs deferred work, exercise 6)",
	License:     "GPL",
	Author:      "SO2",
	New:         newLab,
}

// pr prints without a prefix (no pr_fmt).
var pr = kernel.Logger{}

// lab is one loaded copy of the module: the globals of kthread.c.
type lab struct {
	wqStopThread         wait.Queue
	flagStopThread       atomic.Int32
	wqThreadTerminated   wait.Queue
	flagThreadTerminated atomic.Int32
}

func newLab(p *module.Params) module.Instance { return &lab{} }

// my_thread_f is the kernel thread.
func (m *lab) my_thread_f(c *kernel.Ctx) int {
	cur := c.Current()
	pr.Info(c, "[my_thread_f] Current process id is %d (%s)\n", cur.PID(), cur.Comm())
	// TODO: Wait for command to remove module on wq_stop_thread queue.
	wait.EventInterruptible(c, &m.wqStopThread, func() bool { return m.flagStopThread.Load() != 0 })

	// TODO: set flag to mark kernel thread termination
	m.flagThreadTerminated.Store(1)
	// TODO: notify the unload process that we have exited
	wait.WakeUpInterruptible(c, &m.wqThreadTerminated)
	pr.Info(c, "[my_thread_f] Exiting\n")
	return 0 // do_exit(0)
}

// Init is module_init(kthread_init).
func (m *lab) Init(c *kernel.Ctx) error { return m.kthread_init(c) }

// Exit is module_exit(kthread_exit).
func (m *lab) Exit(c *kernel.Ctx) { m.kthread_exit(c) }

// kthread_init is named as the C function.
func (m *lab) kthread_init(c *kernel.Ctx) error {
	pr.Info(c, "[kthread_init] Init module\n")

	// TODO/4: init the waitqueues and flags
	wait.Init(&m.wqStopThread)
	m.flagStopThread.Store(0)
	wait.Init(&m.wqThreadTerminated)
	m.flagThreadTerminated.Store(0)

	// TODO: create and start the kernel thread
	if _, err := kthread.Run(c, m.my_thread_f, "%skthread%d", "my", 0); err != nil {
		return err // the lab ignores it
	}
	return nil
}

// kthread_exit is named as the C function.
func (m *lab) kthread_exit(c *kernel.Ctx) {
	// TODO/2: notify the kernel thread that its time to exit
	m.flagStopThread.Store(1)
	wait.WakeUpInterruptible(c, &m.wqStopThread)
	// TODO: wait for the kernel thread to exit
	wait.EventInterruptible(c, &m.wqThreadTerminated, func() bool { return m.flagThreadTerminated.Load() != 0 })
	pr.Info(c, "[kthread_exit] Exit module\n")
}
