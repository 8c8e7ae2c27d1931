package kernel

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/kdefer/kdefer/printk"
)

// scheduler is the shell that turns the kernel's task states into goroutine
// blocking and waking. The real-time shell lets every task's goroutine run
// in parallel; the virtual-time shell hands one run token between them so
// that exactly one runs at a time, in a deterministic order.
type scheduler interface {
	// block returns once t's state is TASK_RUNNING. t is the calling task.
	block(t *Task)
	// firstRun is the first thing a new task's goroutine does: it returns
	// when the task has been woken for the first time.
	firstRun(t *Task)
	// wake makes t runnable; its state was just set to TASK_RUNNING.
	wake(t *Task)
	// yield lets other runnable tasks run (cond_resched). t is the caller.
	yield(t *Task)
	// exit is the last thing an exiting task's goroutine does.
	exit(t *Task)
}

// realSched: every task is a free-running goroutine.
type realSched struct{}

// A blocking task of a real-time kernel waits for its wakeup in steps,
// the way an adaptive mutex does: it yields its processor once
// (runtime.Gosched: its waker may be a goroutine queued behind it on the
// same processor, as happens when the machine has fewer free CPUs than
// GOMAXPROCS — polling first would make every such switch cost the whole
// poll), then polls its state for up to blockPoll (a wakeup from another
// processor then costs the waker one atomic store and the sleeper tens of
// nanoseconds), then yields between polls up to blockSpin, and only then
// parks its goroutine on its wakeup channel. Waking a parked goroutine costs tens of
// microseconds when the Go scheduler has to wake an idle thread, which
// would dominate short sleeps such as usleep_range(10, 20) and the
// hand-off of work to an idle kworker.
const (
	blockPoll = time.Microsecond
	blockSpin = 50 * time.Microsecond
)

func (realSched) block(t *Task) {
	if t.state.Load() == TaskRunning {
		return
	}
	if !t.noSpin && spinForWakeup(t) {
		return
	}
	// Park. The waker sets the state and then looks at parked; this task
	// sets parked and then looks at the state: one of them sees the other.
	t.parked.Store(true)
	for t.state.Load() != TaskRunning {
		<-t.baton
	}
	t.parked.Store(false)
}

// spinForWakeup is block's wait before it parks (see blockPoll): it
// reports true when the task is running again, false when blockSpin has
// passed.
func spinForWakeup(t *Task) bool {
	runtime.Gosched() // let a waker queued on this processor run first
	start := nanotime()
	for i := 1; ; i++ {
		if t.state.Load() == TaskRunning {
			return true
		}
		if i&15 == 0 {
			d := time.Duration(nanotime() - start)
			if d > blockSpin {
				break
			}
			if d > blockPoll {
				runtime.Gosched()
				continue
			}
		}
		cpuRelax()
	}
	return false
}

func (s realSched) firstRun(t *Task) { s.block(t) }

// wake hands the wakeup token to t if it is parked; a task still polling
// or spinning sees its state change by itself. A token left over (the
// task saw its state first) is consumed by its next park, which tests the
// state again.
func (realSched) wake(t *Task) {
	if !t.parked.Load() {
		return
	}
	select {
	case t.baton <- struct{}{}:
	default:
	}
}

func (realSched) yield(*Task) { runtime.Gosched() }
func (realSched) exit(*Task)  {}

// SetCurrentState is set_current_state(state): the caller's task announces
// the state it will sleep in at its next Schedule. Call it before testing
// the wakeup condition, as in the kernel, so that a wakeup that arrives in
// between sets the task back to TASK_RUNNING and Schedule returns at once.
func SetCurrentState(c *Ctx, state TaskState) {
	if !c.InTask() {
		c.k.warn(c, 1, "set_current_state() called from %s context\n", contextName(c))
		return
	}
	c.task.state.Store(state)
}

// ScheduleNoSpin is Schedule for a sleeper whose waker most likely runs on
// the sleeper's own CPU and then yields, such as a kworker waiting for
// work: in real time the task does not poll for its wakeup first (see
// Schedule) but parks at once, so that the wakeup makes its goroutine
// runnable on the waker's processor, as the kernel wakes a task on its
// CPU, and no cache line crosses between cores. In virtual time it is
// Schedule. Everything else — the states, the signal check, the scheduler
// notifier, the sched_switch tracepoint, the atomic-context report — is
// Schedule's.
//
// kdefer's own: the kernel's schedule() never spins for a wakeup, so it
// has no counterpart; kdefer's real-time Schedule spins because waking a
// parked goroutine from another processor can cost microseconds.
func ScheduleNoSpin(c *Ctx) {
	t := c.task
	if t == nil {
		Schedule(c)
		return
	}
	t.noSpin = true
	Schedule(c)
	t.noSpin = false
}

