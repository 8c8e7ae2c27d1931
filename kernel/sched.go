package kernel

import (
	"fmt"
	"github.com/kdefer/kdefer/printk"
	"runtime"
	"time"
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

// blockSpin is how long a task spins before parking its goroutine. Waking
// a parked goroutine costs tens of microseconds when the Go scheduler has
// to wake an idle thread, which would dominate short sleeps such as
// usleep_range(10, 20); a short adaptive spin (as the kernel's mutexes do)
// hides it.
const blockSpin = 50 * time.Microsecond

func (realSched) block(t *Task) {
	if t.state.Load() == TaskRunning {
		return
	}
	start := time.Now()
	for i := 0; ; i++ {
		if t.state.Load() == TaskRunning {
			return
		}
		if i&15 == 15 && time.Since(start) > blockSpin {
			break
		}
		runtime.Gosched()
	}
	for t.state.Load() != TaskRunning {
		<-t.baton
	}
}

func (s realSched) firstRun(t *Task) { s.block(t) }

func (realSched) wake(t *Task) {
	select {
	case t.baton <- struct{}{}:
	default:
	}
}

func (realSched) yield(*Task) { runtime.Gosched() }
func (realSched) exit(*Task)  {}

// virtSched is the virtual-time shell's scheduler. A single run token
// passes between the task goroutines and the driver (the goroutine inside
// Kernel.Run, which also advances virtual time when no task can run). Only
// the token holder touches the scheduler's fields, and the channel hand-offs
// order those accesses. Runnable tasks run in FIFO order of their wakeups,
// so a run is reproducible.
type virtSched struct {
	runq    []*Task
	current *Task         // token holder; nil when the driver holds it
	driver  chan struct{} // the driver's token channel
}

func newVirtSched() *virtSched {
	return &virtSched{driver: make(chan struct{}, 1)}
}

func (v *virtSched) pop() *Task {
	if len(v.runq) == 0 {
		return nil
	}
	t := v.runq[0]
	v.runq[0] = nil
	v.runq = v.runq[1:]
	t.onRunq = false
	return t
}

// switchTo hands the token to n (the driver when n is nil).
func (v *virtSched) switchTo(n *Task) {
	v.current = n
	if n == nil {
		v.driver <- struct{}{}
	} else {
		n.baton <- struct{}{}
	}
}

func (v *virtSched) block(t *Task) {
	for t.state.Load() != TaskRunning {
		v.switchTo(v.pop())
		<-t.baton
	}
}

func (v *virtSched) firstRun(t *Task) {
	<-t.baton
	v.block(t)
}

func (v *virtSched) wake(t *Task) {
	if t == v.current || t.onRunq {
		return
	}
	t.onRunq = true
	v.runq = append(v.runq, t)
}

func (v *virtSched) yield(t *Task) {
	if len(v.runq) == 0 {
		return
	}
	t.onRunq = true
	v.runq = append(v.runq, t)
	v.switchTo(v.pop())
	<-t.baton
}

func (v *virtSched) exit(*Task) { v.switchTo(v.pop()) }

// runRunnable is called by the driver while it holds the token: it lets
// every runnable task run until all of them are blocked again.
func (v *virtSched) runRunnable() {
	if len(v.runq) == 0 {
		return
	}
	v.switchTo(v.pop())
	<-v.driver
}

// SetCurrentState is set_current_state(state): the caller's task announces
// the state it will sleep in at its next Schedule. Call it before testing
// the wakeup condition, as in the kernel, so that a wakeup that arrives in
// between sets the task back to TASK_RUNNING and Schedule returns at once.
func SetCurrentState(c *Ctx, state uint32) {
	if !c.InTask() {
		c.k.warn(c, 1, "set_current_state() called from %s context\n", contextName(c))
		return
	}
	c.task.state.Store(state)
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
	if k.dying.Load() {
		t.state.Store(TaskRunning)
		return
	}
	state := t.state.Load()
	if state == TaskRunning {
		k.sched.yield(t)
		return
	}
	// __schedule(): a task about to sleep interruptibly (or killably) with
	// a signal pending that its state allows stays runnable.
	if SignalPendingState(c, state) {
		t.state.Store(TaskRunning)
		return
	}
	k.sched.block(t)
}

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
func (k *Kernel) WakeUpState(p *Task, state uint32) int {
	for {
		s := p.state.Load()
		if s&state == 0 || s&(TaskDead|ExitDead) != 0 {
			return 0
		}
		if p.state.CompareAndSwap(s, TaskRunning) {
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
			k.Printk(&t.pctx, printk.LevelErr, "%s[%d]: task function exited its goroutine (runtime.Goexit)\n", t.Comm(), t.pid)
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
		k.removeTask(t)
		close(t.exited)
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
				c.cpu.softirqMu.Unlock()
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
