package kernel

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/trace"
)

// Version is kdefer's version, printed in the boot banner.
const Version = "0.1.0"

// NRCPUs is the most CPUs a kernel may boot with (NR_CPUS).
const NRCPUs = 64

// NoEvent is the next-event time of a CPU with nothing to do.
const NoEvent = int64(math.MaxInt64)

// Config describes the kernel to boot. The zero value boots a real-time
// kernel with one CPU per host core (at most NRCPUs) at HZ=250.
type Config struct {
	// CPUs is the number of logical CPUs (0: runtime.NumCPU()).
	CPUs int
	// HZ is the tick rate: 100, 250 (default), 300 or 1000.
	HZ jiffies.HZ
	// Virtual selects virtual time: time moves only when every task is
	// blocked, jumping to the next event, and exactly one task runs at a
	// time in a deterministic order. Runs are reproducible byte for byte.
	// The kernel then advances only inside Run; see Run.
	Virtual bool
	// Seed seeds the kernel's pseudo-random choices (virtual time).
	Seed int64
	// Log, when non-nil, receives every log record as it is committed
	// (dmesg -w). It is called synchronously, in order.
	Log func(printk.Record)
	// LogWriter, when non-nil, receives every committed record formatted
	// as dmesg prints it ("[    0.420000] text\n").
	LogWriter io.Writer
	// LogCapacity is the ring buffer's capacity in records (0: 8192;
	// negative: Boot fails with EINVAL).
	LogCapacity int
	// PanicOnWarn makes every WARN and BUG report panic (with a *Warning)
	// after it is logged, as the panic_on_warn sysctl does. Meant for tests.
	PanicOnWarn bool
	// OnOops, when non-nil, is called with every Oops (a panic that
	// escaped a task function or a handler) after it is logged, on the
	// goroutine that panicked, with the kernel in the state the Oops left
	// it in. It must not panic and should not block.
	OnOops func(*Oops)
	// PanicOnOops makes every Oops panic (with the *Oops) after it is
	// reported, as the panic_on_oops sysctl does. Meant for tests: in
	// virtual time Run or RunTask panics on the driving goroutine; in real
	// time the goroutine that oopsed panics, which ends the process.
	PanicOnOops bool
	// RealtimeBase is CLOCK_REALTIME at boot. Zero means the host's wall
	// clock in real time and 2000-01-01T00:00:00Z in virtual time.
	RealtimeBase time.Time
	// LPJ presets loops_per_jiffy (the lpj= boot parameter); 0 calibrates.
	LPJ uint64
	// Quiet suppresses the boot banner.
	Quiet bool
	// TraceBufferRecords is each CPU's trace ring capacity in records,
	// rounded up to a power of two (0: trace.DefaultBufferRecords). The
	// rings are allocated when the first event is enabled.
	TraceBufferRecords int
	// TraceEvents enables events from boot on, as the kernel's
	// trace_event= boot parameter does: comma-separated patterns such as
	// "timer,sched:sched_wakeup" (see trace.Match). Empty: every event is
	// off; enable them later with Tracer().Enable.
	TraceEvents string
}

