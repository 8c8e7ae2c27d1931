package hrtimer

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/trace"
)

// stateKey finds a kernel's hrtimer state (Kernel.Local).
var stateKey kernel.LocalKey

// hrtimerState is the per-kernel part of kernel/time/hrtimer.c: the
// per-CPU hrtimer_bases, the clock-event hook and the HRTIMER_SOFTIRQ
// handler.
type hrtimerState struct {
	k *kernel.Kernel
	// realOff is the offset of CLOCK_REALTIME (and CLOCK_TAI) to
	// CLOCK_MONOTONIC (the kernel's offs_real). kdefer's realtime clock
	// never steps, so it is read once.
	realOff int64
	cpus    []cpuBase
	// nextID numbers timers for /proc/timer_list's pointer tokens.
	nextID atomic.Uint64
	// The kernel's WARN_ON_ONCE flags, and hrtimer_interrupt's
	// pr_warn_once.
	warnedSoftMode, warnedNoSetup, warnedHang atomic.Bool
	// migration is the kernel's migration_base: a timer's base points to
	// it while a start moves the timer between CPUs; lockBase waits.
	migration clockBase
}

// cpuBase is struct hrtimer_cpu_base: one CPU's eight clock bases and the
// lock (cpu_base->lock) that guards them and every timer queued on them.
type cpuBase struct {
	st  *hrtimerState
	cpu int
	tr  *trace.Tracer // the kernel's, for the tracepoints

	lock sync.Mutex
	// waiters counts Cancel callers waiting for a running callback (the
	// counterpart of PREEMPT_RT's softirq_expiry_lock waiters); they are
	// woken through kernel.WakeUpVar on the timer.
	waiters int

	clock [maxClockBases]clockBase

	// expiresNext is the time the CPU's clock-event device was last
	// programmed for (the value NextEvent returned); an enqueue earlier
	// than that kicks the CPU.
	expiresNext int64
	// softirqActivated is set from the hrtimer interrupt raising
	// HRTIMER_SOFTIRQ until the softirq ran the soft bases; meanwhile the
	// soft bases do not program the clock-event device.
	softirqActivated bool
	// inHrtirq is set while Tick runs the hard bases: enqueues need not
	// kick, the CPU re-evaluates its next event afterwards.
	inHrtirq bool
	// nrEvents counts hrtimer interrupts (cpu_base->nr_events).
	nrEvents uint64
	// The interrupt-hang statistics and state of hrtimer_interrupt:
	// nrRetries passes that found the next event already due, nrHangs
	// interrupts that gave up after three, maxHangTime the longest such
	// interrupt (ns). While hangDetected, the clock-event device stays
	// programmed for forcedNext and nothing reprograms it earlier.
	nrRetries, nrHangs uint64
	maxHangTime        uint32
	hangDetected       bool
	// forcedNext is the time the clock-event device was programmed for
	// with force (a hang, or a soft timer already due when the softirq
	// re-programmed it): no hrtimer interrupt comes before it. 0: none.
	forcedNext int64
	// pass numbers the queue runs; a timer records the pass it last ran
	// in, so that a pass never runs a timer twice (see runQueues).
	pass uint32
	// seq is the FIFO tie-breaker handed to enqueued timers.
	seq uint64
}

// clockBase is struct hrtimer_clock_base: the queue of one clock on one
// CPU, hard or soft. The queue is a binary min-heap of timers ordered by
// hard expiry, then by enqueue order; each timer stores its heap index.
type clockBase struct {
	cpu     *cpuBase
	index   int
	clockid ClockID
	offset  int64 // ktime offset of the clock to CLOCK_MONOTONIC
	q       []*HRTimer
	// running is the timer whose callback runs right now (base->running);
	// runningCtx is the context it runs in, to recognise a callback that
	// cancels its own timer.
	running    *HRTimer
	runningCtx *kernel.Ctx
	migration  bool // the migration sentinel
}

// getState returns k's hrtimer state, creating it (and registering the
// clock-event hook and the HRTIMER_SOFTIRQ handler) on first use.
func getState(k *kernel.Kernel) *hrtimerState {
	return k.Local(&stateKey, newState).(*hrtimerState)
}

