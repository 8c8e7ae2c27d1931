package kernel

import (
	"context"
	"runtime"
	"sync"
)

// virtSched is the virtual-time shell's scheduler. A single run token
// passes between the goroutines of the kernel — task goroutines, the idle
// goroutine of each CPU (which takes that CPU's interrupts, as swapper/N
// does) — and the driver (the goroutine inside Kernel.Run or RunTask, or a
// goroutine attached with Kernel.Attach, which also advances virtual time
// when nothing can run). Only the token holder touches the scheduler's
// fields, and the channel hand-offs order those accesses. Runnable tasks
// run in FIFO order of their wakeups, so a run is reproducible.
//
// Besides sleeping, a goroutine can leave the CPU in two ways that keep its
// task TASK_RUNNING: a busy-wait (Spin) parks it until the clock reaches the
// end of the wait, during which everything else runs and time moves on;
// and a wait for a lock or a variable held or owned by another parked
// context (a contended spinlock, a *_sync wait in atomic context) parks it
// until that context lets go.
type virtSched struct {
	k        *Kernel
	runq     []*Task
	current  *Task         // token holder; nil when the driver holds it
	driver   chan struct{} // the driver's token channel
	spinners []spinEntry   // tasks busy-waiting until a time, in park order
	idleLive int           // idle goroutines (vloop) not yet exited
}

// spinEntry is a parked busy-wait; it is stale once the task left it.
type spinEntry struct {
	t   *Task
	gen uint64
}

func newVirtSched(k *Kernel) *virtSched {
	return &virtSched{k: k, driver: make(chan struct{}, 1)}
}

func (v *virtSched) pop() *Task {
	if len(v.runq) == 0 {
		return nil
	}
	// Shift rather than reslice: a run queue that walked forward through
	// its array would make append allocate a new one every few switches.
	// It holds the runnable tasks only, a handful.
	t := v.runq[0]
	n := copy(v.runq, v.runq[1:])
	v.runq[n] = nil
	v.runq = v.runq[:n]
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
	if v.current == nil {
		// The driver itself (an attached task) sleeps: it drives the
		// kernel until something wakes it.
		v.k.driveUntilRunning(t)
		return
	}
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
	if t == v.current || t.onRunq || t.attached {
		return
	}
	t.onRunq = true
	v.runq = append(v.runq, t)
}

func (v *virtSched) yield(t *Task) {
	if v.current == nil {
		// The driver (an attached task) lets the runnable tasks run.
		if len(v.runq) > 0 {
			t.nivcsw.Add(1)
		}
		v.runRunnable()
		return
	}
	if len(v.runq) == 0 {
		return
	}
	t.nivcsw.Add(1)
	t.onRunq = true
	v.runq = append(v.runq, t)
	v.switchTo(v.pop())
	<-t.baton
}

func (v *virtSched) exit(*Task) { v.switchTo(v.pop()) }

// runRunnable is called by the driver while it holds the token: it lets
// every runnable task run until all of them are blocked or parked again.
func (v *virtSched) runRunnable() {
	if len(v.runq) == 0 {
		return
	}
	v.switchTo(v.pop())
	<-v.driver
}

// park takes the token holder t off the CPU without changing its state;
// it runs again once something calls wake(t) (or releases it as a spinner).
func (v *virtSched) park(t *Task) {
	v.switchTo(v.pop())
	<-t.baton
}

// spinPark parks the token holder t, busy-waiting, until the clock reaches
// until (or something wakes it earlier).
func (v *virtSched) spinPark(t *Task, until int64) {
	t.spinGen++
	t.spinUntil = until
	t.spinParked = true
	v.spinners = append(v.spinners, spinEntry{t, t.spinGen})
	v.park(t)
	t.spinParked = false
}

func (e spinEntry) valid() bool { return e.t.spinParked && e.t.spinGen == e.gen }