// Kernel is a booted userspace kernel: its CPUs, tasks, clock, softirqs,
// interrupts and log. Several kernels in one process are independent.
type Kernel struct {
	cfg       Config
	hz        jiffies.HZ
	tickNs    int64
	initialJ  uint64
	virtual   bool
	vnow      atomic.Int64  // virtual clock, ns since boot
	vjiffies  atomic.Uint64 // jiffies at vnow (virtual time)
	tickRecip uint64        // floor(2^64 / tickNs), for a division-free jiffies
	clock     realClock     // the real-time clock source (clock.go)
	realBase  int64         // CLOCK_REALTIME ns at boot
	baseCtx   context.Context
	cancelAll context.CancelCauseFunc
	halted    chan struct{} // closed when Shutdown has seen every goroutine exit

	cpus  []*CPU
	sched scheduler
	virt  *virtSched
	rr    atomic.Uint32

	tasksMu  sync.Mutex
	tasks    map[*Task]struct{}
	nextPID  int
	initTask *Task
	kthreadd *Task

	log *printk.Ring
	tr  *trace.Tracer

	softirqVec  [NRSoftirqs]atomic.Pointer[func(c *Ctx)]
	maxSoftTime uint64

	irqMu sync.Mutex
	irqs  map[int]*irqDesc

	hooksMu sync.Mutex
	hooks   atomic.Pointer[[]ClockEvents]

	localsMu sync.Mutex
	locals   atomic.Pointer[[]localEntry]

	dying    atomic.Bool
	down     chan struct{}
	wg       sync.WaitGroup
	cpuWG    sync.WaitGroup
	panicked atomic.Pointer[keptPanic] // re-raised by the virtual-time driver
	stderr   io.Writer                 // where Oopses go without a log sink

	bugMu         sync.Mutex
	mightPrev     uint64
	taint         atomic.Uint32
	warnings      atomic.Uint64
	oopses        atomic.Uint64
	onceWarnings  sync.Map
	locksDebugOff atomic.Bool  // !debug_locks: a lock bug was reported
	badIRQReports atomic.Int32 // report_bad_irq's static count

	moduleLister atomic.Pointer[func() []string]
	exitHooks    atomic.Pointer[[]func(*Task)]

	lpj uint64

	vars [1 << varTableBits]varBucket // WaitVarEvent's hashed wait queues
	drv  driverRole                   // the driver of a virtual kernel

	// External operations (virtual time): calls for the driver to run,
	// the number of open holds, and the holds of HoldExternalAt that have
	// not begun, by time (nextHoldAt: the first one's, or NoEvent).
	ext        chan func()
	extMu      sync.Mutex
	holds      int
	holdsAt    []*Hold
	nextHoldAt atomic.Int64
}

// ClockEvents is a source of per-CPU timed events (the timer wheel, the
// hrtimer queues): the lower layer's hook by which subsystems above the
// kernel make a CPU wake up at the right time. Tick is called in hardirq
// context on that CPU (the local timer interrupt) once the clock has reached
// NextEvent; it typically raises a softirq.
type ClockEvents interface {
	// NextEvent returns the time (ns since boot) of the next event on cpu,
	// or NoEvent.
	NextEvent(cpu int) int64
	// Tick handles the local timer interrupt on c's CPU.
	Tick(c *Ctx)
}

