package kthread

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
)

// Func is a kernel thread's function (the kernel's int (*threadfn)(void
// *data)): it runs in the thread's process context until it returns, which
// it should do when ShouldStop reports true; its return value is the
// thread's exit code, which Stop returns. Its data is what the closure
// captures.
type Func func(c *kernel.Ctx) int

// kthread is struct kthread: the per-thread state kernel/kthread.c keeps
// beside the task_struct (to_kthread()). It is the task's Private value.
type kthread struct {
	sys      *system
	fn       Func
	fullName string

	shouldPark atomic.Bool  // KTHREAD_SHOULD_PARK
	cpu        atomic.Int32 // the CPU CreateOnCPU bound it to, -1 otherwise
	started    atomic.Bool  // kthread->started: it has been woken and runs
	exiting    atomic.Bool  // PF_EXITING: its function has returned
	parked     atomic.Int32 // kthread->parked: a completion's done count
	freezable  atomic.Bool  // !PF_NOFREEZE (set_freezable)

	// usage is the task_struct's reference count: 1 for the running
	// thread (dropped when it exits and kthreadd reaps it), plus one per
	// GetTaskStruct and one while Stop waits.
	usage atomic.Int32
}

// system is one kernel's kthread state: its live kernel threads (the
// freezer walks them) and the freezer's pm_nosig_freezing.
type system struct {
	k        *kernel.Kernel
	mu       sync.Mutex
	threads  map[*kernel.Task]*kthread
	freezing atomic.Bool
}

var sysKey kernel.LocalKey

func sysOf(k *kernel.Kernel) *system { return k.Local(&sysKey, newSystem).(*system) }

func newSystem(k *kernel.Kernel) any {
	s := &system{k: k, threads: make(map[*kernel.Task]*kthread)}
	k.OnTaskExit(s.taskExit)
	return s
}

// taskExit runs on every exiting task's goroutine: a kernel thread of this
// package leaves the freezer's list and, reaped by kthreadd, drops its own
// reference to its task_struct.
func (s *system) taskExit(t *kernel.Task) {
	kt := lookup(t)
	if kt == nil || kt.sys != s {
		return
	}
	s.mu.Lock()
	delete(s.threads, t)
	s.mu.Unlock()
	kt.usage.Add(-1)
}

// lookup is __to_kthread(): t's kthread, or nil for a task this package did
// not create.
func lookup(t *kernel.Task) *kthread {
	kt, _ := t.Private().(*kthread)
	return kt
}

// toKthread is to_kthread() with its WARN_ON(!(k->flags & PF_KTHREAD)): a
// task that is not a kernel thread of this package is warned about.
func toKthread(c *kernel.Ctx, t *kernel.Task, fn string) *kthread {
	if t == nil {
		kernel.Warn(c, "%s(): NULL task\n", fn)
		return nil
	}
	kt := lookup(t)
	if kt == nil {
		kernel.Warn(c, "%s(): %s is not a kernel thread created by kthread_create\n", fn, t)
	}
	return kt
}