func newState(k *kernel.Kernel) any {
	st := &hrtimerState{k: k}
	// In virtual time both reads see the same clock. In real time the
	// second read is a little later, so the offset is low by the time
	// between them (tens of ns): realtime timers and clocks agree with
	// each other exactly and with KtimeGetRealNs to within that.
	st.realOff = k.RealtimeOffset()
	st.migration.migration = true
	st.cpus = make([]cpuBase, k.NumCPUs())
	for i := range st.cpus {
		cb := &st.cpus[i]
		cb.st = st
		cb.cpu = i
		cb.tr = k.Tracer()
		cb.expiresNext = kernel.NoEvent
		for j := range cb.clock {
			b := &cb.clock[j]
			b.cpu = cb
			b.index = j
			switch j % (maxClockBases / 2) {
			case baseMonotonic:
				b.clockid = ClockMonotonic
			case baseRealtime:
				b.clockid = ClockRealtime
				b.offset = st.realOff
			case baseBoottime:
				b.clockid = ClockBoottime
			case baseTAI:
				b.clockid = ClockTAI
				b.offset = st.realOff
			}
		}
	}
	// The handler is installed before the hook is published: the atomic
	// publication orders it before any raise of HRTIMER_SOFTIRQ.
	k.OpenSoftirq(kernel.HRTimerSoftirq, st.runSoftirq)
	k.RegisterClockEvents(st)
	return st
}

// getTime is base->get_time(): the clock's current time.
func (b *clockBase) getTime() int64 { return b.cpu.st.k.Now() + b.offset }

// lockBase is lock_hrtimer_base(): it locks and returns the base t is on,
// following t if it migrates meanwhile. It returns nil, locking nothing,
// for a timer that has no base yet.
func lockBase(t *HRTimer) *clockBase {
	for {
		b := t.base.Load()
		if b == nil {
			return nil
		}
		if b.migration {
			runtime.Gosched()
			continue
		}
		b.cpu.lock.Lock()
		if t.base.Load() == b {
			return b
		}
		b.cpu.lock.Unlock()
	}
}

// stableBase returns t's base without locking it, waiting out a migration.
func stableBase(t *HRTimer) *clockBase {
	for {
		b := t.base.Load()
		if b == nil || !b.migration {
			return b
		}
		runtime.Gosched()
	}
}

// less orders the queue: hard expiry, then enqueue order.
func less(a, b *HRTimer) bool {
	return a.expires < b.expires || (a.expires == b.expires && a.seq < b.seq)
}

func (b *clockBase) swap(i, j int) {
	b.q[i], b.q[j] = b.q[j], b.q[i]
	b.q[i].heapIdx = i
	b.q[j].heapIdx = j
}

func (b *clockBase) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(b.q[i], b.q[p]) {
			return
		}
		b.swap(i, p)
		i = p
	}
}

func (b *clockBase) down(i int) {
	n := len(b.q)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && less(b.q[r], b.q[l]) {
			m = r
		}
		if !less(b.q[m], b.q[i]) {
			return
		}
		b.swap(i, m)
		i = m
	}
}

// enqueue is enqueue_hrtimer(): it queues t (already pointing at b) and
// reports whether it became the first timer of the base. b's lock is held.
func (b *clockBase) enqueue(t *HRTimer) bool {
	cb := b.cpu
	cb.seq++
	t.seq = cb.seq
	if t.id == 0 {
		t.id = cb.st.nextID.Add(1)
	}
	t.state.Store(StateEnqueued)
	t.heapIdx = len(b.q)
	b.q = append(b.q, t)
	b.up(t.heapIdx)
	return t.heapIdx == 0
}

// remove is __remove_hrtimer(): it dequeues t if it is queued and sets
// its state to newState. It reports whether t was queued.
func (b *clockBase) remove(t *HRTimer, newState uint32) bool {
	was := t.state.Load()&StateEnqueued != 0
	t.state.Store(newState)
	if !was {
		return false
	}
	i := t.heapIdx
	last := len(b.q) - 1
	if i != last {
		b.swap(i, last)
	}
	b.q[last] = nil
	b.q = b.q[:last]
	if i != last {
		b.down(i)
		b.up(i)
	}
	t.heapIdx = -1
	return true
}

// firstExpiry returns the hard expiry of the base's first timer on
// CLOCK_MONOTONIC (never negative, as in __hrtimer_next_event_base), or
// NoEvent for an empty base.
func (b *clockBase) firstExpiry() int64 {
	if len(b.q) == 0 {
		return kernel.NoEvent
	}
	e := b.q[0].expires - b.offset
	if e < 0 {
		e = 0
	}
	return e
}

// nextEvent is __hrtimer_get_next_event over the hard bases and, unless the
// softirq is already raised, the soft ones. cb's lock is held.
func (cb *cpuBase) nextEvent() int64 {
	next := cb.hardNext()
	if !cb.softirqActivated {
		next = min(next, cb.softNext())
	}
	return next
}