// Boot boots a kernel from cfg.
func Boot(cfg Config) (*Kernel, error) {
	if cfg.HZ == 0 {
		cfg.HZ = jiffies.DefaultHZ
	}
	if err := cfg.HZ.Valid(); err != nil {
		return nil, fmt.Errorf("kernel: boot: %w", err)
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = min(runtime.NumCPU(), NRCPUs)
	}
	if cfg.CPUs < 0 || cfg.CPUs > NRCPUs {
		return nil, fmt.Errorf("kernel: boot: %d CPUs requested, want 1..%d: %w", cfg.CPUs, NRCPUs, EINVAL)
	}
	if cfg.LogCapacity < 0 {
		return nil, fmt.Errorf("kernel: boot: log capacity %d: %w", cfg.LogCapacity, EINVAL)
	}
	if cfg.LogCapacity == 0 {
		cfg.LogCapacity = 8192
	}
	k := &Kernel{
		cfg:      cfg,
		hz:       cfg.HZ,
		tickNs:   cfg.HZ.TickNsec(),
		initialJ: cfg.HZ.InitialJiffies(),
		virtual:  cfg.Virtual,
		tasks:    make(map[*Task]struct{}),
		nextPID:  3,
		irqs:     make(map[int]*irqDesc),
		down:     make(chan struct{}),
		halted:   make(chan struct{}),
		ext:      make(chan func(), 256),
		log:      printk.NewRing(cfg.LogCapacity),
		stderr:   os.Stderr,
	}
	k.maxSoftTime = k.hz.MsecsToJiffies(2) // MAX_SOFTIRQ_TIME
	k.nextHoldAt.Store(NoEvent)
	k.tickRecip = ^uint64(0) / uint64(k.tickNs)
	k.vjiffies.Store(k.initialJ)
	k.baseCtx, k.cancelAll = context.WithCancelCause(context.Background())
	switch {
	case !cfg.RealtimeBase.IsZero():
		k.realBase = cfg.RealtimeBase.UnixNano()
	case cfg.Virtual:
		k.realBase = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	default:
		k.realBase = time.Now().UnixNano()
	}
	if !cfg.Virtual {
		k.clock.init(k.tickNs)
	}
	tr, err := trace.New(trace.Options{CPUs: cfg.CPUs, BufferRecords: cfg.TraceBufferRecords, Clock: k.Now})
	if err != nil {
		return nil, fmt.Errorf("kernel: boot: %w", err)
	}
	k.tr = tr
	if err := tr.Enable(cfg.TraceEvents); err != nil {
		return nil, fmt.Errorf("kernel: boot: trace_event=%s: %w", cfg.TraceEvents, err)
	}
	if cfg.Virtual {
		k.virt = newVirtSched(k)
		k.sched = k.virt
	} else {
		k.sched = realSched{}
	}
	empty := []ClockEvents{}
	k.hooks.Store(&empty)
	noLocals := []localEntry{}
	k.locals.Store(&noLocals)
	if cfg.Log != nil {
		k.log.AddSink(cfg.Log)
	}
	if w := cfg.LogWriter; w != nil {
		k.log.AddSink(func(r printk.Record) { io.WriteString(w, printk.FormatDmesg(r)+"\n") })
	}

	k.cpus = make([]*CPU, cfg.CPUs)
	for i := range k.cpus {
		k.cpus[i] = newCPU(k, i)
	}
	k.initTask = k.newTask("init", false, 0, nil, 1)
	k.initTask.state.Store(TaskInterruptible)
	k.kthreadd = k.newTask("kthreadd", true, 0, nil, 2)
	k.kthreadd.state.Store(TaskInterruptible)
	k.kthreadd.parent = nil

	k.banner()
	for _, cpu := range k.cpus {
		t, err := k.CreateTask(TaskOpts{Comm: fmt.Sprintf("ksoftirqd/%d", cpu.id), Kthread: true, CPU: cpu.id}, cpu.ksoftirqdFn)
		if err != nil {
			return nil, err
		}
		cpu.ksoftirqd = t
		k.WakeUpProcess(t)
	}
	k.calibrateDelay()
	if cfg.Virtual {
		for _, cpu := range k.cpus {
			cpu.idle.state.Store(TaskInterruptible)
			k.virt.idleLive++
			k.cpuWG.Add(1)
			go cpu.vloop()
		}
		k.virt.runRunnable()
	} else {
		for _, cpu := range k.cpus {
			k.cpuWG.Add(1)
			cpu.looping.Store(true)
			go cpu.loop()
		}
	}
	return k, nil
}

func (k *Kernel) banner() {
	if k.cfg.Quiet {
		return
	}
	c := k.cpus[0].driverCtx()
	mode := "real"
	if k.virtual {
		mode = "virtual"
	}
	Printk(c, printk.LevelNotice, "kdefer version %s (%s) HZ=%d clock=%s\n", Version, runtime.Version(), k.hz, mode)
	Printk(c, printk.LevelInfo, "smp: Brought up 1 node, %d CPU%s\n", len(k.cpus), plural(len(k.cpus)))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (k *Kernel) newTask(comm string, kthread bool, cpu int, parent *Task, pid int) *Task {
	t := &Task{
		k:       k,
		pid:     pid,
		kthread: kthread,
		cpu:     cpu,
		parent:  parent,
		baton:   make(chan struct{}, 1),
		exited:  make(chan struct{}),
	}
	t.SetComm(comm)
	t.ctxp.Store(newTaskContext(k))
	t.pctx = Ctx{k: k, task: t, cpu: k.cpus[cpu]}
	k.tasksMu.Lock()
	k.tasks[t] = struct{}{}
	k.tasksMu.Unlock()
	return t
}

func (k *Kernel) allocPID() int {
	k.tasksMu.Lock()
	defer k.tasksMu.Unlock()
	pid := k.nextPID
	k.nextPID++
	return pid
}

// LastPID returns the pid most recently given to a task (the pid
// namespace's idr cursor less one, which /proc/loadavg prints last).
func (k *Kernel) LastPID() int {
	k.tasksMu.Lock()
	defer k.tasksMu.Unlock()
	return k.nextPID - 1
}

func (k *Kernel) removeTask(t *Task) {
	k.tasksMu.Lock()
	delete(k.tasks, t)
	k.tasksMu.Unlock()
}

// Tasks returns a snapshot of the live tasks sorted by pid (idle tasks
// first, by CPU).
func (k *Kernel) Tasks() []*Task {
	k.tasksMu.Lock()
	out := make([]*Task, 0, len(k.tasks))
	for t := range k.tasks {
		out = append(out, t)
	}
	k.tasksMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].pid != out[j].pid {
			return out[i].pid < out[j].pid
		}
		return out[i].cpu < out[j].cpu
	})
	return out
}

