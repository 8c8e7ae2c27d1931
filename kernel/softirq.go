package kernel

import (
	"fmt"
	"math/bits"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/printk"
)

// Softirq vectors, in the kernel's order (include/linux/interrupt.h).
const (
	HISoftirq      = 0 // HI_SOFTIRQ
	TimerSoftirq   = 1 // TIMER_SOFTIRQ
	NetTXSoftirq   = 2 // NET_TX_SOFTIRQ
	NetRXSoftirq   = 3 // NET_RX_SOFTIRQ
	BlockSoftirq   = 4 // BLOCK_SOFTIRQ
	IRQPollSoftirq = 5 // IRQ_POLL_SOFTIRQ
	TaskletSoftirq = 6 // TASKLET_SOFTIRQ
	SchedSoftirq   = 7 // SCHED_SOFTIRQ
	HRTimerSoftirq = 8 // HRTIMER_SOFTIRQ
	RCUSoftirq     = 9 // RCU_SOFTIRQ
	NRSoftirqs     = 10
)

// MaxSoftirqRestart is MAX_SOFTIRQ_RESTART: the most passes
// handle_softirqs makes before it hands the rest to ksoftirqd.
const MaxSoftirqRestart = 10

// SoftirqName returns softirq_to_name[nr] ("HI", "TIMER", … "RCU").
func SoftirqName(nr int) string {
	switch nr {
	case HISoftirq:
		return "HI"
	case TimerSoftirq:
		return "TIMER"
	case NetTXSoftirq:
		return "NET_TX"
	case NetRXSoftirq:
		return "NET_RX"
	case BlockSoftirq:
		return "BLOCK"
	case IRQPollSoftirq:
		return "IRQ_POLL"
	case TaskletSoftirq:
		return "TASKLET"
	case SchedSoftirq:
		return "SCHED"
	case HRTimerSoftirq:
		return "HRTIMER"
	case RCUSoftirq:
		return "RCU"
	}
	return fmt.Sprintf("softirq%d", nr)
}

// OpenSoftirq is open_softirq(nr, action): it installs the handler of a
// vector. Handlers run in softirq context with the CPU's pending bit already
// cleared; they must not sleep.
func (k *Kernel) OpenSoftirq(nr int, action func(c *Ctx)) {
	if nr < 0 || nr >= NRSoftirqs {
		panic(fmt.Sprintf("kernel: open_softirq: bad vector %d", nr))
	}
	k.softirqVec[nr].Store(&action)
}

// RaiseSoftirqIrqoff is raise_softirq_irqoff(nr): it marks nr pending on the
// caller's CPU and, from task context with bottom halves enabled, wakes
// ksoftirqd to run it. From interrupt context the softirq runs at irq_exit
// or at the outermost local_bh_enable.
func RaiseSoftirqIrqoff(c *Ctx, nr int) {
	if nr < 0 || nr >= NRSoftirqs {
		// The kernel would set a bit no handler reads; kdefer warns and
		// ignores it rather than index past the vector table.
		c.k.warnOnce(c, "raise_softirq-bad-vector", "raise_softirq: bad vector %d\n", nr)
		return
	}
	traceSoftirqRaise(c, nr)
	c.cpu.pending.Or(1 << uint(nr))
	if !c.InInterrupt() {
		c.cpu.raiseWakeup()
	}
}

// RaiseSoftirq is raise_softirq(nr): raise_softirq_irqoff with interrupts
// saved and disabled around it.
func RaiseSoftirq(c *Ctx, nr int) {
	flags := LocalIRQSave(c)
	RaiseSoftirqIrqoff(c, nr)
	LocalIRQRestore(c, flags)
}

// RaiseSoftirqOn marks nr pending on cpu from any context and makes sure it
// runs soon: the CPU is kicked (real time) or its ksoftirqd woken. It is the
// stand-in for the IPIs the kernel sends to raise work on another CPU.
func (k *Kernel) RaiseSoftirqOn(cpu, nr int) {
	c := k.cpus[cpu]
	k.traceSoftirqOn(cpu, nr)
	c.pending.Or(1 << uint(nr))
	c.raiseWakeup()
}