func (cb *cpuBase) hardNext() int64 {
	next := kernel.NoEvent
	for i := 0; i < maxClockBases/2; i++ {
		next = min(next, cb.clock[i].firstExpiry())
	}
	return next
}

func (cb *cpuBase) softNext() int64 {
	next := kernel.NoEvent
	for i := maxClockBases / 2; i < maxClockBases; i++ {
		next = min(next, cb.clock[i].firstExpiry())
	}
	return next
}

// needsKick is the part of hrtimer_reprogram() that decides whether the
// CPU's clock-event device must be reprogrammed for t, just enqueued on b
// as its first timer. cb's lock is held. After an interrupt hang the
// device is left as hrtimer_interrupt programmed it (__hrtimer_reprogram).
func (cb *cpuBase) needsKick(b *clockBase, t *HRTimer) bool {
	if cb.inHrtirq || (t.isSoft && cb.softirqActivated) || cb.hangDetected {
		return false
	}
	e := t.expires - b.offset
	if e < 0 {
		e = 0
	}
	return e < cb.expiresNext
}

// NextEvent implements kernel.ClockEvents: the earliest hard expiry on cpu
// (CLOCK_MONOTONIC ns) of the hard bases and, unless HRTIMER_SOFTIRQ is
// already raised, the soft bases — the value hrtimer_update_next_event
// programs into the clock-event device.
func (st *hrtimerState) NextEvent(cpu int) int64 {
	cb := &st.cpus[cpu]
	cb.lock.Lock()
	next := cb.nextEvent()
	if next < cb.forcedNext {
		next = cb.forcedNext // the device was programmed with force
	}
	cb.expiresNext = next
	cb.lock.Unlock()
	return next
}

// minDeltaNs is the clock-event device's min_delta_ns: an event programmed
// with force for a time already past, or nearer than this, fires this far
// ahead (clockevents_program_min_delta; cev_delta2ns never gives less than
// 1 µs, "deltas less than 1usec are pointless noise").
const minDeltaNs = 1000

// maxHangDelayNs is hrtimer_interrupt's cap on the delay after a hang:
// "Give the CPU at least 100ms to catch up".
const maxHangDelayNs = 100 * 1000 * 1000

// Tick implements kernel.ClockEvents: hrtimer_interrupt() on c's CPU, in
// hardirq context. It raises HRTIMER_SOFTIRQ if a soft timer's hard expiry
// has passed, then expires the hard bases. If the next event is due
// already once they ran (a callback that took long, or one that restarted
// its timer without forwarding it), it tries again, three times at most;
// then it counts a hang, programs the next interrupt as far ahead as the
// interrupt took (100 ms at most, 1 µs at least) and reports
// "hrtimer: interrupt took N ns" once per kernel (pr_warn_once).
//
// Tick runs when any ClockEvents source of the CPU is due; before the
// time a forced programming set, the hrtimer device has not fired and
// Tick does nothing.
func (st *hrtimerState) Tick(c *kernel.Ctx) {
	cb := &st.cpus[c.CPU()]
	cb.lock.Lock()
	entry := st.k.Now()
	if entry < cb.forcedNext {
		cb.lock.Unlock()
		return
	}
	cb.forcedNext = 0
	cb.nrEvents++
	now := entry
	for retries := 0; ; {
		cb.inHrtirq = true
		if !cb.softirqActivated && now >= cb.softNext() {
			cb.softirqActivated = true
			kernel.RaiseSoftirqIrqoff(c, kernel.HRTimerSoftirq)
		}
		cb.runQueues(c, now, false)
		cb.inHrtirq = false
		// tick_program_event(expires_next, 0) fails for a time already
		// past.
		next := cb.nextEvent()
		now = st.k.Now()
		if next > now {
			cb.hangDetected = false
			cb.lock.Unlock()
			return
		}
		cb.nrRetries++
		if retries++; retries < 3 {
			continue
		}
		break
	}
	cb.nrHangs++
	cb.hangDetected = true
	delta := now - entry
	if uint32(delta) > cb.maxHangTime {
		cb.maxHangTime = uint32(delta)
	}
	cb.forcedNext = now + max(min(delta, maxHangDelayNs), minDeltaNs)
	cb.lock.Unlock()
	if !st.warnedHang.Swap(true) {
		kernel.Printk(c, printk.LevelWarning, "hrtimer: interrupt took %d ns\n", delta)
	}
}

