// Package kt is the kernel-thread example of Kaiwan N Billimoria's
// courseware "Linux Kernel Internals" (seed 002, "Simple demo of a kernel
// thread", kt1.c) as module kt1, and the fix the text teaches for its
// unload race as module kt2.
//
// # kt1
//
// Init logs "Create a kernel thread..." and starts the thread mykt, then
// "Module kt initialized, thread PID N alive.". It keeps only the pid, as
// kernel_thread() returned nothing else. The thread logs "name: mykt PID: N
// TGID: N" and "mm field NULL." (a kernel thread has no user memory),
// allows SIGINT and SIGQUIT, and loops: "K Thread N going to sleep now...",
// a sleep in TASK_INTERRUPTIBLE, and out of the loop when a signal is
// pending: "K thread N exiting now...". The log lines are the courseware's
// MSG() format, "func:line : text", with kdefer's own line numbers.
//
// What the seed shows from a shell: ps lists [mykt] in state S, child of
// kthreadd (pid 2); /proc/PID/status says "Name: mykt", "State: S
// (sleeping)", "PPid: 2", "Threads: 1" and the context-switch counts;
// kill -9 PID does nothing (SIGKILL is not allowed), kill -2 PID (SIGINT)
// ends the thread. Exit only logs "Module kt unloaded.": it does not stop
// the thread, and could not, having no task_struct pointer.
//
// That is the race the seed warns about: unload kt1 while its thread
// sleeps, then signal the thread, and the thread runs again — in code
// that was freed with the module. The kernel takes a page fault on the
// instruction fetch and Oopses. kdefer shows the same: once kt1's exit has
// returned, its text counts as freed, and a thread of it that wakes up
// logs the kernel's page-fault lines,
//
//	BUG: unable to handle page fault for address: ffffffffc0a3e07c
//	#PF: supervisor instruction fetch in kernel mode
//	#PF: error_code(0x0010) - not-present page
//
// and dies with an Oops ("Oops: task mykt/6 panicked: kt1: mykt+0x7c/0x140
// ran after module kt1 was unloaded …", a stack, taint D) whose panic
// value is an *UnloadedCodeError (errors.Is ErrUnloadedCode). The addresses
// are made up (module space, a fixed base per module).
//
// # kt2
//
// The fix: kthread_run returns the task_struct, the module keeps a
// reference (get_task_struct), the thread loops while !kthread_should_stop()
// and exit calls kthread_stop_put, which wakes the thread (signal_pending
// is true in it), waits for it to return and drops the reference. Exit
// logs "Stopping kernel thread N...", then "kthread_stop() returned R." and
// "Module kt2 unloaded.". Signalled with SIGINT first, the thread exits on
// its own; the reference keeps kthread_stop safe, and it returns the
// thread's 0 at once. Nothing of kt2 runs after its exit.
//
// # Deliberate differences
//
//   - kernel_thread() + daemonize("mykt"), long gone from modules, are
//     kthread_run(mykt, NULL, "mykt"): the thread is a kthread, named mykt,
//     child of kthreadd, with every signal ignored until allowed — what
//     daemonize() arranged.
//   - MSG() is not rate-limited.
//   - A kt1 thread woken by the kernel's shutdown (kdefer ends every task;
//     the kernel at power-off does not run it again) returns quietly.
//   - The module's data (the pid, the task pointer) lives in the module
//     instance, so that two kernels in one process each have their own.
package kt

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/printk"
)

// Names.
const (
	// Kt1Name and Kt2Name are the modules' names (kt1.ko, kt2.ko).
	Kt1Name = "kt1"
	Kt2Name = "kt2"
	// ThreadComm is the thread's name (daemonize("mykt")).
	ThreadComm = "mykt"
)

// Kt1 defines module kt1, the seed's kt1.c.
var Kt1 = module.Info{
	Name:        Kt1Name,
	Description: "Simple demo of a kernel thread (unloading it while the thread sleeps is the seed's race)",
	License:     "GPL",
	Author:      "Kaiwan N Billimoria",
	New:         func(p *module.Params) module.Instance { return &kt1{text: text{module: Kt1Name, base: kt1Base}} },
}

// Kt2 defines module kt2, kt1 fixed with kthread_run and kthread_stop.
var Kt2 = module.Info{
	Name:        Kt2Name,
	Description: "Simple demo of a kernel thread, stopped with kthread_stop at unload",
	License:     "GPL",
	Author:      "Kaiwan N Billimoria",
	New:         func(p *module.Params) module.Instance { return &kt2{} },
}

// ErrUnloadedCode is the sentinel of UnloadedCodeError.
var ErrUnloadedCode = errors.New("kt: code of an unloaded module ran")

// UnloadedCodeError is the panic value of a thread of an unloaded module
// that ran again: the Oops the kernel would take.
type UnloadedCodeError struct {
	// Module is the unloaded module.
	Module string
	// Func and Off locate the code that ran ("mykt", 0x7c); Size is the
	// function's size.
	Func      string
	Off, Size uint64
	// Addr is the address of the instruction fetch (made up).
	Addr uint64
}

// Error describes the fault.
func (e *UnloadedCodeError) Error() string {
	return fmt.Sprintf("%s: %s+%#x/%#x ran after module %s was unloaded (instruction fetch from freed memory at %016x)",
		e.Module, e.Func, e.Off, e.Size, e.Module, e.Addr)
}

// Unwrap returns ErrUnloadedCode.
func (e *UnloadedCodeError) Unwrap() error { return ErrUnloadedCode }

// text is a module's code as its threads see it: freed once the module's
// exit routine has returned (free_module after mod->exit).
type text struct {
	module string
	base   uint64
	freed  atomic.Bool
}

