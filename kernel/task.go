package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// TaskState is a task's state (task_struct::__state): a bit set of the
// TASK_* bits of include/linux/sched.h, or TASK_RUNNING (0).
type TaskState uint32

// Task states (include/linux/sched.h). A task's state is a bit set; the
// composite states are the kernel's.
const (
	TaskRunning         TaskState = 0x0000 // TASK_RUNNING
	TaskInterruptible   TaskState = 0x0001 // TASK_INTERRUPTIBLE
	TaskUninterruptible TaskState = 0x0002 // TASK_UNINTERRUPTIBLE
	TaskStopped         TaskState = 0x0004 // __TASK_STOPPED
	TaskTraced          TaskState = 0x0008 // __TASK_TRACED
	ExitDead            TaskState = 0x0010 // EXIT_DEAD
	ExitZombie          TaskState = 0x0020 // EXIT_ZOMBIE
	TaskParked          TaskState = 0x0040 // TASK_PARKED
	TaskDead            TaskState = 0x0080 // TASK_DEAD
	TaskWakekill        TaskState = 0x0100 // TASK_WAKEKILL
	TaskWaking          TaskState = 0x0200 // TASK_WAKING
	TaskNoload          TaskState = 0x0400 // TASK_NOLOAD
	TaskNew             TaskState = 0x0800 // TASK_NEW
	TaskFreezable       TaskState = 0x2000 // TASK_FREEZABLE (v6.1+)
	TaskFrozen          TaskState = 0x8000 // TASK_FROZEN (v6.1+): in the refrigerator

	TaskKillable = TaskWakekill | TaskUninterruptible // TASK_KILLABLE
	TaskIdle     = TaskUninterruptible | TaskNoload   // TASK_IDLE
	TaskNormal   = TaskInterruptible | TaskUninterruptible
)

// TaskCommLen is TASK_COMM_LEN: a comm holds at most TaskCommLen-1 bytes.
const TaskCommLen = 16

// Letter returns the letter ps shows for the state: R S D T t X Z P I. A
// frozen task shows D, as the kernel reports it (__task_state_index).
func (state TaskState) Letter() byte {
	switch {
	case state == TaskRunning:
		return 'R'
	case state&TaskFrozen != 0:
		return 'D'
	case state&TaskDead != 0 || state&ExitDead != 0:
		return 'X'
	case state&ExitZombie != 0:
		return 'Z'
	case state&TaskParked != 0:
		return 'P'
	case state&TaskNoload != 0 && state&TaskUninterruptible != 0:
		return 'I'
	case state&TaskInterruptible != 0:
		return 'S'
	case state&TaskUninterruptible != 0:
		return 'D'
	case state&TaskStopped != 0:
		return 'T'
	case state&TaskTraced != 0:
		return 't'
	}
	return '?'
}

// String returns the kernel's name of the state, e.g. "TASK_INTERRUPTIBLE",
// or its value in hex for a combination without a name.
func (state TaskState) String() string {
	switch state {
	case TaskRunning:
		return "TASK_RUNNING"
	case TaskInterruptible:
		return "TASK_INTERRUPTIBLE"
	case TaskUninterruptible:
		return "TASK_UNINTERRUPTIBLE"
	case TaskKillable:
		return "TASK_KILLABLE"
	case TaskIdle:
		return "TASK_IDLE"
	case TaskParked:
		return "TASK_PARKED"
	case TaskDead:
		return "TASK_DEAD"
	case TaskFrozen:
		return "TASK_FROZEN"
	case TaskNew | TaskUninterruptible:
		return "TASK_NEW"
	}
	return fmt.Sprintf("0x%04x", uint32(state))
}

// stateWord is the task's state word: an atomic TaskState.
type stateWord struct{ v atomic.Uint32 }

func (w *stateWord) Load() TaskState   { return TaskState(w.v.Load()) }
func (w *stateWord) Store(s TaskState) { w.v.Store(uint32(s)) }
func (w *stateWord) CompareAndSwap(old, new TaskState) bool {
	return w.v.CompareAndSwap(uint32(old), uint32(new))
}

// Signal is a signal number (x86-64 Linux values).
type Signal int

// Signals kdefer knows by name.
const (
	SIGHUP  Signal = 1
	SIGINT  Signal = 2
	SIGQUIT Signal = 3
	SIGKILL Signal = 9
	SIGUSR1 Signal = 10
	SIGUSR2 Signal = 12
	SIGTERM Signal = 15
	SIGCHLD Signal = 17
	SIGCONT Signal = 18
	SIGSTOP Signal = 19
)