// runSoftirq is hrtimer_run_softirq(), the HRTIMER_SOFTIRQ handler: it
// expires the soft bases in softirq context.
func (st *hrtimerState) runSoftirq(c *kernel.Ctx) {
	cb := &st.cpus[c.CPU()]
	cb.lock.Lock()
	now := st.k.Now()
	cb.runQueues(c, now, true)
	cb.softirqActivated = false
	// hrtimer_update_softirq_timer: the soft bases take part in the
	// CPU's next event again. The CPU need not be told when the softirq
	// ran on its own idle task's interrupt exit: it re-evaluates then.
	softNext := cb.softNext()
	if softNext <= now && !cb.hangDetected {
		// Reprogrammed with force for a time already past: the
		// device's minimum delta (a callback that restarted its soft
		// timer without forwarding it).
		cb.forcedNext = max(cb.forcedNext, now+minDeltaNs)
	}
	kick := softNext < cb.expiresNext && !c.Current().IsIdle()
	cb.lock.Unlock()
	if kick {
		st.k.KickCPU(cb.cpu)
	}
}

// runQueues is __hrtimer_run_queues(): for each hard (or soft) base in
// index order it expires timers in queue order while the base's time has
// reached their soft expiry, and stops at the first one whose soft expiry
// is still ahead — the rule that lets a range timer fire early along with
// another expiry (coalescing) without searching the queue for it. cb's
// lock is held; it is dropped around each callback.
func (cb *cpuBase) runQueues(c *kernel.Ctx, now int64, soft bool) {
	lo := 0
	if soft {
		lo = maxClockBases / 2
	}
	cb.pass++
	for i := lo; i < lo+maxClockBases/2; i++ {
		b := &cb.clock[i]
		basenow := now + b.offset
		for len(b.q) > 0 {
			t := b.q[0]
			if basenow < t.softexpires {
				break
			}
			if t.ranPass == cb.pass {
				// t already ran in this pass and was re-armed at a
				// time already past (a Restart without forwarding,
				// say). The kernel would run it again and again here,
				// never leaving the interrupt (a hard lockup); kdefer
				// leaves it to the next pass: hrtimer_interrupt's
				// retries, then its hang handling, or the softirq's
				// next run.
				break
			}
			t.ranPass = cb.pass
			cb.runTimer(c, b, t, soft)
		}
	}
}

// runTimer is __run_hrtimer(): t is dequeued and marked running, its
// callback runs without the lock, and if it returns Restart and did not
// requeue the timer itself, t is enqueued again at its expiry.
func (cb *cpuBase) runTimer(c *kernel.Ctx, b *clockBase, t *HRTimer, soft bool) {
	b.running = t
	b.runningCtx = c
	cb.traceCancel(c, t)
	b.remove(t, StateInactive)
	fn := t.function
	gen := t.setupGen
	cb.lock.Unlock()
	if cb.tr.On(trace.HrtimerExpireEntry) {
		emitExpireEntry(c, b, t, fn)
	}
	restart := cb.call(c, b, t, fn, soft)
	cb.traceExpireExit(c, t)
	cb.lock.Lock()
	// Not if the callback re-queued it itself, nor if it set the timer up
	// afresh (it then waits for its next start).
	if restart != NoRestart && t.state.Load()&StateEnqueued == 0 && t.base.Load() == b && t.setupGen == gen {
		b.enqueue(t)
		cb.traceRestart(c, t)
	}
	b.running = nil
	b.runningCtx = nil
	if cb.waiters > 0 {
		kernel.WakeUpVar(c, t)
	}
}

// call runs a callback. If it panics, the base is left consistent (no
// timer running, the softirq no longer marked active, the lock not held)
// before the panic goes on to the kernel's Oops handling.
func (cb *cpuBase) call(c *kernel.Ctx, b *clockBase, t *HRTimer, fn func(*kernel.Ctx, *HRTimer) HRTimerRestart, soft bool) HRTimerRestart {
	done := false
	defer cb.recoverCall(c, t, &done, b, soft)
	r := fn(c, t)
	done = true
	return r
}

func (cb *cpuBase) recoverCall(c *kernel.Ctx, t *HRTimer, done *bool, b *clockBase, soft bool) {
	if *done {
		return
	}
	cb.lock.Lock()
	b.running = nil
	b.runningCtx = nil
	if soft {
		cb.softirqActivated = false
	} else {
		cb.inHrtirq = false
	}
	if cb.waiters > 0 {
		kernel.WakeUpVar(c, t)
	}
	cb.lock.Unlock()
}