// FindTask is find_task_by_vpid(): the live task with pid, or nil.
func (k *Kernel) FindTask(pid int) *Task {
	k.tasksMu.Lock()
	defer k.tasksMu.Unlock()
	for t := range k.tasks {
		if t.pid == pid && !t.idle {
			return t
		}
	}
	return nil
}

// HZ returns the kernel's tick rate.
func (k *Kernel) HZ() jiffies.HZ { return k.hz }

// NumCPUs returns the number of online CPUs.
func (k *Kernel) NumCPUs() int { return len(k.cpus) }

// Virtual reports whether the kernel runs in virtual time.
func (k *Kernel) Virtual() bool { return k.virtual }

// Seed returns the configured seed.
func (k *Kernel) Seed() int64 { return k.cfg.Seed }

// Log returns the kernel's printk ring buffer (dmesg).
func (k *Kernel) Log() *printk.Ring { return k.log }

// InitTask returns init (pid 1), the parent of user tasks.
func (k *Kernel) InitTask() *Task { return k.initTask }

// Kthreadd returns kthreadd (pid 2), the parent of kernel threads.
func (k *Kernel) Kthreadd() *Task { return k.kthreadd }

// IdleTask returns swapper/cpu, the idle task of cpu (pid 0).
func (k *Kernel) IdleTask(cpu int) *Task { return k.cpus[cpu].idle }

// Ksoftirqd returns ksoftirqd/cpu.
func (k *Kernel) Ksoftirqd(cpu int) *Task { return k.cpus[cpu].ksoftirqd }

// ShuttingDown reports whether Shutdown has begun.
func (k *Kernel) ShuttingDown() bool { return k.dying.Load() }

// Done returns a channel closed once Shutdown has begun.
func (k *Kernel) Done() <-chan struct{} { return k.down }

// RegisterClockEvents adds a source of timed events. Every CPU consults it
// when deciding how long it may sleep.
func (k *Kernel) RegisterClockEvents(h ClockEvents) {
	k.hooksMu.Lock()
	defer k.hooksMu.Unlock()
	old := *k.hooks.Load()
	hs := append(append([]ClockEvents(nil), old...), h)
	k.hooks.Store(&hs)
	k.KickAll()
}

// KickCPU tells cpu that its next event may have moved earlier (the IPI an
// enqueue sends to an idle CPU). In virtual time it is a no-op: the driver
// recomputes the next event whenever all tasks are blocked.
func (k *Kernel) KickCPU(cpu int) {
	if k.virtual || cpu < 0 || cpu >= len(k.cpus) {
		return
	}
	c := k.cpus[cpu]
	select {
	case c.kick <- struct{}{}:
		c.resched.Add(1)
	default:
	}
}

// KickAll kicks every CPU.
func (k *Kernel) KickAll() {
	for i := range k.cpus {
		k.KickCPU(i)
	}
}

func (k *Kernel) nextEvent(cpu int) int64 {
	next := NoEvent
	for _, h := range *k.hooks.Load() {
		if t := h.NextEvent(cpu); t < next {
			next = t
		}
	}
	return next
}

// OnTaskExit registers fn to run when any task exits, on the exiting
// task's goroutine after its function returned (exit_files and similar
// cleanup of higher layers).
func (k *Kernel) OnTaskExit(fn func(*Task)) {
	k.hooksMu.Lock()
	defer k.hooksMu.Unlock()
	var hs []func(*Task)
	if p := k.exitHooks.Load(); p != nil {
		hs = append(hs, *p...)
	}
	hs = append(hs, fn)
	k.exitHooks.Store(&hs)
}

// LocalKey identifies a per-kernel value of a higher layer (see Local): a
// package declares one variable of this type and passes its address.
//
//	var sysKey kernel.LocalKey
//	func sysOf(k *kernel.Kernel) *system { return k.Local(&sysKey, newSystem).(*system) }
type LocalKey struct{ _ byte } // not zero-sized: every key has its own address

