package kernel

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// CPU is a logical CPU: its idle task swapper/N, its ksoftirqd/N, its
// pending-softirq mask and the locks that serialise interrupt and softirq
// processing on it.
//
// kdefer does not give a CPU to one task at a time: in real time every
// task's goroutine runs in parallel, and a task's CPU number decides which
// per-CPU queues (softirqs, timer bases, worker pools) it uses. What the
// kernel guarantees per CPU is kept: softirqs on one CPU never run
// concurrently, a context that disabled bottom halves holds off softirq
// processing on its CPU, and hardirq handlers on one CPU are serialised.
type CPU struct {
	id        int
	k         *Kernel
	idle      *Task
	ksoftirqd *Task

	pending atomic.Uint32 // __softirq_pending

	// softirqMu is held by the context that serves softirqs on this CPU
	// or that disabled bottom halves (outermost local_bh_disable).
	softirqMu sync.Mutex
	serving   atomic.Bool
	softCtx   Ctx // valid while softirqMu is held

	// irqMu serialises hardirq handlers on this CPU.
	irqMu   sync.Mutex
	hardCtx Ctx // valid while irqMu is held
	// latched are lines raised while the CPU was in hardirq context, to
	// be taken when it leaves it (GenerateIRQ); latchedN is their number.
	latchMu  sync.Mutex
	latched  []int
	latchedN atomic.Int32

	softirqStat [NRSoftirqs]atomic.Uint64
	locTimer    atomic.Uint64 // LOC: local timer interrupts
	resched     atomic.Uint64 // RES: rescheduling (kick) interrupts

	kick chan struct{}

	// vbusy (virtual time, token holder only): the CPU's idle goroutine
	// was woken for an interrupt and has not gone back to sleep.
	vbusy bool
	// repollKick (virtual time, token holder only): a softirq was raised
	// on this CPU from outside since ksoftirqd last polled.
	repollKick bool
	// polled, progress (holder of softirqMu only): the running softirq
	// handler only re-polled (SoftirqRepoll); some handler of the current
	// ksoftirqd pass did more.
	polled, progress bool
	// looping is set while the real-time idle loop's goroutine runs.
	looping atomic.Bool
}

func newCPU(k *Kernel, id int) *CPU {
	c := &CPU{id: id, k: k, kick: make(chan struct{}, 1)}
	// The idle task: pid 0, a kernel thread, always "running".
	t := &Task{k: k, pid: 0, kthread: true, idle: true, cpu: id, baton: make(chan struct{}, 1), exited: make(chan struct{})}
	t.SetComm(fmt.Sprintf("swapper/%d", id))
	t.ctxp.Store(newTaskContext(k))
	// init_idle_preempt_count: the idle task runs with preemption
	// disabled (PREEMPT_DISABLED), and interrupts add to that.
	t.pctx = Ctx{k: k, task: t, cpu: c, preempt: PreemptOffset}
	c.idle = t
	k.tasksMu.Lock()
	k.tasks[t] = struct{}{}
	k.tasksMu.Unlock()
	return c
}

// ID returns the CPU number.
func (cpu *CPU) ID() int { return cpu.id }

// driverCtx is the process context of the CPU's idle task, used by the
// kernel itself (boot messages, the virtual-time driver).
func (cpu *CPU) driverCtx() *Ctx { return &cpu.idle.pctx }

// IdleCtx returns the process context of swapper/cpu. Code that runs on
// behalf of no particular task (boot, a test driving a virtual kernel
// between Run calls) may use it; it must not sleep.
func (k *Kernel) IdleCtx(cpu int) *Ctx { return k.cpus[cpu].driverCtx() }

// Thresholds of the real-time idle loop's wait. Go's timers wake with
// about a millisecond of granularity on Linux, far too coarse for hrtimers
// and usleep_range, so the last stretch before an event is slept with
// nanosleep (default 50 µs timer slack) and the final quarter millisecond
// is spun, yielding the processor between clock reads. The loop does not
// lock its OS thread: a kicked idle loop then runs on the kicker's
// processor at its next yield instead of waiting for a thread wakeup.
const (
	coarseMargin = 1500 * time.Microsecond // Go timer until this close
	spinWindow   = 250 * time.Microsecond  // spin when this close
	sleepChunk   = 200 * time.Microsecond  // longest nanosleep (kick latency)
)