// Schedule is schedule(): if the caller's state is not TASK_RUNNING the task
// sleeps until a wakeup sets it running again; otherwise it only yields.
// Called in atomic context it prints the kernel's "BUG: scheduling while
// atomic" report and returns without sleeping. While the kernel shuts down
// it never sleeps.
func Schedule(c *Ctx) {
	k := c.k
	t := c.task
	if c.preempt != 0 || !c.InTask() || t.idle {
		k.scheduleBug(c)
		t.state.Store(TaskRunning)
		return
	}
	if t.attached && !k.attachedMaySleep(c) {
		t.state.Store(TaskRunning)
		return
	}
	if k.dying.Load() || t.noSleep.Load() {
		t.state.Store(TaskRunning)
		return
	}
	state := t.state.Load()
	if state == TaskRunning {
		k.sched.yield(t)
		return
	}
	k.blockTask(c, state)
}

// blockTask is the part of schedule() that takes a task that is not
// TASK_RUNNING off the CPU: the scheduler notifier's sleeping call
// (sched_submit_work), then — unless a signal its state allows is pending
// (__schedule's signal_pending_state) — the sleep until a wakeup, then the
// notifier's running call (sched_update_worker).
func (k *Kernel) blockTask(c *Ctx, state TaskState) {
	t := c.task
	n := t.notifier
	if n != nil {
		n.Sleeping(t)
	}
	if c.SignalPendingState(state) {
		t.state.Store(TaskRunning)
	} else {
		t.nvcsw.Add(1)
		traceSwitchOut(c, state)
		k.sched.block(t)
		traceSwitchIn(c)
	}
	if n != nil {
		n.Running(t)
	}
}

// SchedNotifier is told when a task blocks and when it runs again: the
// hook by which concurrency-managed workqueues keep one worker running per
// pool (the kernel calls wq_worker_sleeping from schedule() for a task
// flagged PF_WQ_WORKER, and wq_worker_running when it returns).
//
// Sleeping is called on the task's own goroutine when it enters Schedule in
// a state other than TASK_RUNNING — in any kernel primitive: sleeps, wait
// queues, completions, mutexes, WaitVarEvent — just before it blocks (even
// if a pending signal then keeps it runnable, as in the kernel). Running is
// called on the same goroutine once it runs again. Neither is called for a
// busy-wait or a yield (cond_resched), which keep the task running. Both run
// in the task's context with its state already set: they must not sleep,
// but may wake other tasks.
type SchedNotifier interface {
	Sleeping(t *Task)
	Running(t *Task)
}

// SetSchedNotifier flags t for the scheduler notifier n (nil removes it).
// Call it from t itself or before t first runs. Tasks without a notifier
// pay nothing for the hook.
func (t *Task) SetSchedNotifier(n SchedNotifier) { t.notifier = n }

// CondResched is cond_resched(): a voluntary preemption point. Like the
// kernel's macro it starts with __might_resched, so calling it in atomic
// context prints the might_sleep report.
func CondResched(c *Ctx) {
	if !MightSleep(c) || !c.InTask() {
		return
	}
	c.k.sched.yield(c.task)
}

// WakeUpProcess is wake_up_process(p): it wakes p from any sleep
// (TASK_NORMAL states) and reports 1 if it changed p's state, 0 if p was
// already running.
func (k *Kernel) WakeUpProcess(p *Task) int { return k.WakeUpState(p, TaskNormal) }

// WakeUpState is wake_up_state(p, state) (try_to_wake_up): p is woken only
// if its state has one of the bits in state. It returns 1 if p was woken.
func (k *Kernel) WakeUpState(p *Task, state TaskState) int {
	for {
		s := p.state.Load()
		if s&state == 0 || s&(TaskDead|ExitDead) != 0 {
			return 0
		}
		if p.state.CompareAndSwap(s, TaskRunning) {
			k.traceWakeup(p)
			k.sched.wake(p)
			return 1
		}
	}
}

func contextName(c *Ctx) string {
	switch {
	case c.InHardirq():
		return "hardirq"
	case c.InServingSoftirq():
		return "softirq"
	}
	return "task"
}

// TaskOpts describes a task to create.
type TaskOpts struct {
	// Comm is the task name, truncated to 15 bytes.
	Comm string
	// Kthread makes a kernel thread (no mm: shown in brackets, ignores
	// signals unless allowed, child of kthreadd). Otherwise a user task,
	// child of init.
	Kthread bool
	// CPU is the CPU to bind to; -1 picks one round-robin.
	CPU int
}