// Sentinel causes of a task context's cancellation.
var (
	// ErrSignal is the cause (via *SignalError) when a task got a signal.
	ErrSignal = errors.New("kernel: signal pending")
	// ErrKthreadStop is the cause when kthread_stop() asked a kthread to stop.
	ErrKthreadStop = errors.New("kernel: kthread_stop requested")
	// ErrShutdown is the cause when the kernel is shutting down.
	ErrShutdown = errors.New("kernel: shutting down")
)

// SignalError is the cancellation cause of a task context that received a
// signal. errors.Is(err, ErrSignal) reports true for it.
type SignalError struct{ Sig Signal }

// Error says which signal is pending.
func (e *SignalError) Error() string { return fmt.Sprintf("kernel: signal %d pending", int(e.Sig)) }

// Unwrap returns ErrSignal.
func (e *SignalError) Unwrap() error { return ErrSignal }

type taskContext struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// Task is a kernel task (struct task_struct): a kernel thread, a worker, an
// idle task, or a user task that calls into the kernel. Each running task is
// one goroutine; the kernel tracks its state so that it always knows which
// tasks are runnable.
type Task struct {
	k       *Kernel
	pid     int
	comm    atomic.Pointer[string]
	kthread bool // current->mm == NULL
	idle    bool // swapper/N
	cpu     int
	parent  *Task

	state  stateWord
	baton  chan struct{} // wakeup token (real time) / run token (virtual time)
	parked atomic.Bool   // real time: blocked on baton (see realSched.block)
	// noSpin: the task's current Schedule parks at once (ScheduleNoSpin);
	// read and written by the task's own goroutine only.
	noSpin bool
	ctxp   atomic.Pointer[taskContext]

	sigPending atomic.Uint64 // sigBit(n): signal n pending
	stopReq    atomic.Bool   // KTHREAD_SHOULD_STOP, and TIF_NOTIFY_SIGNAL with it
	// sigMu orders the updates of sigPending/stopReq with the
	// cancellation or replacement of the task's context, so that a
	// signal sent while the task flushes its signals is never half seen.
	sigMu      sync.Mutex
	sigAllowed atomic.Uint64 // kthreads: signals accepted (allow_signal)

	pctx Ctx // process context

	mu       sync.Mutex
	fn       func(c *Ctx) int
	started  bool
	noRun    bool
	exited   chan struct{}
	exitCode int
	private  any
	oops     atomic.Pointer[Oops] // the Oops the task died of

	onRunq bool // virtual scheduler: queued to run

	// Virtual scheduler: a parked busy-wait (Spin) and its end.
	spinParked bool
	spinGen    uint64
	spinUntil  int64
	repolling  bool // ksoftirqd parked in its busy re-polling

	// WaitVarEvent: the variable waited on and the hashed bucket's
	// link (guarded by the bucket's lock); vwSpin marks a busy waiter.
	vwKey  unsafe.Pointer
	vwNext *Task
	vwSpin bool

	// notifier is called when the task blocks and runs again (see
	// SetSchedNotifier); set by the task itself or before it runs.
	notifier SchedNotifier

	// nvcsw and nivcsw count the task's voluntary and involuntary
	// context switches (see ContextSwitches).
	nvcsw, nivcsw atomic.Uint64

	// Attached tasks (Kernel.Attach): the goroutine is the caller's.
	attached  bool
	owner     int64   // goroutine id of the attaching goroutine
	ownerG    uintptr // its runtime descriptor (getg), 0 where unknown
	detached  atomic.Bool
	misused   atomic.Bool     // a misuse was reported (once per task)
	stopCtx   func() bool     // stops the parent context's AfterFunc
	parentCtx context.Context // the context it attached with
	noSleep   atomic.Bool     // never sleeps again (virtual deadlock reported)
}

// PID returns the task's pid (0 for the idle tasks swapper/N).
func (t *Task) PID() int { return t.pid }

// Comm returns the task's name (at most 15 bytes).
func (t *Task) Comm() string { return *t.comm.Load() }

// SetComm is set_task_comm(): it renames the task, truncating to 15 bytes.
func (t *Task) SetComm(name string) {
	if len(name) > TaskCommLen-1 {
		name = name[:TaskCommLen-1]
	}
	t.comm.Store(&name)
}

// IsKthread reports whether the task is a kernel thread (it has no mm, so
// PRINT_CTX and ps show its name in brackets).
func (t *Task) IsKthread() bool { return t.kthread }

// IsIdle reports whether the task is a CPU's idle task swapper/N.
func (t *Task) IsIdle() bool { return t.idle }