// loop is the real-time idle loop of the CPU (do_idle + the tickless
// clock-event device): it sleeps until its next event, or until kicked,
// then takes the local timer interrupt.
func (cpu *CPU) loop() {
	k := cpu.k
	defer k.cpuWG.Done()
	defer cpu.looping.Store(false)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if k.dying.Load() {
			return
		}
		next := k.nextEvent(cpu.id)
		now := k.Now()
		if next <= now {
			cpu.tick()
			continue
		}
		d := time.Duration(next - now)
		if next == NoEvent {
			d = time.Hour
		}
		if d > coarseMargin {
			timer.Reset(d - coarseMargin)
			select {
			case <-timer.C:
			case <-cpu.kick:
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
			case <-k.down:
				return
			}
			continue
		}
		// Close to the event: short precise sleeps, then spin; a kick
		// (an earlier event) or shutdown ends the wait early.
		select {
		case <-cpu.kick:
			continue
		case <-k.down:
			return
		default:
		}
		if d > spinWindow {
			nanosleep(min(d-spinWindow, sleepChunk))
			continue
		}
		runtime.Gosched()
	}
}

// tick takes the local timer interrupt on cpu: every ClockEvents hook's
// Tick runs in hardirq context, then irq_exit runs pending softirqs as the
// idle task.
func (cpu *CPU) tick() {
	cpu.locTimer.Add(1)
	hc := cpu.irqEnter(cpu.idle)
	cpu.runTickHooks(hc)
	cpu.irqExit(cpu.idle)
}

// runTickHooks runs every ClockEvents hook's Tick in hardirq context hc.
func (cpu *CPU) runTickHooks(hc *Ctx) {
	for _, h := range *cpu.k.hooks.Load() {
		cpu.k.runHandler(hc, func() { h.Tick(hc) })
	}
}

// baseCount is the preempt count of the task an interrupt arrives on:
// PREEMPT_DISABLED for the idle task, 0 for the others (kdefer's hardirqs
// interrupt the idle task).
func baseCount(cur *Task) uint32 {
	if cur.idle {
		return PreemptOffset
	}
	return 0
}

// irqEnter is irq_enter(): it takes the CPU's hardirq lock and returns the
// hardirq context. A hardirq that arrives while the CPU serves softirqs is
// marked as such (PRINT_CTX shows 'H').
func (cpu *CPU) irqEnter(cur *Task) *Ctx {
	cpu.k.lockMutex(cpu.driverCtx(), &cpu.irqMu)
	return cpu.enterLocked(cur)
}

// enterLocked is irqEnter for a caller that holds cpu.irqMu.
func (cpu *CPU) enterLocked(cur *Task) *Ctx {
	hc := &cpu.hardCtx
	*hc = Ctx{k: cpu.k, task: cur, cpu: cpu, preempt: baseCount(cur) + HardirqOffset, irqsOff: true}
	if cpu.serving.Load() {
		hc.preempt |= SoftirqOffset
	}
	return hc
}

// irqExit is irq_exit(): it leaves hardirq context and, unless the CPU is
// already in softirq context, runs the pending softirqs inline.
func (cpu *CPU) irqExit(cur *Task) {
	nested := cpu.hardCtx.preempt&SoftirqMask != 0
	// Interrupts latched meanwhile are taken before leaving (and, if one
	// is latched just after, by whoever gets the lock first).
	cpu.deliverLatched()
	cpu.k.unlockMutex(&cpu.irqMu)
	for cpu.latchedN.Load() != 0 && cpu.irqMu.TryLock() {
		cpu.enterLocked(cur)
		cpu.deliverLatched()
		cpu.k.unlockMutex(&cpu.irqMu)
	}
	if !nested && cpu.pending.Load() != 0 {
		cpu.doSoftirq(cur, baseCount(cur))
	}
}