// tryGet is refcount_inc_not_zero on the task_struct's usage.
func (kt *kthread) tryGet() bool {
	for {
		n := kt.usage.Load()
		if n <= 0 {
			return false
		}
		if kt.usage.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// main is kthread(), the function every kernel thread starts in: unless it
// was asked to stop before it first ran (then it exits with -EINTR without
// calling its function), it parks if asked to, then runs its function.
func (kt *kthread) main(c *kernel.Ctx) int {
	kt.started.Store(true)
	defer func() {
		// Also on a panic or runtime.Goexit: a Park waiting for the
		// thread learns that it will never park.
		kt.exiting.Store(true)
		kernel.WakeUpVar(c, kt)
	}()
	if c.KthreadShouldStop() {
		return -int(kernel.EINTR)
	}
	parkme(c, kt)
	return kt.fn(c)
}

// Create is kthread_create(threadfn, data, namefmt, …): it creates a kernel
// thread — a child of kthreadd named fmt.Sprintf(namefmt, args…), truncated
// to 15 bytes — that sleeps in TASK_UNINTERRUPTIBLE until it is woken
// (Kernel.WakeUpProcess) and then runs fn. Use Stop, not a wakeup, to get
// rid of a thread that should never run: it then exits with -EINTR without
// calling fn.
//
// It fails with an error wrapping kernel.EINTR when the caller has a fatal
// signal pending (the kernel's killable wait for kthreadd), kernel.EINVAL
// for a nil fn, and kernel.ErrShutdown once the kernel shuts down. Like the
// kernel's, it may sleep: called in atomic context it prints the
// might_sleep report (and still creates the thread, which needs no sleep in
// kdefer).
func Create(c *kernel.Ctx, fn Func, namefmt string, args ...any) (*kernel.Task, error) {
	t, _, err := create(c, fn, fmt.Sprintf(namefmt, args...))
	return t, err
}

func create(c *kernel.Ctx, fn Func, name string) (*kernel.Task, *kthread, error) {
	if fn == nil {
		return nil, nil, fmt.Errorf("kthread: create %q: nil thread function: %w", name, kernel.EINVAL)
	}
	kernel.MightSleep(c)
	if c.InTask() && c.FatalSignalPending() {
		return nil, nil, fmt.Errorf("kthread: create %q: fatal signal pending: %w", name, kernel.EINTR)
	}
	k := c.Kernel()
	s := sysOf(k)
	kt := &kthread{sys: s, fn: fn, fullName: name}
	kt.cpu.Store(-1)
	kt.usage.Store(1)
	t, err := k.CreateTask(kernel.TaskOpts{Comm: name, Kthread: true, CPU: -1}, kt.main)
	if err != nil {
		return nil, nil, fmt.Errorf("kthread: create %q: %w", name, err)
	}
	// Nothing but the caller (or Shutdown, which then never runs it) can
	// wake the thread before this returns.
	t.SetPrivate(kt)
	s.mu.Lock()
	s.threads[t] = kt
	s.mu.Unlock()
	return t, kt, nil
}

// Run is kthread_run(threadfn, data, namefmt, …): Create, then
// wake_up_process, so the thread starts running at once.
func Run(c *kernel.Ctx, fn Func, namefmt string, args ...any) (*kernel.Task, error) {
	t, err := Create(c, fn, namefmt, args...)
	if err != nil {
		return nil, err
	}
	c.Kernel().WakeUpProcess(t)
	return t, nil
}

// CreateOnCPU is kthread_create_on_cpu(threadfn, data, cpu, namefmt): Create
// with the name fmt.Sprintf(namefmt, cpu) — namefmt holds one verb for the
// CPU number, "name/%d" (the kernel's "name/%u") — and the thread bound to
// cpu (Bind). An invalid cpu is warned about and the thread is left on the
// CPU Create picked.
func CreateOnCPU(c *kernel.Ctx, fn Func, cpu int, namefmt string) (*kernel.Task, error) {
	t, kt, err := create(c, fn, fmt.Sprintf(namefmt, cpu))
	if err != nil {
		return nil, err
	}
	Bind(c, t, cpu)
	kt.cpu.Store(int32(cpu))
	return t, nil
}

// Bind is kthread_bind(p, cpu): it binds a thread that has not been woken
// yet to cpu. On a thread that was already woken — it is no longer
// sleeping in TASK_UNINTERRUPTIBLE, so the kernel's wait_task_inactive
// fails — it prints the kernel's WARN_ON(1) report and changes nothing; an
// invalid cpu is warned about too.
func Bind(c *kernel.Ctx, p *kernel.Task, cpu int) {
	kt := toKthread(c, p, "kthread_bind")
	if kt == nil {
		return
	}
	k := c.Kernel()
	if cpu < 0 || cpu >= k.NumCPUs() {
		kernel.Warn(c, "kthread_bind(): CPU %d is not possible (nr_cpu_ids %d)\n", cpu, k.NumCPUs())
		return
	}
	if kt.started.Load() || p.State() != kernel.TaskUninterruptible || !k.BindTask(p, cpu) {
		kernel.WarnOn(c, true)
	}
}

// FullName returns t's whole name as formatted at creation; t.Comm() is
// that name truncated to 15 bytes (the kernel's get_kthread_comm and
// kthread->full_name, v6.x). For a task this package did not create it
// returns t.Comm().
func FullName(t *kernel.Task) string {
	if kt := lookup(t); kt != nil {
		return kt.fullName
	}
	return t.Comm()
}

// GetTaskStruct is get_task_struct(t): it takes a reference to t's
// task_struct, so that Stop (StopPut) may be called on a thread that may
// exit on its own. Release it with PutTaskStruct or StopPut. For a task
// this package did not create it does nothing.
func GetTaskStruct(t *kernel.Task) {
	if kt := lookup(t); kt != nil {
		kt.usage.Add(1)
	}
}

// PutTaskStruct is put_task_struct(t): it drops a reference taken with
// GetTaskStruct. Dropping more references than were taken prints the
// kernel's refcount report ("refcount_t: underflow; use-after-free.").
func PutTaskStruct(c *kernel.Ctx, t *kernel.Task) {
	kt := lookup(t)
	if kt == nil {
		return
	}
	if kt.usage.Add(-1) < 0 {
		kt.usage.Add(1)
		kernel.WarnOnce(c, true, "refcount_t: underflow; use-after-free.\n")
	}
}

// Stop is kthread_stop(k): it sets KTHREAD_SHOULD_STOP (ShouldStop) and
// TIF_NOTIFY_SIGNAL (c.SignalPending() in the thread), unparks and wakes
// the thread, and waits until it has exited, sleeping in
// TASK_UNINTERRUPTIBLE. It returns the thread function's return value, or
// -EINTR if the thread was never woken (it then exits without running its
// function). The thread must test ShouldStop: Stop waits as long as it
// runs. A thread in the refrigerator is not woken (as in the kernel: the
// stop completes once it is thawed).
//
// Stop on a thread that has already returned on its own is safe while the
// caller holds a reference (GetTaskStruct; then use StopPut): it returns
// the function's value at once. Without one the thread was reaped and the
// kernel would touch freed memory: kdefer prints the kernel's refcount
// report ("refcount_t: addition on 0; use-after-free.") and returns the
// exit code anyway. Stop of the calling thread itself, which would wait
// forever, is warned about and returns -EDEADLK. Called in atomic context
// it prints the might_sleep report and busy-waits.
func Stop(c *kernel.Ctx, t *kernel.Task) int {
	kt := toKthread(c, t, "kthread_stop")
	if kt == nil {
		return -int(kernel.EINVAL)
	}
	traceStop(c, t)
	if !kt.tryGet() {
		kernel.WarnOnce(c, true, "refcount_t: addition on 0; use-after-free.\n")
		ret := t.ExitCode()
		traceStopRet(c, ret)
		return ret
	}
	defer kt.usage.Add(-1) // put_task_struct
	if t == c.Current() {
		kernel.Warn(c, "kthread_stop(): %s is stopping itself and would wait for its own exit forever\n", t)
		traceStopRet(c, -int(kernel.EDEADLK))
		return -int(kernel.EDEADLK)
	}
	kernel.MightSleep(c)
	t.Cancel(kernel.ErrKthreadStop) // SHOULD_STOP, TIF_NOTIFY_SIGNAL, wake_up_process
	unpark(c, t, kt)
	ret := -int(kernel.EINTR)
	if kernel.WaitTaskExit(c, t) { // wait_for_completion(&kthread->exited)
		ret = t.ExitCode()
	}
	traceStopRet(c, ret)
	return ret
}

// StopPut is kthread_stop_put(k): Stop, then PutTaskStruct — for a caller
// that took a reference with GetTaskStruct.
func StopPut(c *kernel.Ctx, t *kernel.Task) int {
	ret := Stop(c, t)
	PutTaskStruct(c, t)
	return ret
}

// ShouldStop is kthread_should_stop(): Stop was called on the calling
// thread. The thread should then return; its return value goes to Stop.
func ShouldStop(c *kernel.Ctx) bool { return c.KthreadShouldStop() }

// ShouldPark is kthread_should_park(): Park was called on the calling
// thread, which should then call Parkme (after any cleanup). It is false
// for a task this package did not create.
func ShouldPark(c *kernel.Ctx) bool {
	kt := lookup(c.Current())
	return kt != nil && kt.shouldPark.Load()
}

// ShouldStopOrPark is kthread_should_stop_or_park() (v6.6+).
func ShouldStopOrPark(c *kernel.Ctx) bool { return ShouldStop(c) || ShouldPark(c) }

// Park is kthread_park(k): it sets KTHREAD_SHOULD_PARK, wakes the thread,
// and waits (TASK_UNINTERRUPTIBLE) until the thread has parked itself in
// Parkme, in TASK_PARKED (ps shows P); Unpark lets it go on. Called before
// the thread was ever woken, it wakes it and the thread parks before
// running its function. Called by the thread on itself it only sets the
// flag. It returns 0 when the thread is parked (or, for itself, asked to
// park); -ENOSYS with a WARN if the thread has exited; -EBUSY with a
// WARN_ON_ONCE if it is already parked or asked to park. If the thread
// exits instead of parking — the kernel would wait forever — Park returns
// -ENOSYS.
func Park(c *kernel.Ctx, t *kernel.Task) int {
	kt := toKthread(c, t, "kthread_park")
	if kt == nil {
		return -int(kernel.EINVAL)
	}
	if kernel.WarnOn(c, kt.exiting.Load()) {
		return -int(kernel.ENOSYS)
	}
	if kernel.WarnOnce(c, kt.shouldPark.Load(), "") {
		return -int(kernel.EBUSY)
	}
	kt.shouldPark.Store(true)
	if t == c.Current() {
		return 0
	}
	kernel.MightSleep(c)
	c.Kernel().WakeUpProcess(t)
	// wait_for_completion(&kthread->parked), also ended by the thread's
	// exit.
	parked := false
	kernel.WaitVarEvent(c, kt, func() bool {
		for {
			n := kt.parked.Load()
			if n <= 0 {
				return kt.exiting.Load()
			}
			if kt.parked.CompareAndSwap(n, n-1) {
				parked = true
				return true
			}
		}
	})
	if !parked {
		return -int(kernel.ENOSYS)
	}
	// wait_task_inactive(k, TASK_PARKED): the thread set TASK_PARKED
	// before it completed, and nothing but Unpark or Stop changes that.
	kernel.WarnOnce(c, t.State() != kernel.TaskParked && kt.shouldPark.Load(), "")
	return 0
}

// Unpark is kthread_unpark(k): it clears KTHREAD_SHOULD_PARK and wakes the
// thread from TASK_PARKED; it returns from Parkme. It does nothing if the
// thread was not asked to park.
func Unpark(c *kernel.Ctx, t *kernel.Task) {
	if kt := toKthread(c, t, "kthread_unpark"); kt != nil {
		unpark(c, t, kt)
	}
}

func unpark(c *kernel.Ctx, t *kernel.Task, kt *kthread) {
	if !kt.shouldPark.Load() {
		return
	}
	kt.shouldPark.Store(false)
	// __kthread_parkme either sees the flag clear or gets the wakeup.
	c.Kernel().WakeUpState(t, kernel.TaskParked)
}

// Parkme is kthread_parkme(): while the calling thread is asked to park it
// sleeps in TASK_PARKED — which no wakeup but Unpark (or Stop) ends, not
// even a signal — after telling Park it is parked. It returns at once when
// the thread is not asked to park, or is not a kernel thread of this
// package.
func Parkme(c *kernel.Ctx) {
	if kt := lookup(c.Current()); kt != nil {
		parkme(c, kt)
	}
}

// parkme is __kthread_parkme().
func parkme(c *kernel.Ctx, kt *kthread) {
	for {
		kernel.SetCurrentState(c, kernel.TaskParked)
		if !kt.shouldPark.Load() || c.Dying() {
			break
		}
		kt.parked.Add(1) // complete(&self->parked)
		kernel.WakeUpVar(c, kt)
		kernel.Schedule(c)
	}
	kernel.SetCurrentState(c, kernel.TaskRunning)
}