// CPU returns the CPU the task runs on (task_cpu()).
func (t *Task) CPU() int { return t.cpu }

// Parent returns the parent task (kthreadd for kernel threads, init for user
// tasks, nil for the idle tasks).
func (t *Task) Parent() *Task { return t.parent }

// State returns the task's current state bits (READ_ONCE(p->__state)).
func (t *Task) State() TaskState { return t.state.Load() }

// Kernel returns the kernel the task belongs to.
func (t *Task) Kernel() *Kernel { return t.k }

// ContextSwitches returns the task's context-switch counts, which
// /proc/PID/status shows as voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches (task_struct::nvcsw and nivcsw).
//
// A voluntary switch is counted each time the task blocks in schedule()
// (any sleep, wait queue, completion, mutex or WaitVarEvent wait; not a
// sleep that a pending signal cut short before it began). An involuntary
// one is counted, in virtual time, each time a yield (cond_resched,
// schedule() in TASK_RUNNING) hands the CPU to another runnable task.
// Difference: kdefer does not preempt tasks, and in real time it cannot
// tell whether a yield let another goroutine run, so there the
// involuntary count stays 0. Busy-waits (udelay, a contended spinlock)
// are not switches, as in the kernel.
func (t *Task) ContextSwitches() (voluntary, involuntary uint64) {
	return t.nvcsw.Load(), t.nivcsw.Load()
}

// Ctx returns the task's process context. Only the task's own goroutine may
// use it.
func (t *Task) Ctx() *Ctx { return &t.pctx }

// Private returns the value set by SetPrivate (the kernel's
// task->worker_private / to_kthread()).
func (t *Task) Private() any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.private
}

// SetPrivate attaches a value for a higher layer (kthread, workqueue).
func (t *Task) SetPrivate(v any) {
	t.mu.Lock()
	t.private = v
	t.mu.Unlock()
}

// HasExited reports whether the task has exited (its function returned,
// or it was detached).
func (t *Task) HasExited() bool {
	select {
	case <-t.exited:
		return true
	default:
		return false
	}
}

// WaitTaskExit waits until t has exited, through the kernel's wait
// primitive: a task sleeps in TASK_UNINTERRUPTIBLE (kthread_stop's
// wait_for_completion(&kthread->exited)), an atomic context busy-waits. It
// reports false if the wait was given up (see WaitVarEvent). Go code that is
// not a kernel context can use the Exited channel instead.
func WaitTaskExit(c *Ctx, t *Task) bool { return WaitVarEvent(c, t, t.HasExited) }

// Exited returns a channel closed when the task has exited.
func (t *Task) Exited() <-chan struct{} { return t.exited }

// ExitCode returns the value the task function returned (valid after
// Exited is closed).
func (t *Task) ExitCode() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exitCode
}

func (t *Task) context() context.Context { return t.ctxp.Load().ctx }

// Cancel cancels the task's context with cause and wakes it.
//
// Cancel(ErrKthreadStop) is kthread_stop's request: it sets
// KTHREAD_SHOULD_STOP (KthreadShouldStop) and TIF_NOTIFY_SIGNAL, so that
// from then on SignalPending is true and interruptible sleeps end with
// -ERESTARTSYS, and it wakes the task from any sleep (wake_up_process,
// TASK_NORMAL). Killable sleeps are not interrupted: the stop is not a
// fatal signal. Other causes wake interruptible and killable sleeps only.
func (t *Task) Cancel(cause error) {
	stop := errors.Is(cause, ErrKthreadStop)
	t.sigMu.Lock()
	if stop {
		t.stopReq.Store(true)
	}
	t.ctxp.Load().cancel(cause)
	t.sigMu.Unlock()
	if stop {
		t.k.WakeUpState(t, TaskNormal)
	} else {
		t.k.WakeUpState(t, TaskInterruptible|TaskWakekill)
	}
}

// markDying is what Shutdown does to every task before waking it, as a
// system going down stops its kernel threads and kills its processes: a
// kthread is asked to stop (KthreadShouldStop, SignalPending), a user task
// gets SIGKILL pending. Loops that test either then end.
func (t *Task) markDying() {
	t.sigMu.Lock()
	if t.kthread {
		t.stopReq.Store(true)
	} else {
		t.sigPending.Or(sigBit(SIGKILL))
	}
	t.sigMu.Unlock()
}

// KthreadShouldStop is kthread_should_stop(): the calling kernel thread was
// asked to stop (Task.Cancel(ErrKthreadStop)). Unlike context.Cause(c) it
// stays true when a signal cancelled the context first and across
// FlushSignals.
func (c *Ctx) KthreadShouldStop() bool {
	t := c.task
	return t != nil && t.kthread && t.stopReq.Load()
}