// CreateTask creates a task whose goroutine runs fn in process context once
// the task is first woken (WakeUpProcess). Until then it sleeps in
// TASK_UNINTERRUPTIBLE, like a new kthread. fn's return value is the task's
// exit code. It fails with ErrShutdown once the kernel is shutting down.
func (k *Kernel) CreateTask(opts TaskOpts, fn func(c *Ctx) int) (*Task, error) {
	if fn == nil {
		return nil, fmt.Errorf("kernel: CreateTask %q: nil function: %w", opts.Comm, EINVAL)
	}
	if k.dying.Load() {
		return nil, ErrShutdown
	}
	cpu := opts.CPU
	if cpu < 0 || cpu >= len(k.cpus) {
		cpu = int(k.rr.Add(1)-1) % len(k.cpus)
	}
	parent := k.initTask
	if opts.Kthread {
		parent = k.kthreadd
	}
	t := k.newTask(opts.Comm, opts.Kthread, cpu, parent, k.allocPID())
	t.state.Store(TaskUninterruptible)
	t.mu.Lock() // Shutdown reads fn under t.mu to tell tasks with a goroutine
	t.fn = fn
	t.mu.Unlock()
	k.startTask(t)
	if k.dying.Load() {
		// Shutdown began after the check above and may have passed this
		// task over while fn was unset.
		k.wakeForShutdown(t)
	}
	return t, nil
}

// Spawn creates a user task named comm and starts it at once: fn runs in
// process context as a userspace program calling into the kernel would.
// In virtual time it runs when the driver next runs the kernel.
func (k *Kernel) Spawn(comm string, fn func(c *Ctx) int) (*Task, error) {
	t, err := k.CreateTask(TaskOpts{Comm: comm, CPU: -1}, fn)
	if err != nil {
		return nil, err
	}
	k.WakeUpProcess(t)
	return t, nil
}

// BindTask is kthread_bind(): it moves a task that has not run yet to cpu.
// It reports false (with a warning) if the task has already started.
func (k *Kernel) BindTask(t *Task, cpu int) bool {
	if cpu < 0 || cpu >= len(k.cpus) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return false
	}
	t.cpu = cpu
	t.pctx.cpu = k.cpus[cpu]
	return true
}

func (k *Kernel) startTask(t *Task) {
	k.wg.Add(1)
	go k.taskMain(t)
}

func (k *Kernel) taskMain(t *Task) {
	defer k.wg.Done()
	k.sched.firstRun(t)
	traceSwitchIn(&t.pctx)
	t.mu.Lock()
	t.started = true
	fn, noRun := t.fn, t.noRun
	t.mu.Unlock()
	code := -int(EINTR)
	normal := false
	defer func() {
		// Also when fn ended the goroutine with runtime.Goexit (what
		// t.Fatal does in a test): the task still exits properly and
		// hands the run token on.
		if !normal {
			Printk(&t.pctx, printk.LevelErr, "%s[%d]: task function exited its goroutine (runtime.Goexit)\n", t.Comm(), t.pid)
			code = -int(EFAULT)
		}
		t.mu.Lock()
		t.exitCode = code
		t.mu.Unlock()
		if hs := k.exitHooks.Load(); hs != nil {
			for _, h := range *hs {
				k.runTaskFn(t, func(*Ctx) int { h(t); return 0 })
			}
		}
		t.state.Store(TaskDead)
		traceSwitchOut(&t.pctx, exitState(t))
		k.removeTask(t)
		close(t.exited)
		k.wakeVar(unsafe.Pointer(t)) // WaitTaskExit
		k.sched.exit(t)
	}()
	if !noRun {
		code = k.runTaskFn(t, fn)
	}
	normal = true
}

// runTaskFn runs a task function; a panic in it is an Oops: reported in the
// log with its stack (see Oops), kept for Task.Oops and RunTask, and the
// task dies with -EFAULT instead of taking the process down.
func (k *Kernel) runTaskFn(t *Task, fn func(c *Ctx) int) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if w, ok := r.(*Warning); ok && k.cfg.PanicOnWarn {
				k.keepPanic(w)
			}
			c := &t.pctx
			c.preempt = 0
			c.irqsOff = false
			if c.bhHeld {
				c.bhHeld = false
				k.unlockMutex(&c.cpu.softirqMu)
			}
			o := k.oops(c, r, fmt.Sprintf("task %s panicked: %v", t, r))
			t.oops.CompareAndSwap(nil, o)
			code = -int(EFAULT)
			if k.cfg.PanicOnOops {
				if !k.virtual {
					panic(o)
				}
				k.keepPanic(o)
			}
		}
	}()
	return fn(&t.pctx)
}
