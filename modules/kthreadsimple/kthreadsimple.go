// Package kthreadsimple is the seed demo kthread_simple (Linux Kernel
// Programming Part 2, ch5/kthread_simple/kthread_simple.c, book-era tree
// f947bc9): a module whose init starts a kernel thread, llkd/kt_simple,
// that sleeps until something wakes it.
//
// Init logs "Lets now create a kernel thread...", starts the thread with
// kthread_run(simple_kthread, NULL, "llkd/%s", "kt_simple"), takes a
// reference on it (get_task_struct) and logs where it is:
//
//	kthread_simple:kthread_simple_init(): Initialized, kernel thread task ptr is 0x00000000b2f81c65 (actual=0xffff888100013b00)
//	See the new kernel thread 'llkd/kt_simple' with ps (and kill it with SIGINT or SIGQUIT)
//
// The thread logs PRINT_CTX (a kernel thread in process context, ...0) and
// "mm field NULL, we are a kernel thread!", allows SIGINT and SIGQUIT
// (allow_signal: a kernel thread ignores every other signal, SIGKILL
// included), then loops until kthread_should_stop(): it logs "FYI, I,
// kernel thread PID N, am going to sleep now...", sleeps in
// TASK_INTERRUPTIBLE (ps shows S) and, once woken, leaves the loop if a
// signal is pending. So:
//
//   - SIGINT or SIGQUIT sent to its pid (the console's kill -INT PID) wakes
//     it and it exits, logging "FYI, I, kernel thread PID N, have been
//     rudely awoken; I shall now exit... Good day Sir!";
//   - a plain wake-up (wake_up_process, no signal, no stop) makes it log
//     "am going to sleep now..." and sleep again;
//   - unloading the module runs kthread_stop, which wakes it with
//     TIF_NOTIFY_SIGNAL set (signal_pending is true): it logs the same
//     "rudely awoken" line and exits; the exit routine then logs
//     "kthread stopped, and LKM removed.".
//
// Unloading after the thread was killed is safe: the reference init took
// keeps the task_struct, and kthread_stop returns the exit code at once.
//
// Parameter (not in the C module, which builds with -DDEBUG):
//
//	debug  bool, Y, 0444  pr_debug and PRINT_CTX output (the book builds
//	                      with -DDEBUG; N is HEAD's MYDEBUG=n)
//
// Deliberate differences:
//   - The exit routine calls kthread_stop_put (kthread.StopPut): the C
//     code's comment says kthread_stop drops the reference init took, which
//     kernels have not done since 2.6; kthread_stop_put (v6.6) does.
//   - %pK and %px print an address kdefer makes up for the task (a
//     direct-map address derived from the pid); %pK prints it hashed, as
//     the kernel does with kptr_restrict=0, with a hash keyed by the
//     kernel's seed.
//   - The thread pointer lives in the module instance (the C code's global
//     gkthrd_ts), so that two kernels in one process each have their own.
//   - The C module's MODULE_DESCRIPTION is delays_sleeps's ("a simple LKM
//     to demo delays and sleeps in the kernel"), copied over; kdefer's
//     describes the kernel thread.
package kthreadsimple

import (
	"errors"
	"hash/fnv"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
)

// Names, from kthread_simple.c.
const (
	// Name is OURMODNAME, the module's name.
	Name = "kthread_simple"
	// KthreadName is KTHREAD_NAME; the thread is "llkd/" + KthreadName.
	KthreadName = "kt_simple"
	// ThreadComm is the thread's name as ps shows it (in brackets).
	ThreadComm = "llkd/" + KthreadName
)

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "a simple LKM to demo a kernel thread (llkd/kt_simple) woken by SIGINT or SIGQUIT",
	License:     "Dual MIT/GPL",
	Author:      "Kaiwan N Billimoria",
	Version:     "0.1",
	New:         newMod,
}

// kthreadSimple is one loaded copy of the module.
type kthreadSimple struct {
	debug    bool
	pr       kernel.Logger
	gkthrdTs *kernel.Task // gkthrd_ts
}