type localEntry struct {
	key *LocalKey
	val any
}

// Local returns the kernel's value for key, creating it with newFn on first
// use. Higher layers (timers, workqueues, devices) keep their per-kernel
// state here, so that two kernels in one process share nothing. Lookups are
// lock-free.
func (k *Kernel) Local(key *LocalKey, newFn func(*Kernel) any) any {
	for _, e := range *k.locals.Load() {
		if e.key == key {
			return e.val
		}
	}
	k.localsMu.Lock()
	defer k.localsMu.Unlock()
	for _, e := range *k.locals.Load() {
		if e.key == key {
			return e.val
		}
	}
	v := newFn(k)
	ls := append(append([]localEntry(nil), *k.locals.Load()...), localEntry{key, v})
	k.locals.Store(&ls)
	return v
}

// Run runs the kernel until ctx is done or, if d > 0, until d of kernel
// time has passed (CLOCK_MONOTONIC), whichever comes first.
//
// In real time it only waits: the kernel runs on its own goroutines.
// In virtual time the calling goroutine is the driver: it runs every
// runnable task, and whenever all are blocked it advances the clock to the
// next event and handles it on the due CPUs. Between calls to Run a
// virtual kernel is frozen and the caller may use it (spawn tasks, raise
// interrupts, load modules) as if it held the big kernel lock. With d == 0
// in virtual time Run returns once no task is runnable and no event is
// pending, or when ctx is done. A virtual kernel must be driven from one
// goroutine at a time.
func (k *Kernel) Run(ctx context.Context, d time.Duration) error {
	if k.dying.Load() {
		return ErrShutdown
	}
	if !k.virtual {
		var timeout <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timeout:
			return nil
		case <-k.down:
			return ErrShutdown
		}
	}
	if err := k.acquireDriver("run"); err != nil {
		return err
	}
	defer k.releaseDriver()
	target := NoEvent
	if now := k.Now(); d > 0 && int64(d) < NoEvent-now {
		target = now + int64(d) // else: saturate, as for "forever"
	}
	return k.runVirtual(ctx, target, nil)
}