// LocalSoftirqPending is local_softirq_pending() for the caller's CPU.
func (c *Ctx) LocalSoftirqPending() uint32 { return c.cpu.pending.Load() }

// LocalBHDisable is local_bh_disable(): it adds SOFTIRQ_DISABLE_OFFSET to
// the preempt count. Softirqs raised meanwhile on this CPU stay pending
// until the outermost LocalBHEnable.
func LocalBHDisable(c *Ctx) {
	if c.InHardirq() {
		c.k.warnOnce(c, "local_bh_disable-hardirq", "local_bh_disable() called from hardirq context\n")
	}
	if c.preempt&SoftirqMask == 0 && c.InTask() {
		c.k.lockMutex(c, &c.cpu.softirqMu)
		c.bhHeld = true
	}
	c.preempt += SoftirqDisableOffset
}

// LocalBHEnable is local_bh_enable(): it drops one level of bottom-half
// disabling; when the count reaches zero outside interrupt context the
// pending softirqs run at once, in the caller's context.
func LocalBHEnable(c *Ctx) {
	if c.InHardirq() {
		c.k.warnOnce(c, "local_bh_enable-hardirq", "local_bh_enable() called from hardirq context\n")
	}
	if c.preempt&SoftirqMask < SoftirqDisableOffset {
		c.k.warn(c, 1, "local_bh_enable() without local_bh_disable()\n")
		return
	}
	c.preempt -= SoftirqDisableOffset
	if c.preempt&SoftirqMask != 0 || !c.bhHeld {
		return
	}
	cpu := c.cpu
	c.preempt += PreemptOffset
	deferred := false
	if !c.InInterrupt() && cpu.pending.Load() != 0 {
		deferred = cpu.handleSoftirqs(c.task, c.preempt)
	}
	c.bhHeld = false
	cpu.k.unlockMutex(&cpu.softirqMu)
	c.preempt -= PreemptOffset
	if !deferred && cpu.pending.Load() != 0 {
		cpu.doSoftirq(c.task, c.preempt)
	}
}

// doSoftirq runs the pending softirqs on cpu as task cur unless another
// context on the CPU serves softirqs or has bottom halves disabled; that
// context re-checks the pending mask when it is done.
func (cpu *CPU) doSoftirq(cur *Task, base uint32) {
	for cpu.pending.Load() != 0 {
		if !cpu.softirqMu.TryLock() {
			return
		}
		deferred := cpu.handleSoftirqs(cur, base)
		cpu.k.unlockMutex(&cpu.softirqMu)
		if deferred {
			return
		}
	}
}

// handleSoftirqs is handle_softirqs() (__do_softirq): with softirqMu held
// it runs the pending vectors lowest bit first, restarting while new ones
// are raised, for at most MaxSoftirqRestart passes and MAX_SOFTIRQ_TIME;
// what is left is handed to ksoftirqd. It reports whether it did so.
// need_resched() is not modelled (always false).
func (cpu *CPU) handleSoftirqs(cur *Task, base uint32) (deferred bool) {
	k := cpu.k
	sc := &cpu.softCtx
	*sc = Ctx{k: k, task: cur, cpu: cpu, preempt: base + SoftirqOffset}
	cpu.serving.Store(true)
	defer cpu.serving.Store(false)
	end := k.Jiffies() + k.maxSoftTime
	restart := MaxSoftirqRestart
	for {
		pending := cpu.pending.Swap(0)
		for pending != 0 {
			nr := bits.TrailingZeros32(pending)
			pending &^= 1 << uint(nr)
			cpu.softirqStat[nr].Add(1)
			hp := k.softirqVec[nr].Load()
			if hp == nil || *hp == nil {
				continue
			}
			h := *hp
			before := sc.preempt
			cpu.polled = false
			traceSoftirqEntry(sc, nr)
			k.runHandler(sc, func() { h(sc) })
			traceSoftirqExit(sc, nr)
			if !cpu.polled {
				cpu.progress = true
			}
			if sc.preempt != before {
				Printk(sc, printk.LevelErr, "huh, entered softirq %d %s %p with preempt_count %08x, exited with %08x?\n",
					nr, SoftirqName(nr), h, before, sc.preempt)
				sc.preempt = before
				sc.irqsOff = false
				if sc.bhHeld {
					sc.bhHeld = false
				}
			}
		}
		if cpu.pending.Load() == 0 {
			return false
		}
		restart--
		if jiffies.TimeBefore(k.Jiffies(), end) && restart > 0 {
			continue
		}
		cpu.wakeupSoftirqd()
		return true
	}
}

