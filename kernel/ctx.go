package kernel

import (
	"context"
	"time"
)

// Ctx is an execution context: the kernel's "current" task, the CPU it runs
// on, and that context's preempt_count and interrupt state. Go has no
// goroutine-local storage, so every kernel API takes the caller's Ctx as its
// first parameter, where the kernel would consult current and the per-CPU
// preempt_count.
//
// A task's process-context Ctx is handed to its function; softirq and
// hardirq Ctxs are made by the kernel for the handlers it runs. A Ctx must be
// used only by the goroutine it was handed to: its preempt count is not
// synchronised.
//
// Ctx implements context.Context. For process context it is the task's
// context: it is cancelled when the task gets a signal it accepts or a stop
// request (tell them apart with context.Cause). Interrupt contexts are never
// cancelled.
type Ctx struct {
	k       *Kernel
	task    *Task
	cpu     *CPU
	preempt uint32
	irqsOff bool
	bhHeld  bool // this context holds its CPU's softirq lock (outermost local_bh_disable)
}

// Kernel returns the kernel this context runs in.
func (c *Ctx) Kernel() *Kernel { return c.k }

// Current returns the task this context runs on behalf of (the kernel's
// current). In softirq and hardirq context it is the interrupted task,
// usually the CPU's idle task swapper/N or ksoftirqd/N.
func (c *Ctx) Current() *Task { return c.task }

// CPU returns smp_processor_id().
func (c *Ctx) CPU() int { return c.cpu.id }

// Jiffies returns the current jiffies value.
func (c *Ctx) Jiffies() uint64 { return c.k.Jiffies() }

// Dying reports whether the caller may no longer sleep: the kernel is
// shutting down, or (virtual time) a sleep of this attached task was found
// to be a deadlock. Sleeping primitives then return at once, and their
// loops end: they test it where the kernel tests for a fatal signal or a
// stop request.
func (c *Ctx) Dying() bool { return c.k.dying.Load() || c.task.noSleep.Load() }

// Deadline implements context.Context; kernel contexts have no deadline.
func (c *Ctx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context: closed when the task is signalled or
// asked to stop. It is nil (never closed) in interrupt context.
func (c *Ctx) Done() <-chan struct{} {
	if !c.InTask() {
		return nil
	}
	return c.task.context().Done()
}

// Err implements context.Context.
func (c *Ctx) Err() error {
	if !c.InTask() {
		return nil
	}
	return c.task.context().Err()
}

// Value implements context.Context by delegating to the task's context.
func (c *Ctx) Value(key any) any {
	return c.task.context().Value(key)
}

var _ context.Context = (*Ctx)(nil)