// String returns "comm/pid".
func (t *Task) String() string { return fmt.Sprintf("%s/%d", t.Comm(), t.pid) }

// SendSignal is send_sig(): it makes sig pending for t and wakes t from an
// interruptible sleep (a killable one too for SIGKILL). Kernel threads
// ignore every signal they have not allowed with AllowSignal, as kthreadd's
// ignore_signals() makes them. The Go face of the signal is the
// cancellation of the task's context with cause *SignalError.
//
// Difference: a user task is modelled as having a handler for every
// signal, so there are no default dispositions: SIGCHLD or SIGCONT are not
// dropped as ignored, and SIGTERM or SIGINT do not become fatal (only
// SIGKILL interrupts killable sleeps).
// init (pid 1) and the idle tasks have no task function to receive a
// signal: it is ignored, as the kernel ignores the signals that init has
// no handler for (SIGNAL_UNKILLABLE: SIGKILL and SIGSTOP from its own
// namespace too).
// It reports whether the signal was delivered.
func (k *Kernel) SendSignal(t *Task, sig Signal) bool {
	if sig <= 0 || sig > nSig || t == k.initTask || t.idle {
		return false
	}
	if t.kthread && t.sigAllowed.Load()&sigBit(sig) == 0 {
		return false
	}
	if t.state.Load()&(TaskDead|ExitDead) != 0 {
		return false
	}
	t.sigMu.Lock()
	// The context's cause first: a task that sees the signal pending
	// (signal_pending, which it reads without sigMu) then also finds
	// which signal it was in context.Cause.
	t.ctxp.Load().cancel(&SignalError{Sig: sig})
	t.sigPending.Or(sigBit(sig))
	t.sigMu.Unlock()
	mask := TaskInterruptible
	if sig == SIGKILL {
		mask |= TaskWakekill
	}
	k.WakeUpState(t, mask)
	return true
}

// AllowSignal is allow_signal(): the calling kernel thread accepts sig.
func AllowSignal(c *Ctx, sig Signal) {
	if sig > 0 && sig <= nSig {
		c.task.sigAllowed.Or(sigBit(sig))
	}
}

// FlushSignals is flush_signals(): it discards the caller's pending signals
// and gives the task a fresh, uncancelled context.
func FlushSignals(c *Ctx) {
	t := c.task
	t.sigMu.Lock()
	defer t.sigMu.Unlock()
	if t.sigPending.Swap(0) == 0 {
		return
	}
	old := t.ctxp.Load()
	if errors.Is(context.Cause(old.ctx), ErrSignal) {
		fresh := t.freshContext()
		if t.stopReq.Load() {
			fresh.cancel(ErrKthreadStop) // flush_signals leaves the stop request
		}
		t.ctxp.Store(fresh)
	}
}

// SignalPending is signal_pending(current): a signal is pending, or
// (TIF_NOTIFY_SIGNAL) kthread_stop asked the kernel thread to stop.
func (c *Ctx) SignalPending() bool { return c.task.sigPending.Load() != 0 || c.task.stopReq.Load() }

// FatalSignalPending is fatal_signal_pending(current): SIGKILL is pending.
func (c *Ctx) FatalSignalPending() bool { return c.task.sigPending.Load()&sigBit(SIGKILL) != 0 }

// nSig is _NSIG: signals are numbered 1 to 64 (valid_signal).
const nSig = 64

// sigBit is sigmask(): signal sig's bit in a 64-bit set.
func sigBit(sig Signal) uint64 { return 1 << uint(sig-1) }

// SignalPendingState is signal_pending_state(state, current): would a
// sleep in state be interrupted by the pending signals?
func (c *Ctx) SignalPendingState(state TaskState) bool {
	if state&(TaskInterruptible|TaskWakekill) == 0 {
		return false
	}
	if !c.SignalPending() {
		return false
	}
	return state&TaskInterruptible != 0 || c.FatalSignalPending()
}

// freshContext returns a new, uncancelled context for t; an attached
// task's keeps the values of the context it attached with.
func (t *Task) freshContext() *taskContext {
	tc := newTaskContext(t.k)
	if t.parentCtx != nil {
		tc.ctx = valueCtx{tc.ctx, t.parentCtx}
	}
	return tc
}

func newTaskContext(k *Kernel) *taskContext {
	ctx, cancel := context.WithCancelCause(k.baseCtx)
	return &taskContext{ctx: ctx, cancel: cancel}
}
