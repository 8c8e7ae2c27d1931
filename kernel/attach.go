package kernel

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/kdefer/kdefer/printk"
)

// ErrDetached is returned by Detach for a task that was already detached.
var ErrDetached = errors.New("kernel: task already detached")

// Attach makes the calling goroutine a user task of k — the equivalent of a
// user thread entering the kernel through system calls — and returns its
// process context. The task has its own pid and comm (truncated to 15
// bytes), is a child of init, is listed by Tasks and FindTask, can receive
// signals, and may sleep: with the context every kernel API can be used
// from plain Go code, without wrapping it in a task function (RunTask).
// Detach ends it.
//
// ctx is the parent context: when it is cancelled the task gets SIGKILL, so
// interruptible and killable sleeps end (with -ERESTARTSYS or -EINTR) and
// the returned Ctx is cancelled. Values of ctx are visible through the
// returned Ctx's Value.
//
// The Ctx belongs to the calling goroutine, as a task's context belongs to
// its goroutine. Misuse is reported rather than obeyed: a sleep from
// another goroutine, or after Detach, prints a "BUG: … attached task …"
// report and does not sleep; Detach twice returns ErrDetached.
//
// In real time the task runs beside the kernel's own goroutines. In virtual
// time the attached goroutine drives the kernel while it is attached: its
// sleeps and busy-waits run the other tasks and move the clock, as Run does,
// so Run, RunTask, Attach and Shutdown from any other goroutine fail with a
// *DriverBusyError until it detaches. A sleep that nothing can end any more
// is reported ("INFO: task … blocked … (deadlock)") and returns; the task
// then never sleeps again.
//
// Attach fails with ErrShutdown once the kernel is shutting down. Shutdown
// does not wait for attached tasks: it sends them SIGKILL and wakes them,
// and from then on they never sleep.
func (k *Kernel) Attach(ctx context.Context, comm string) (*Ctx, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kernel: attach %q: %w", comm, context.Cause(ctx))
	}
	if k.dying.Load() {
		return nil, fmt.Errorf("kernel: attach %q: %w", comm, ErrShutdown)
	}
	if err := k.acquireDriver("attach " + comm); err != nil {
		return nil, err
	}
	cpu := int(k.rr.Add(1)-1) % len(k.cpus)
	t := k.newTask(comm, false, cpu, k.initTask, k.allocPID())
	t.attached = true
	t.owner = goid()
	t.ownerG = getg()
	t.mu.Lock()
	t.started = true
	t.mu.Unlock()
	t.state.Store(TaskRunning)
	t.parentCtx = ctx
	t.ctxp.Store(t.freshContext())
	if ctx.Done() != nil && !k.virtual {
		// In virtual time the driver polls the context instead (see
		// attachedMaySleep), since only it may touch the scheduler.
		t.stopCtx = context.AfterFunc(ctx, func() { k.SendSignal(t, SIGKILL) })
	}
	if k.dying.Load() {
		// Shutdown began meanwhile and may have passed this task over.
		k.wakeForShutdown(t)
	}
	return &t.pctx, nil
}

// Detach is the exit of a task made by Kernel.Attach: the task's exit hooks
// run (a module's files it opened are released, say), it leaves the task
// list as a dead task, and in virtual time the goroutine stops driving the
// kernel. c must not be used afterwards. It returns ErrDetached if the task
// was already detached, and an error wrapping EINVAL for a context that is
// not an attached task's process context. Detach works after Shutdown too.
func Detach(c *Ctx) error {
	if c == nil || c.task == nil || !c.task.attached || c != &c.task.pctx {
		return fmt.Errorf("kernel: detach: not the process context of an attached task: %w", EINVAL)
	}
	t, k := c.task, c.k
	if id := goid(); id != t.owner {
		return fmt.Errorf("kernel: detach %s: called from goroutine %d, attached by goroutine %d: %w", t, id, t.owner, EINVAL)
	}
	if t.detached.Swap(true) {
		return fmt.Errorf("kernel: detach %s: %w", t, ErrDetached)
	}
	if t.stopCtx != nil {
		t.stopCtx()
	}
	if c.preempt != 0 || c.irqsOff {
		Printk(c, printk.LevelErr, "BUG: %s detached in atomic context (preempt_count %08x, irqs_disabled %d)\n", t, c.preempt, b2i(c.irqsOff))
		c.preempt, c.irqsOff = 0, false
		if c.bhHeld {
			c.bhHeld = false
			k.unlockMutex(&c.cpu.softirqMu)
		}
	}
	if hs := k.exitHooks.Load(); hs != nil {
		for _, h := range *hs {
			k.runTaskFn(t, func(*Ctx) int { h(t); return 0 })
		}
	}
	t.state.Store(TaskDead)
	k.removeTask(t)
	close(t.exited)
	k.wakeVar(unsafe.Pointer(t)) // WaitTaskExit
	k.releaseDriver()
	return nil
}

// attachedMaySleep checks an attached task's sleep: from its own goroutine
// and before Detach. Misuse is reported once per task and the sleep is
// refused.
func (k *Kernel) attachedMaySleep(c *Ctx) bool {
	t := c.task
	k.pollParentCtx(t)
	switch {
	case t.detached.Load():
		k.attachedMisuse(c, "used after Detach")
		return false
	case !onOwnerGoroutine(t):
		k.attachedMisuse(c, "used from a goroutine other than the one that attached it")
		return false
	}
	return true
}

// onOwnerGoroutine reports whether the caller runs on the goroutine that
// attached t. Every sleep of an attached task asks, so the answer comes
// from the goroutine's runtime descriptor when it is the one recorded at
// Attach — the same live goroutine — and from the goroutine id in the
// stack header (a traceback, microseconds) otherwise. A goroutine that
// reuses the descriptor of an attaching goroutine that exited without
// Detach passes the check.
func onOwnerGoroutine(t *Task) bool {
	if g := getg(); g != 0 && g == t.ownerG {
		return true
	}
	return goid() == t.owner
}

// pollParentCtx sends SIGKILL to an attached task whose parent context is
// done (in real time context.AfterFunc does it at once).
func (k *Kernel) pollParentCtx(t *Task) {
	if p := t.parentCtx; p != nil && k.virtual && t.sigPending.Load()&sigBit(SIGKILL) == 0 && p.Err() != nil {
		k.SendSignal(t, SIGKILL)
	}
}

func (k *Kernel) attachedMisuse(c *Ctx, what string) {
	if c.task.misused.Swap(true) {
		return
	}
	lines := []string{fmt.Sprintf("BUG: attached task %s/%d %s", c.task.Comm(), c.task.pid, what)}
	lines = append(lines, k.dumpStackLines(c)...)
	k.report(c, "BUG", printk.LevelErr, lines)
}

// valueCtx is an attached task's context: cancelled as a task context is,
// with the values of the context the goroutine attached with.
type valueCtx struct {
	context.Context
	parent context.Context
}

func (v valueCtx) Value(key any) any { return v.parent.Value(key) }