func (cpu *CPU) wakeupSoftirqd() {
	if t := cpu.ksoftirqd; t != nil && t.state.Load() != TaskRunning {
		cpu.k.WakeUpProcess(t)
	}
}

// raiseWakeup is wakeup_softirqd() for a softirq raised from outside the
// softirq machinery. In virtual time it also makes a busy re-polling
// ksoftirqd poll again (see repollVirtual).
func (cpu *CPU) raiseWakeup() {
	if cpu.k.virtual {
		cpu.repollKick = true
		if t := cpu.ksoftirqd; t != nil && t.spinParked && t.repolling {
			cpu.k.virt.wake(t)
		}
	}
	cpu.wakeupSoftirqd()
}

// ksoftirqdFn is the body of ksoftirqd/N (smpboot thread run_ksoftirqd).
func (cpu *CPU) ksoftirqdFn(c *Ctx) int {
	k := c.k
	for {
		SetCurrentState(c, TaskInterruptible)
		if k.dying.Load() {
			c.task.state.Store(TaskRunning)
			return 0
		}
		if cpu.pending.Load() == 0 {
			Schedule(c)
			continue
		}
		c.task.state.Store(TaskRunning)
		k.lockMutex(c, &cpu.softirqMu)
		cpu.progress = false
		cpu.handleSoftirqs(c.task, 0)
		progress := cpu.progress
		k.unlockMutex(&cpu.softirqMu)
		CondResched(c)
		if k.virtual && !progress && cpu.pending.Load() != 0 {
			cpu.repollVirtual(c)
		}
	}
}

// SoftirqRepoll tells the kernel that the softirq handler running in c made
// no progress and raised its vector again only to look once more: the
// tasklet softirq does so for a tasklet that is disabled or running on
// another CPU (the kernel's busy re-polling). In real time it changes
// nothing: ksoftirqd spins, as in the kernel. In virtual time, when every
// handler of a ksoftirqd pass only polled, ksoftirqd leaves its CPU until
// something can have changed (see repollVirtual) instead of spinning with
// the clock stopped.
func SoftirqRepoll(c *Ctx) {
	if c.InServingSoftirq() {
		c.cpu.polled = true
	}
}

// repollVirtual is ksoftirqd's busy re-polling in virtual time: a softirq
// that keeps raising itself without doing anything (a tasklet that is
// disabled, or running on another CPU, is put back on its list and the
// softirq raised again) would make ksoftirqd loop with the clock stopped.
// The kernel's ksoftirqd spins there, consuming its CPU; kdefer's leaves the
// CPU until something can have changed — the next event, or a new raise on
// this CPU — so that time moves on and the other contexts run.
func (cpu *CPU) repollVirtual(c *Ctx) {
	k := c.k
	if len(k.virt.runq) != 0 {
		return
	}
	if cpu.repollKick {
		cpu.repollKick = false // raised again meanwhile: poll now
		return
	}
	t := c.task
	t.repolling = true
	k.virt.spinPark(t, k.virtNextEvent())
	t.repolling = false
	cpu.repollKick = false
}

// SoftirqCount returns how many times vector nr ran on cpu
// (kstat_softirqs_cpu).
func (k *Kernel) SoftirqCount(nr, cpu int) uint64 { return k.cpus[cpu].softirqStat[nr].Load() }

// LocalTimerInterrupts returns the LOC count of cpu.
func (k *Kernel) LocalTimerInterrupts(cpu int) uint64 { return k.cpus[cpu].locTimer.Load() }

// ReschedInterrupts returns the RES count of cpu (kicks sent to wake it).
func (k *Kernel) ReschedInterrupts(cpu int) uint64 { return k.cpus[cpu].resched.Load() }