func newMod(p *module.Params) module.Instance {
	m := &kthreadSimple{}
	p.Bool(&m.debug, "debug", true, 0444, "pr_debug and PRINT_CTX output (default=Y)")
	return m
}

// simple_kthread is the kernel thread's function.
func (m *kthreadSimple) simple_kthread(c *kernel.Ctx) int {
	cur := c.Current()
	convenient.PrintCtx(c, m.pr)
	if cur.IsKthread() { // !current->mm
		m.pr.Info(c, "mm field NULL, we are a kernel thread!\n")
	}

	// By default all signals are masked for the kthread; allow a couple
	// so that we can 'manually' kill it
	kernel.AllowSignal(c, kernel.SIGINT)
	kernel.AllowSignal(c, kernel.SIGQUIT)

	for !kthread.ShouldStop(c) {
		m.pr.Info(c, "FYI, I, kernel thread PID %d, am going to sleep now...\n", cur.PID())
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // yield the processor, go to sleep...
		// Aaaaaand we're back! Here, it's typically due to either the
		// SIGINT or SIGQUIT signal hitting us, or due to the rmmod (or
		// shutdown)
		if c.SignalPending() {
			break
		}
	}

	// We've been (rudely) interrupted by a signal...
	kernel.SetCurrentState(c, kernel.TaskRunning)
	m.pr.Info(c, "FYI, I, kernel thread PID %d, have been rudely awoken; I shall"+
		" now exit... Good day Sir!\n", cur.PID())
	return 0
}

// Init is module_init(kthread_simple_init).
func (m *kthreadSimple) Init(c *kernel.Ctx) error { return m.kthread_simple_init(c) }

// Exit is module_exit(kthread_simple_exit).
func (m *kthreadSimple) Exit(c *kernel.Ctx) { m.kthread_simple_exit(c) }

// kthread_simple_init is named as the C function: pr_fmt prints the name.
func (m *kthreadSimple) kthread_simple_init(c *kernel.Ctx) error {
	m.pr = kernel.Logger{Module: Name, NoDebug: !m.debug}
	m.pr.Info(c, "Lets now create a kernel thread...\n")

	t, err := kthread.Run(c, m.simple_kthread, "llkd/%s", KthreadName)
	if err != nil {
		ret := -int(kernel.ENOMEM) // it's usually -ENOMEM
		var e kernel.Errno
		if errors.As(err, &e) {
			ret = -int(e)
		}
		m.pr.Err(c, "kthread creation failed (%d)\n", ret)
		return err
	}
	m.gkthrdTs = t
	// increment the kthread task structure's reference count, marking
	// it as being in use
	kthread.GetTaskStruct(t)

	m.pr.Info(c, "Initialized, kernel thread task ptr is 0x%016x (actual=0x%016x)\n"+
		"See the new kernel thread 'llkd/%s' with ps (and kill it with SIGINT or SIGQUIT)\n",
		HashedPtr(c.Kernel(), TaskAddr(t)), TaskAddr(t), KthreadName)
	return nil // success
}

// kthread_simple_exit is named as the C function.
func (m *kthreadSimple) kthread_simple_exit(c *kernel.Ctx) {
	// waits for our kthread to terminate, and drops the reference init
	// took (kthread_stop_put)
	kthread.StopPut(c, m.gkthrdTs)
	m.pr.Info(c, "kthread stopped, and LKM removed.\n")
}

// TaskAddr is the address kdefer shows for t's task_struct (%px): a
// made-up x86-64 direct-map address, the same for the same pid.
func TaskAddr(t *kernel.Task) uint64 {
	return 0xffff888100000000 + uint64(t.PID())*0x2c40
}

// HashedPtr is what %p and %pK (kptr_restrict=0) print for addr: a 32-bit
// hash in 16 hex digits, keyed by k's seed (the kernel keys ptr_to_id
// with a random boot-time key).
func HashedPtr(k *kernel.Kernel, addr uint64) uint64 {
	h := fnv.New32a()
	var b [16]byte
	for i := range 8 {
		b[i] = byte(addr >> (8 * i))
		b[8+i] = byte(uint64(k.Seed()) >> (8 * i))
	}
	h.Write(b[:])
	return uint64(h.Sum32())
}