// Made-up load addresses (module space) and layout of mykt.
const (
	kt1Base    = 0xffffffffc0a3e000
	myktOff    = 0x7c // the instruction after the call to schedule()
	myktSize   = 0x140
	pfErrFetch = 0x0010 // X86_PF_INSTR, not present
)

// resume is the thread returning into fn+off of the module's code: nothing
// while the module is loaded; once it is unloaded, the page fault and the
// Oops (a panic the kernel turns into one).
func (tx *text) resume(c *kernel.Ctx, fn string, off, size uint64) {
	if !tx.freed.Load() {
		return
	}
	addr := tx.base + off
	kernel.Printk(c, printk.LevelAlert, "BUG: unable to handle page fault for address: %016x\n", addr)
	kernel.Printk(c, printk.LevelAlert, "#PF: supervisor instruction fetch in kernel mode\n")
	kernel.Printk(c, printk.LevelAlert, "#PF: error_code(0x%04x) - not-present page\n", pfErrFetch)
	panic(&UnloadedCodeError{Module: tx.module, Func: fn, Off: off, Size: size, Addr: addr})
}

// moduleName is kt1.c's MODULE_NAME.
const moduleName = "kt"

// kt1 is one loaded copy of module kt1.
type kt1 struct {
	text text
	pid  int // what kernel_thread() returned
}

// mykt is kt1's thread.
func (m *kt1) mykt(c *kernel.Ctx) int {
	cur := c.Current()
	convenient.Msg(c, "name: %s PID: %d TGID: %d\n", cur.Comm(), cur.PID(), cur.PID())
	if cur.IsKthread() { // !current->mm
		convenient.Msg(c, "mm field NULL.\n")
	}

	kernel.AllowSignal(c, kernel.SIGINT)
	kernel.AllowSignal(c, kernel.SIGQUIT)

	for {
		convenient.Msg(c, "K Thread %d going to sleep now...\n", cur.PID())
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // and yield the processor...
		if c.Dying() {
			return 0 // kdefer's shutdown: nothing runs on at power-off
		}
		// we're back on! has to be due to a signal — in mykt's code,
		// which the module's unload may have freed
		m.text.resume(c, "mykt", myktOff, myktSize)
		if c.SignalPending() {
			break
		}
	}
	// We've been interrupted by a signal...
	kernel.SetCurrentState(c, kernel.TaskRunning)
	convenient.Msg(c, "K thread %d exiting now...\n", cur.PID())
	return 0
}

// Init is module_init(hello_init).
func (m *kt1) Init(c *kernel.Ctx) error { return m.hello_init(c) }

// Exit is module_exit(hello_exit).
func (m *kt1) Exit(c *kernel.Ctx) { m.hello_exit(c) }

func (m *kt1) hello_init(c *kernel.Ctx) error {
	convenient.Msg(c, "Create a kernel thread...\n")
	t, err := kthread.Run(c, m.mykt, ThreadComm)
	if err != nil {
		kernel.Printk(c, printk.LevelErr, "kt1: kernel_thread failed.")
		return err
	}
	m.pid = t.PID()
	convenient.Msg(c, "Module %s initialized, thread PID %d alive.\n", moduleName, m.pid)
	return nil
}

func (m *kt1) hello_exit(c *kernel.Ctx) {
	convenient.Msg(c, "Module %s unloaded.\n", moduleName)
	m.text.freed.Store(true) // the module's memory goes once exit returns
}

// kt2 is one loaded copy of module kt2.
type kt2 struct {
	task *kernel.Task
}

// mykt is kt2's thread.
func (m *kt2) mykt(c *kernel.Ctx) int {
	cur := c.Current()
	convenient.Msg(c, "name: %s PID: %d TGID: %d\n", cur.Comm(), cur.PID(), cur.PID())
	if cur.IsKthread() {
		convenient.Msg(c, "mm field NULL.\n")
	}

	kernel.AllowSignal(c, kernel.SIGINT)
	kernel.AllowSignal(c, kernel.SIGQUIT)

	for !kthread.ShouldStop(c) {
		convenient.Msg(c, "K Thread %d going to sleep now...\n", cur.PID())
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c)
		// a signal, or kthread_stop (which makes signal_pending true)
		if c.SignalPending() {
			break
		}
	}
	kernel.SetCurrentState(c, kernel.TaskRunning)
	convenient.Msg(c, "K thread %d exiting now...\n", cur.PID())
	return 0
}

// Init is module_init(hello_init).
func (m *kt2) Init(c *kernel.Ctx) error { return m.hello_init(c) }

// Exit is module_exit(hello_exit).
func (m *kt2) Exit(c *kernel.Ctx) { m.hello_exit(c) }

func (m *kt2) hello_init(c *kernel.Ctx) error {
	convenient.Msg(c, "Create a kernel thread...\n")
	t, err := kthread.Run(c, m.mykt, ThreadComm)
	if err != nil {
		kernel.Printk(c, printk.LevelErr, "kt2: kthread_run failed.")
		return err
	}
	kthread.GetTaskStruct(t) // so that kthread_stop is safe if it exits first
	m.task = t
	convenient.Msg(c, "Module %s initialized, thread PID %d alive.\n", Kt2Name, t.PID())
	return nil
}

func (m *kt2) hello_exit(c *kernel.Ctx) {
	convenient.Msg(c, "Stopping kernel thread %d...\n", m.task.PID())
	ret := kthread.StopPut(c, m.task)
	convenient.Msg(c, "kthread_stop() returned %d.\n", ret)
	convenient.Msg(c, "Module %s unloaded.\n", Kt2Name)
}