// nextSpin returns the earliest end of a parked busy-wait, or NoEvent.
func (v *virtSched) nextSpin() int64 {
	next := NoEvent
	for _, e := range v.spinners {
		if e.valid() && e.t.spinUntil < next {
			next = e.t.spinUntil
		}
	}
	return next
}

// releaseSpinners makes runnable, in park order, the busy-waits that have
// reached their end, and drops stale entries.
func (v *virtSched) releaseSpinners(now int64) {
	kept := v.spinners[:0]
	for _, e := range v.spinners {
		switch {
		case !e.valid():
		case e.t.spinUntil <= now:
			v.wake(e.t)
		default:
			kept = append(kept, e)
		}
	}
	for i := len(kept); i < len(v.spinners); i++ {
		v.spinners[i] = spinEntry{}
	}
	v.spinners = kept
}

// releaseAll makes every parked goroutine runnable (shutdown).
func (v *virtSched) releaseAll() {
	for _, e := range v.spinners {
		if e.valid() {
			v.wake(e.t)
		}
	}
	v.spinners = v.spinners[:0]
}

// vloop is the idle goroutine of a CPU in virtual time: swapper/N, which
// sleeps until the driver finds the CPU's next event due, then takes the
// local timer interrupt (and runs the softirqs it raised at irq_exit) and
// sleeps again. Running the interrupts on their own goroutine, as in real
// time, lets an interrupt handler busy-wait or wait for a lock while the
// rest of the kernel goes on.
func (cpu *CPU) vloop() {
	k := cpu.k
	t := cpu.idle
	defer k.cpuWG.Done()
	v := k.virt
	v.firstRun(t)
	for !k.dying.Load() {
		cpu.tick()
		cpu.vbusy = false
		t.state.Store(TaskInterruptible)
		v.block(t)
	}
	t.state.Store(TaskRunning)
	v.idleLive--
	v.exit(t)
}

// virtNextEvent returns the time of the next event of a virtual kernel:
// the earliest next event of a CPU that is idle (a CPU whose idle goroutine
// is still handling an interrupt is not asked again), the end of a parked
// busy-wait, or the start of a hold (HoldExternalAt).
func (k *Kernel) virtNextEvent() int64 {
	next := min(k.virt.nextSpin(), k.nextHoldAt.Load())
	for i, cpu := range k.cpus {
		if cpu.vbusy {
			continue
		}
		if t := k.nextEvent(i); t < next {
			next = t
		}
	}
	return next
}

// virtAdvance moves the clock to next (if later) and makes runnable what is
// due then: the idle goroutine of every CPU whose next event has come, in
// CPU order, then the busy-waits that have ended.
func (k *Kernel) virtAdvance(next int64) {
	now := k.Now()
	if next > now {
		k.setVnow(next)
		now = next
	}
	for i, cpu := range k.cpus {
		if !cpu.vbusy && k.nextEvent(i) <= now {
			cpu.vbusy = true
			cpu.idle.state.Store(TaskRunning)
			k.virt.wake(cpu.idle)
		}
	}
	k.virt.releaseSpinners(now)
}

// runVirtual drives a virtual kernel from the goroutine holding the token
// (the driver): it runs every runnable task and, whenever all are blocked,
// moves the clock to the next event and makes what is due runnable, until
// stop reports true, ctx is done, or the next event lies beyond target (the
// clock then stops at target).
func (k *Kernel) runVirtual(ctx context.Context, target int64, stop func() bool) error {
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		k.virt.runRunnable()
		if p := k.panicked.Swap(nil); p != nil {
			panic(p.v)
		}
		// Checked again before the clock moves: a stop requested while
		// the tasks ran (from inside one, say) takes effect at once, and
		// nothing is left half-done (woken for the next event) on return.
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if stop != nil && stop() {
			return nil
		}
		// Calls from outside (Inject, Hold.Release) run between steps;
		// while a hold is open the clock waits for it.
		if ran, err := k.runExternal(ctx, true); err != nil {
			return err
		} else if ran {
			continue
		}
		next := k.virtNextEvent()
		if next > target || next == NoEvent {
			if now := k.Now(); target != NoEvent && target > now {
				k.setVnow(target)
			}
			return nil
		}
		k.virtAdvance(next)
	}
}