// RunTask runs fn as a user task named comm (a process calling into the
// kernel, as insmod or a demo's userspace app does) and returns its exit
// code once it has exited. In virtual time the calling goroutine drives the
// kernel meanwhile, as Run does, and returns as soon as the task is gone.
//
// If fn panicked, the task died of an Oops: RunTask returns -EFAULT and
// the *Oops as its error (errors.Is(err, ErrOops); the panic value is
// wrapped too, for errors.Is and errors.As). Oopses of handlers that ran
// meanwhile are not the task's: see Config.OnOops.
func (k *Kernel) RunTask(ctx context.Context, comm string, fn func(c *Ctx) int) (int, error) {
	if err := k.acquireDriver("run task " + comm); err != nil {
		return 0, err
	}
	defer k.releaseDriver()
	t, err := k.Spawn(comm, fn)
	if err != nil {
		return 0, err
	}
	if k.virtual {
		exited := func() bool {
			select {
			case <-t.exited:
				return true
			default:
				return false
			}
		}
		if err := k.runVirtual(ctx, NoEvent, exited); err != nil {
			return 0, err
		}
		if !exited() {
			return 0, fmt.Errorf("kernel: task %s is blocked and no event can wake it: %w", t, EDEADLK)
		}
		return t.ExitCode(), t.oopsErr()
	}
	select {
	case <-t.exited:
		return t.ExitCode(), t.oopsErr()
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
}

// RunUntilIdle is Run(ctx, 0): in virtual time, run until nothing is
// runnable and no event is pending.
func (k *Kernel) RunUntilIdle(ctx context.Context) error { return k.Run(ctx, 0) }

// Shutdown stops the kernel: every task's context is cancelled with cause
// ErrShutdown, kernel threads are asked to stop (KthreadShouldStop) and user
// tasks get SIGKILL pending, sleeping tasks are woken and no longer sleep, and Shutdown
// waits until every task and CPU goroutine has exited or ctx is done. Unload
// modules first: Shutdown does not run their exit functions. A second call
// waits for the first one to finish (or for its own ctx). Do not call it
// from a task of the kernel: it would wait for itself. In virtual time a
// task that blocks outside the kernel (on a Go channel, say) keeps the run
// token, and Shutdown, Run and RunTask then cannot honour their ctx.
func (k *Kernel) Shutdown(ctx context.Context) error {
	if err := k.acquireDriver("shutdown"); err != nil && !k.dying.Load() {
		return err
	} else if err == nil {
		defer k.releaseDriver()
	}
	if k.dying.Swap(true) {
		// Already shutting down: wait for that shutdown to finish. A
		// halted kernel wins over a done ctx (select alone would pick
		// one of two ready cases at random).
		select {
		case <-k.halted:
			return nil
		case <-ctx.Done():
			if k.isHalted() {
				return nil
			}
			return fmt.Errorf("kernel: shutdown: still in progress: %w", context.Cause(ctx))
		}
	}
	close(k.down)
	k.cancelAll(ErrShutdown)
	k.wakeAllForShutdown()
	if k.virtual {
		// Drive the remaining tasks (and the CPUs' idle goroutines) to
		// their end on this goroutine; while the kernel is dying no task
		// sleeps and no busy-wait goes on.
		for i := 0; i < 1000 && (k.liveTaskGoroutines() > 0 || k.virt.idleLive > 0); i++ {
			k.wakeAllForShutdown()
			k.virt.releaseAll()
			k.virt.runRunnable()
		}
	}
	go func() {
		k.wg.Wait()
		k.cpuWG.Wait()
		close(k.halted)
	}()
	select {
	case <-k.halted:
		return nil
	case <-ctx.Done():
		if k.isHalted() {
			return nil
		}
		// Tasks with a goroutine, then the idle tasks of CPUs whose
		// interrupt loop has not returned (a handler that blocks).
		var names []string
		for _, t := range k.Tasks() {
			if t.started0() {
				names = append(names, t.String())
			}
		}
		for _, cpu := range k.cpus {
			if cpu.looping.Load() {
				names = append(names, cpu.idle.String())
			}
		}
		return fmt.Errorf("kernel: shutdown: tasks still running %v: %w", names, context.Cause(ctx))
	}
}

func (k *Kernel) isHalted() bool {
	select {
	case <-k.halted:
		return true
	default:
		return false
	}
}

func (t *Task) started0() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fn != nil
}

// wakeAllForShutdown sets every task with a goroutine running. Tasks that
// never ran will exit without running their function.
func (k *Kernel) wakeAllForShutdown() {
	for _, t := range k.Tasks() {
		k.wakeForShutdown(t)
	}
}

// wakeForShutdown sets t running if it has a goroutine; one that has not
// run its function yet will exit without running it.
func (k *Kernel) wakeForShutdown(t *Task) {
	t.markDying()
	t.mu.Lock()
	hasG := t.fn != nil
	if hasG && !t.started {
		t.noRun = true
	}
	t.mu.Unlock()
	// Attached tasks sleep on their own goroutine; in virtual time the
	// idle goroutines take the CPUs' interrupts.
	if !hasG && !t.attached && !(t.idle && k.virtual) {
		return
	}
	if s := t.state.Load(); s != TaskRunning && s&(TaskDead|ExitDead) == 0 && t.state.CompareAndSwap(s, TaskRunning) {
		k.sched.wake(t)
	} else if k.virtual && s == TaskRunning && (t.spinParked || (t.vwKey != nil && t.vwSpin)) {
		// Parked in a busy-wait: nothing waits any more.
		k.virt.wake(t)
	}
}

// StopUnstarted marks a task that has not run yet so that, when woken, it
// exits with -EINTR without running its function (kthread_stop() on a
// kthread that was never woken). It reports false if the task already ran.
func (k *Kernel) StopUnstarted(t *Task) bool {
	t.mu.Lock()
	if t.started {
		t.mu.Unlock()
		return false
	}
	t.noRun = true
	t.mu.Unlock()
	k.WakeUpState(t, ^TaskState(0))
	return true
}

func (k *Kernel) liveTaskGoroutines() int {
	n := 0
	for _, t := range k.Tasks() {
		if t.started0() {
			n++
		}
	}
	return n
}