// virtStep is one round of the driver: run what is runnable, then move to
// the next event. It reports false when nothing can happen any more.
func (k *Kernel) virtStep() bool {
	k.virt.runRunnable()
	if p := k.panicked.Swap(nil); p != nil {
		panic(p.v)
	}
	if ran, _ := k.runExternal(nil, true); ran {
		return true
	}
	next := k.virtNextEvent()
	if next == NoEvent {
		return false
	}
	k.virtAdvance(next)
	return true
}

// driveUntilRunning is how a task that is the driver (an attached task in
// virtual time) sleeps: it drives the kernel until its own state is
// TASK_RUNNING again. If nothing that could wake it can happen any more, the
// kernel would hang: the deadlock is reported, the task is made runnable,
// and from then on it does not sleep (see Task.noSleep).
func (k *Kernel) driveUntilRunning(t *Task) {
	for t.state.Load() != TaskRunning {
		if k.dying.Load() {
			t.state.Store(TaskRunning)
			return
		}
		k.pollParentCtx(t)
		if t.state.Load() == TaskRunning {
			return
		}
		if !k.virtStep() && t.state.Load() != TaskRunning {
			k.reportVirtualDeadlock(t)
			t.noSleep.Store(true)
			t.state.Store(TaskRunning)
			return
		}
	}
}

// driverRole guards the driver role of a virtual kernel (see acquireDriver).
type driverRole struct {
	mu    sync.Mutex
	owner int64 // driverID of the driving goroutine, 0 when none
	depth int
}

// acquireDriver claims the driver role of a virtual kernel for the calling
// goroutine (re-entrantly). Two goroutines cannot drive a virtual kernel at
// once: the second gets EBUSY.
func (k *Kernel) acquireDriver(what string) error {
	if !k.virtual {
		return nil
	}
	id := driverID()
	d := &k.drv
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner != 0 && d.owner != id {
		return &DriverBusyError{What: what}
	}
	d.owner = id
	d.depth++
	return nil
}

func (k *Kernel) releaseDriver() {
	if !k.virtual {
		return
	}
	d := &k.drv
	d.mu.Lock()
	d.depth--
	if d.depth == 0 {
		d.owner = 0
	}
	d.mu.Unlock()
}

// DriverBusyError is returned when a goroutine tries to drive a virtual
// kernel (Run, RunTask, Attach) while another goroutine drives it.
// errors.Is(err, EBUSY) reports true for it.
type DriverBusyError struct{ What string }

// Error says what was refused.
func (e *DriverBusyError) Error() string {
	return "kernel: " + e.What + ": a virtual kernel is driven by one goroutine at a time and another one drives it (Run, RunTask or an attached task)"
}

// Unwrap returns EBUSY.
func (e *DriverBusyError) Unwrap() error { return EBUSY }

// driverID identifies the calling goroutine for the driver role: the
// address of its runtime descriptor where getg reads it (a load), the
// goroutine id from its stack header (a traceback) elsewhere. The driver
// role is taken and given back on every Run, so its cost is paid per Run.
// A goroutine that exits while it holds the role (an attached task never
// detached) may have its descriptor reused by a new goroutine, which is
// then taken for the driver instead of getting EBUSY.
func driverID() int64 {
	if g := getg(); g != 0 {
		return int64(g)
	}
	return goid()
}

// goid returns the calling goroutine's id, read from its stack header
// ("goroutine 42 [running]:"). It costs about a microsecond; kdefer uses it
// only where a virtual kernel's driver changes hands and for attached tasks'
// sleeps, to tell their goroutines apart.
func goid() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	b := buf[:n]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return -1
	}
	b = b[len(prefix):]
	var id int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + int64(ch-'0')
	}
	return id
}
