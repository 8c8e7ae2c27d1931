package timer

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"unsafe"

	"github.com/kdefer/kdefer/debugobjects"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// Func is a timer callback. It runs in TIMER_SOFTIRQ context on the CPU the
// timer was queued on (c.InServingSoftirq() is true; with FlagIRQSafe,
// interrupts are also disabled) and must not sleep. The timer is no longer
// pending when it runs, so the callback may re-arm it with Mod.
//
// The kernel's callback receives only the timer; kdefer also passes the
// execution context, which the kernel keeps implicitly in current and the
// per-CPU preempt count.
type Func func(c *kernel.Ctx, t *Timer)

// odebug states of a timer (lib/debugobjects.c obj_states).
const (
	odebugNone uint8 = iota
	odebugInit
	odebugDestroyed
)

// system is one kernel's timer state: three bases per CPU, as since v6.9:
// BASE_LOCAL for pinned timers, BASE_GLOBAL for the others and BASE_DEF
// for deferrable ones, expired in that order.
type system struct {
	k         *kernel.Kernel
	bases     []*timerBase
	migrating timerBase // sentinel base of a timer moving between CPUs
}

// timerBase is struct timer_base: a wheel, its lock and the bookkeeping of
// the callback being run.
type timerBase struct {
	// The fields the arm and cancel paths read first, beside the lock.
	mu         sync.Mutex
	sentinel   bool // the migrating placeholder, never locked
	deferrable bool
	kind       int            // baseLocal, baseGlobal or baseDef
	cpu        int            // the CPU whose base this is
	k          *kernel.Kernel // sys.k
	tr         *trace.Tracer  // the kernel's, for the tracepoints

	w        wheel
	sys      *system
	name     string      // BASE_LOCAL, BASE_GLOBAL or BASE_DEF
	runCtx   *kernel.Ctx // the softirq context running callbacks, nil otherwise
	expireFn func(*Timer)
	waiters  int // timer_delete_sync callers waiting for a running callback
}

var sysKey kernel.LocalKey

func sysOf(k *kernel.Kernel) *system { return k.Local(&sysKey, newSystem).(*system) }

func newSystem(k *kernel.Kernel) any {
	s := &system{k: k}
	s.migrating.sentinel = true
	j := k.Jiffies()
	for cpu := 0; cpu < k.NumCPUs(); cpu++ {
		for i, name := range baseNames {
			b := &timerBase{sys: s, k: k, cpu: cpu, kind: i, name: name, deferrable: i == baseDef, tr: k.Tracer()}
			b.w.reset(k.HZ(), j)
			b.expireFn = b.expire
			s.bases = append(s.bases, b)
		}
	}
	k.OpenSoftirq(kernel.TimerSoftirq, s.runTimerSoftirq)
	k.RegisterClockEvents(s)
	return s
}

// The bases of a CPU, in the order the timer softirq expires them.
const (
	baseLocal = iota
	baseGlobal
	baseDef
	nrBases
)

var baseNames = [nrBases]string{"BASE_LOCAL", "BASE_GLOBAL", "BASE_DEF"}

// base is get_timer_cpu_base(): the base t's flags select on cpu.
func (s *system) base(cpu int, t *Timer) *timerBase {
	return s.bases[cpu*nrBases+t.baseKind()]
}

// baseKind is the kind of base t's flags select.
func (t *Timer) baseKind() int {
	if t.deferrable {
		return baseDef
	}
	if t.pinned {
		return baseLocal
	}
	return baseGlobal
}

// cpuBases returns cpu's bases in expiry order.
func (s *system) cpuBases(cpu int) []*timerBase {
	return s.bases[cpu*nrBases : cpu*nrBases+nrBases]
}

// lockBase is lock_timer_base(): it returns t's base locked, or nil if t
// was never armed. While t moves between CPUs it points at a sentinel base
// (TIMER_MIGRATING) and lockBase waits.
func (t *Timer) lockBase() *timerBase {
	if b := t.base.Load(); b != nil && !b.sentinel {
		b.mu.Lock()
		if t.base.Load() == b {
			return b
		}
		b.mu.Unlock()
	}
	return t.lockBaseSlow()
}

// lockBaseSlow is lockBase's loop, for a timer that is migrating or whose
// base changed while lockBase took the lock.
func (t *Timer) lockBaseSlow() *timerBase {
	for {
		b := t.base.Load()
		if b == nil {
			return nil
		}
		if b.sentinel {
			runtime.Gosched()
			continue
		}
		b.mu.Lock()
		if t.base.Load() == b {
			return b
		}
		b.mu.Unlock()
	}
}

// lockOrClaimBase returns t's base locked; a timer that never had one (the
// kernel's timer always has one, from the CPU in its flags) is given
// cpu's, so that every change to it happens under a base lock.
func (t *Timer) lockOrClaimBase(k *kernel.Kernel, cpu int) *timerBase {
	if b := t.lockBase(); b != nil {
		return b
	}
	return t.claimBase(k, cpu)
}

// claimBase is lockOrClaimBase's slow path, for a timer with no base.
func (t *Timer) claimBase(k *kernel.Kernel, cpu int) *timerBase {
	var b *timerBase
	for b == nil {
		target := sysOf(k).base(cpu, t)
		target.mu.Lock()
		if t.base.CompareAndSwap(nil, target) {
			return target
		}
		target.mu.Unlock()
		b = t.lockBase()
	}
	return b
}

// Setup is timer_setup(t, fn, flags): it initialises t with callback fn and
// flags (FlagDeferrable, FlagPinned, FlagIRQSafe; any other bit is warned
// about and dropped). c may be nil where no kernel context is at hand.
//
// A nil fn is accepted without a report, as in the kernel: the timer then
// looks shut down, so arming it is silently discarded (Mod returns 0 and
// nothing fires), as v6.2+ __mod_timer does for a NULL timer->function.
// (hrtimer.Setup, by contrast, WARNs about a nil callback, as
// hrtimer_setup does.)
//
// Setting up a timer that is still pending is the bug debugobjects reports
// as "ODEBUG: init active": kdefer prints that warning, deactivates the
// timer first (the debugobjects fixup, timer_delete_sync) and then
// re-initialises it.
func Setup(c *kernel.Ctx, t *Timer, fn Func, flags uint32) {
	if b := t.base.Load(); b != nil && !b.sentinel {
		if Pending(t) {
			if c == nil {
				c = b.sys.k.IdleCtx(b.cpu)
			}
			odebugReport(c, "init", "active", t)
			DeleteSync(c, t)
		}
		// timer_setup initialises the timer completely: one last armed
		// in another kernel (say, one that was shut down) starts afresh
		// in c's, unless its callback is still running there.
		if c != nil && b.sys.k != c.Kernel() {
			b.mu.Lock()
			if t.base.Load() == b && b.w.runningTimer != t && !t.pending() {
				t.base.Store(nil)
			}
			b.mu.Unlock()
		}
	}
	if flags&^flagInitMask != 0 {
		if c != nil {
			kernel.WarnOnce(c, true, "timer_setup: invalid flags %#x\n", flags&^flagInitMask)
		}
		flags &= flagInitMask
	}
	t.function = fn
	t.flags = flags
	t.deferrable = flags&FlagDeferrable != 0
	t.pinned = flags&FlagPinned != 0
	t.irqsafe = flags&FlagIRQSafe != 0
	t.odebug = odebugInit
	traceInit(c, t)
}

func odebugReport(c *kernel.Ctx, msg, state string, t *Timer) {
	hint := "0x0" // %pS of a NULL function
	if t.function != nil {
		hint = funcName(t.function) + "+0x0/0x10"
	}
	debugobjects.Report(c, msg, state, odebugToken(t), "timer_list", hint)
}

// debugAssertInit is debug_assert_init(): a timer that was never set up is
// reported ("assert_init not available") and fixed up as the kernel's
// timer_fixup_assert_init does, by setting it up with stub_timer, which
// warns if it ever runs.
func debugAssertInit(c *kernel.Ctx, t *Timer) {
	if t.odebug != odebugNone {
		return
	}
	odebugReport(c, "assert_init", "not available", t)
	t.function = stubTimer
	t.odebug = odebugInit
}

// odebugToken stands for the object pointer of the report; it is stable
// across runs so virtual-time logs stay reproducible.
func odebugToken(*Timer) string { return "000000003e8f1e72" }

// ContainerOf returns the value of type T in which t is embedded at byte
// offset off — the kernel's from_timer()/timer_container_of():
//
//	priv := timer.ContainerOf[stCtx](t, unsafe.Offsetof(stCtx{}.tmr))
//
// t must really be the field at off of a T. In Go a callback can usually
// just capture its owner in a closure at Setup time instead.
func ContainerOf[T any](t *Timer, off uintptr) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(t), -int(off)))
}

// Pending is timer_pending(): whether t is queued. It is a snapshot; the
// timer may fire or be re-armed right after.
func Pending(t *Timer) bool {
	b := t.lockBase()
	if b == nil {
		return false
	}
	p := t.pending()
	b.mu.Unlock()
	return p
}

// Expires returns t.expires (timer->expires), the absolute expiry in
// jiffies last set by an arm operation.
func Expires(t *Timer) uint64 {
	b := t.lockBase()
	if b == nil {
		return t.expires
	}
	e := t.expires
	b.mu.Unlock()
	return e
}

// SetExpires sets t.expires of an inactive timer before Add, as kernel code
// assigns timer->expires. Setting it on a pending timer has no effect on
// when it fires (use Mod).
func SetExpires(t *Timer, expires uint64) {
	b := t.lockBase()
	t.expires = expires
	if b != nil {
		b.mu.Unlock()
	}
}

const (
	modNormal = iota
	modPendingOnly
	modReduce
	modAddOn // add_timer_on: moves the timer even while its callback runs
)

// modTimer is __mod_timer() on the calling CPU's base (cpu < 0) or on cpu.
func modTimer(c *kernel.Ctx, t *Timer, expires uint64, mode int, cpu int) int {
	if t.odebug == odebugNone {
		debugAssertInit(c, t)
	}
	k := c.Kernel()
	if cpu < 0 {
		cpu = c.CPU()
	}
	b := t.lockBase()
	if b == nil {
		b = t.claimBase(k, cpu)
	}
	if t.function == nil { // shut down: arming is silently ignored
		b.mu.Unlock()
		return 0
	}
	s := b.sys
	if s.k != k {
		b.mu.Unlock()
		kernel.WarnOnce(c, true, "timer armed in two kernels\n")
		return 0
	}
	if t.pprev != nil && t.rearmIsNoop(expires, mode == modReduce) {
		// The fast path, taken before the clock is read.
		b.mu.Unlock()
		return 1
	}
	// In real time, the jiffies the caller has just read (c.Jiffies())
	// rather than a second clock read: never ahead of the clock, so the
	// base is forwarded no further than the kernel's would be.
	now := c.ArmJiffies()
	floor, floorSet := b.w.runFloor, b.w.runFloorSet
	var ret int
	var kick bool
	switch {
	case b.cpu == cpu && b.kind == t.baseKind() && mode != modPendingOnly && t.pprev == nil:
		// Arming an inactive timer on the base it is on: add_timer.
		pre := b.tracePre(t)
		kick = b.w.arm(t, expires, now)
		b.tracePost(c, t, pre)
	case b.cpu == cpu && b.kind == t.baseKind():
		pre := b.tracePre(t)
		ret, kick = b.w.modKick(t, expires, mode == modPendingOnly, mode == modReduce, now)
		b.tracePost(c, t, pre)
	default:
		// The base the flags select on the target CPU: a timer set up
		// again with or without FlagDeferrable changes wheels on its
		// next arm, as the kernel's timer->flags do.
		target := s.base(cpu, t)
		// __mod_timer leaves a timer whose callback is running on its
		// base; add_timer_on moves it regardless.
		if (b.w.runningTimer != t || mode == modAddOn) && (mode != modPendingOnly || t.pending()) {
			// As in __mod_timer, a pending timer whose new expiry falls
			// in the bucket it already occupies stays on its base.
			if t.pending() {
				if _, _, same := b.w.rearmSameBucket(t, expires, mode == modReduce, now); same {
					b.mu.Unlock()
					return 1
				}
			}
			return migrateTimer(c, t, b, target, expires, now)
		}
		pre := b.tracePre(t)
		ret, kick = b.w.modKick(t, expires, mode == modPendingOnly, mode == modReduce, now)
		b.tracePost(c, t, pre)
	}
	if b.w.runFloorSet && (b.w.runFloor != floor || !floorSet) {
		// Queued already due: it runs from the tick after the current
		// jiffy, which now, read earlier by the caller, may lag.
		b.raiseFloor(c)
	}
	if kick && !b.deferrable {
		cpuOf := b.cpu
		b.mu.Unlock()
		k.KickCPU(cpuOf)
		return ret
	}
	b.mu.Unlock()
	return ret
}

// raiseFloor makes b's run floor the tick after the current jiffy, when it
// was set from a jiffies value that may lag the clock, by an arm from c.
//
// An arm from a task of b's CPU while that CPU's timer softirq runs b
// (in real time a task's goroutine runs beside its CPU's interrupts) also
// holds the run in progress at the floor: in the kernel the task could
// only have armed after that softirq, which runs on the task's CPU before
// the task resumes, so the run must not pick the timer up in this jiffy.
// An arm from another CPU, or from a callback of the run, is picked up by
// the run in progress if it is due, as in the kernel.
func (b *timerBase) raiseFloor(c *kernel.Ctx) {
	w := &b.w
	if j := c.Kernel().Jiffies() + 1; jiffies.TimeBefore(w.runFloor, j) {
		w.runFloor = j
	}
	if b.runCtx != nil && c.CPU() == b.cpu && c.InTask() {
		w.floorHolds = true
	}
}

// migrateTimer moves t from base b (locked) to target, the calling CPU's
// base, as __mod_timer does when the timer's callback is not running.
func migrateTimer(c *kernel.Ctx, t *Timer, b, target *timerBase, expires uint64, now uint64) int {
	// modTimer has already returned for a re-arm that changes nothing.
	b.traceCancel(c, t)
	ret := b.w.detach(t, true)
	t.base.Store(&b.sys.migrating)
	b.mu.Unlock()
	target.mu.Lock()
	t.base.Store(target)
	target.w.forward(now)
	t.expires = expires
	floor, floorSet := target.w.runFloor, target.w.runFloorSet
	kick := target.w.add(t, now)
	target.traceStart(c, t)
	if target.w.runFloorSet && (target.w.runFloor != floor || !floorSet) {
		target.raiseFloor(c)
	}
	target.mu.Unlock()
	if kick && !target.deferrable {
		c.Kernel().KickCPU(target.cpu)
	}
	return ret
}

func stubTimer(c *kernel.Ctx, t *Timer) {
	kernel.Warn(c, "stub timer called: the timer was armed without timer_setup()\n")
}

// Add is add_timer(t): it arms an inactive timer at t's expires (set with
// SetExpires or by an earlier arm); an expiry in the past fires on the next
// tick. Adding a pending timer is a bug: kdefer warns (WARN_ON_ONCE, as
// kernels since v6.x do instead of BUG_ON) and leaves the timer alone.
func Add(c *kernel.Ctx, t *Timer) {
	if Pending(t) {
		kernel.WarnOnce(c, true, "add_timer() on a pending timer\n")
		return
	}
	modTimer(c, t, t.expires, modNormal, -1)
}

// AddOn is add_timer_on(t, cpu): Add on the given CPU's base. As in v6.9+
// the timer becomes pinned.
//
// As in the kernel, AddOn moves the timer even while its callback runs
// (so a callback may walk its timer across CPUs), and a DeleteSync after
// such a move looks at the new base: it does not wait for the callback
// still running on the old one. From outside the callback, make sure it
// is not running (DeleteSync first) before calling AddOn.
func AddOn(c *kernel.Ctx, t *Timer, cpu int) {
	if cpu < 0 || cpu >= c.Kernel().NumCPUs() {
		kernel.Warn(c, "add_timer_on: invalid cpu %d\n", cpu)
		return
	}
	if Pending(t) {
		kernel.WarnOnce(c, true, "add_timer_on() on a pending timer\n")
		return
	}
	setPinned(t, true)
	modTimer(c, t, t.expires, modAddOn, cpu)
}

// AddLocal is add_timer_local(): Add with FlagPinned set (v6.9+).
func AddLocal(c *kernel.Ctx, t *Timer) {
	setPinned(t, true)
	Add(c, t)
}

// AddGlobal is add_timer_global(): Add with FlagPinned cleared (v6.9+).
func AddGlobal(c *kernel.Ctx, t *Timer) {
	setPinned(t, false)
	Add(c, t)
}

// setPinned sets or clears FlagPinned under the timer's base lock (flags
// also carries the bucket index).
func setPinned(t *Timer, on bool) {
	b := t.lockBase()
	if on {
		t.flags |= FlagPinned
	} else {
		t.flags &^= FlagPinned
	}
	t.pinned = on
	if b != nil {
		b.mu.Unlock()
	}
}

// Mod is mod_timer(t, expires): it (re)arms t to fire at jiffies expires,
// equivalent to timer_delete + set expires + add_timer but atomic. It
// returns 0 if t was inactive and 1 if it was pending (whether it was
// requeued or left as it was: re-arming to the same expiry, or to one in
// the same wheel bucket, only updates the expiry). A shut-down timer is not
// armed and 0 is returned. Re-arming allocates nothing.
func Mod(c *kernel.Ctx, t *Timer, expires uint64) int {
	// The common case inline: a set-up timer armed again on the base it
	// is on (the calling CPU's, of its kind), the base's clock current,
	// tracing off, an expiry on a level below the last. Anything else,
	// and every report, is armLocked's or modTimer's; the fast path
	// bails out to them before it changes anything.
	b := t.base.Load()
	if b == nil || b.sentinel {
		return modTimer(c, t, expires, modNormal, -1)
	}
	b.mu.Lock()
	if t.base.Load() != b {
		b.mu.Unlock()
		return modTimer(c, t, expires, modNormal, -1)
	}
	ret := 0
	if t.pprev != nil {
		if t.expires == expires {
			// The networking fast path (rearmIsNoop), before the clock
			// is read: a pending timer is set up and not shut down.
			b.mu.Unlock()
			return 1
		}
		ret = 1
	}
	if t.odebug == odebugNone || t.function == nil || b.k != c.Kernel() || b.cpu != c.CPU() || b.kind != t.baseKind() {
		b.mu.Unlock()
		return modTimer(c, t, expires, modNormal, -1)
	}
	now, ok := c.TakeJiffies() // Ctx.ArmJiffies, in two inlined halves
	if !ok {
		now = c.Kernel().Jiffies()
	}
	w := &b.w
	// The bucket, as wheel.arm chooses it when the clock needs no
	// forwarding (now is not after clk) and the delta is below the last
	// level. The bucket then expires after clk, and so after now: the
	// run floor is not concerned (noteQueued).
	delta := expires - w.clk
	if b.tr.OnAny(modEvents) || jiffies.TimeAfter(now, w.clk) || delta >= lvlStart(lvlDepthLow-1) {
		return b.armLocked(c, t, expires, now, ret)
	}
	var idx uint
	var bucketExpiry uint64
	if delta < lvlStart(1) {
		idx, bucketExpiry = uint(expires+1)&lvlMask, expires+1
	} else {
		lvl := uint(lvlOfLen[bits.Len64(delta)])
		if delta < lvlStartTab[lvl&15] {
			lvl--
		}
		sh := lvlShift(lvl)
		e := (expires >> sh) + 1
		idx, bucketExpiry = lvlOffs(lvl)+uint(e&lvlMask), e<<sh
	}
	t.expires = expires
	if pprev := t.pprev; pprev != nil {
		old := t.wheelIdx()
		if idx == old {
			// mod_timer's same-bucket shortcut: only the expiry changes.
			b.mu.Unlock()
			return 1
		}
		next := t.next
		*pprev = next
		if next != nil {
			next.pprev = pprev
		} else if pprev == &w.vectors[old] {
			w.pendingMap[old/lvlSize] &^= 1 << (old % lvlSize)
			w.nextExpiryRecalc = true
		}
	}
	h := &w.vectors[idx]
	first := *h
	t.next = first
	if first != nil {
		first.pprev = &t.next
	}
	*h = t
	t.pprev = h
	w.pendingMap[idx/lvlSize] |= 1 << (idx % lvlSize)
	t.flags = (t.flags &^ flagArrayMask) | uint32(idx)<<flagArrayShift
	if jiffies.TimeBefore(bucketExpiry, w.nextExpiry) {
		w.nextExpiry = bucketExpiry
		w.timersPending = true
		w.nextExpiryRecalc = false
		return b.unlockKick(c, ret)
	}
	b.mu.Unlock()
	return ret
}

// armLocked is Mod's wheel work for the cases its inline path leaves
// out (a clock to forward, tracing on, the last level, an expiry in the
// past), with t's base b locked and the checks made: mod_timer's locked
// part on the base the timer is on. It unlocks b.
//
//go:noinline
func (b *timerBase) armLocked(c *kernel.Ctx, t *Timer, expires, now uint64, ret int) int {
	floor, floorSet := b.w.runFloor, b.w.runFloorSet
	pre := b.tracePre(t)
	kick := b.w.arm(t, expires, now)
	b.tracePost(c, t, pre)
	if b.w.runFloorSet && (b.w.runFloor != floor || !floorSet) {
		b.raiseFloor(c)
	}
	if kick {
		return b.unlockKick(c, ret)
	}
	b.mu.Unlock()
	return ret
}

// unlockKick unlocks b, whose next expiry an arm has just moved earlier,
// and kicks its CPU (trigger_dyntick_cpu) unless b is deferrable. It
// returns ret.
//
//go:noinline
func (b *timerBase) unlockKick(c *kernel.Ctx, ret int) int {
	cpu, deferrable := b.cpu, b.deferrable
	b.mu.Unlock()
	if !deferrable {
		c.Kernel().KickCPU(cpu)
	}
	return ret
}

// ModPending is mod_timer_pending(): Mod only if t is pending; an inactive
// timer is left alone and 0 returned.
func ModPending(c *kernel.Ctx, t *Timer, expires uint64) int {
	return modTimer(c, t, expires, modPendingOnly, -1)
}

// Reduce is timer_reduce(): like Mod but a pending timer only ever moves
// earlier (a later expires returns 1 and changes nothing); an inactive timer
// is started (0).
func Reduce(c *kernel.Ctx, t *Timer, expires uint64) int {
	return modTimer(c, t, expires, modReduce, -1)
}

// Delete is timer_delete() (del_timer): it deactivates t and returns 1 if
// it was pending, 0 if not. It does not wait for a callback that is running
// on another CPU, and does not stop the callback from re-arming t: use
// DeleteSync before freeing or unloading.
//
// The kernel's timer_delete also reports a timer that was never set up
// (debug_assert_init); Delete, TryDeleteSync and Shutdown take no context
// to report in and return 0 for it silently. DeleteSync, ShutdownSync, Mod
// and Add report it.
func Delete(t *Timer) int {
	b := t.base.Load()
	if b == nil || b.sentinel {
		return deleteSlow(t)
	}
	b.mu.Lock()
	if t.base.Load() != b {
		b.mu.Unlock()
		return deleteSlow(t)
	}
	if t.pprev == nil {
		b.mu.Unlock()
		return 0
	}
	b.traceCancelNoCtx(t)
	b.w.detachPending(t)
	b.mu.Unlock()
	return 1
}

// deleteSlow is Delete for a timer that is migrating, or whose base
// changed while Delete took the lock, or that has none.
func deleteSlow(t *Timer) int {
	b := t.lockBase()
	if b == nil {
		return 0
	}
	ret := 0
	if t.pprev != nil {
		b.traceCancelNoCtx(t)
		ret = b.w.detach(t, true)
	}
	b.mu.Unlock()
	return ret
}

// TryDeleteSync is try_to_del_timer_sync() (timer_delete_sync_try): 0/1 as
// Delete, or -1 if t's callback is running right now (it is then left
// alone).
func TryDeleteSync(t *Timer) int {
	b := t.lockBase()
	if b == nil {
		return 0
	}
	ret := -1
	if b.w.runningTimer != t {
		b.traceCancelNoCtx(t)
		ret = b.w.detach(t, true)
	}
	b.mu.Unlock()
	return ret
}

// DeleteSync is timer_delete_sync() (del_timer_sync): Delete, and if the
// callback is running, wait until it has finished. On return the callback
// is not running anywhere (unless it is re-armed concurrently, which the
// caller must prevent). It returns 0/1 as Delete.
//
// The wait goes through the kernel (kernel.WaitVarEvent): a task in process
// context sleeps in TASK_UNINTERRUPTIBLE until the callback returns (the
// kernel spins, or on PREEMPT_RT sleeps on the base's expiry lock); in
// atomic context — a softirq, a hardirq for a FlagIRQSafe timer, under a
// spinlock — it busy-waits, as the kernel does. In virtual time the
// callback can only be running while it busy-waits (a long mdelay, say):
// the caller waits while virtual time moves on to the callback's end.
//
// Calling it from the timer's own callback, or from hardirq context for a
// timer without FlagIRQSafe whose callback the interrupt interrupted, would
// deadlock in the kernel; kdefer prints the kernel's warning and returns
// without waiting. As in the kernel, calling it while holding a lock that
// the callback takes deadlocks in real time; the kernel's lockdep reports
// that case, kdefer does not detect it.
func DeleteSync(c *kernel.Ctx, t *Timer) int { return deleteSync(c, t, false) }

// ShutdownSync is timer_shutdown_sync() (v6.2+): DeleteSync, and t can no
// longer be armed: Add/Mod on it are silently ignored until it is set up
// again. The shutdown takes effect before it waits for a running
// callback, so that callback cannot re-arm t either.
func ShutdownSync(c *kernel.Ctx, t *Timer) int { return deleteSync(c, t, true) }

// Shutdown is timer_shutdown(): Delete plus the shutdown of ShutdownSync,
// without waiting for a running callback. On a timer that was never armed
// it has no base to lock (it takes no context to pick one), so it must not
// race with the timer's first arm; ShutdownSync has no such limit.
func Shutdown(t *Timer) int {
	b := t.lockBase()
	t.function = nil
	if b == nil {
		return 0
	}
	b.traceCancelNoCtx(t)
	ret := b.w.detach(t, true)
	b.mu.Unlock()
	return ret
}

func deleteSync(c *kernel.Ctx, t *Timer, shutdown bool) int {
	debugAssertInit(c, t)
	if c.InHardirq() && !t.irqsafe {
		// WARN_ON in the kernel: reported every time.
		kernel.Warn(c, "timer_delete_sync() from hardirq context on a timer without TIMER_IRQSAFE\n")
	}
	for {
		b := t.lockOrClaimBase(c.Kernel(), c.CPU())
		if b.w.runningTimer == t {
			name := funcName(t.function)
			// As __try_to_del_timer_sync: a shutdown takes effect at
			// once, so the running callback cannot re-arm the timer.
			if shutdown {
				t.function = nil
			}
			// Waiting would never end: from the callback itself; from a
			// hardirq that (in the kernel) interrupted the callback on
			// its CPU, which cannot happen to a TIMER_IRQSAFE timer
			// (its callback runs with interrupts off; kdefer's hardirqs
			// run beside it, so it can wait).
			if c == b.runCtx || (c.InHardirq() && c.CPU() == b.cpu && !t.irqsafe) {
				// The kernel would spin here forever.
				b.traceCancel(c, t)
				ret := b.w.detach(t, true)
				b.mu.Unlock()
				kernel.Warn(c, "timer_delete_sync() would deadlock: %s is waiting for its own running callback\n", name)
				return ret
			}
			// Wait in the kernel's wait primitive: a task sleeps in
			// TASK_UNINTERRUPTIBLE until expire wakes it; an atomic
			// context busy-waits, as the kernel always does here.
			b.waiters++
			b.mu.Unlock()
			kernel.WaitVarEvent(c, t, func() bool { return !b.isRunning(t) })
			b.mu.Lock()
			b.waiters--
			b.mu.Unlock()
			continue
		}
		if shutdown {
			t.function = nil
		}
		b.traceCancel(c, t)
		ret := b.w.detach(t, true)
		b.mu.Unlock()
		return ret
	}
}

// expire runs one expired timer's callback (call_timer_fn) with the base
// lock dropped; the wheel has already unlinked it and marked it running.
func (b *timerBase) expire(t *Timer) {
	fn := t.function
	irqsafe := t.irqsafe
	c := b.runCtx
	baseclk := b.w.clk - 1 // the expiring bucket's clock: run advanced clk past it
	b.traceExpiring(c, t)
	b.mu.Unlock()
	if fn != nil {
		if irqsafe {
			kernel.LocalIRQDisable(c)
		}
		before := c.PreemptCount()
		if b.tr.On(trace.TimerExpireEntry) {
			emitExpireEntry(c, t, fn, baseclk)
		}
		kernel.CallHandler(c, func() { fn(c, t) })
		b.traceExpireExit(c, t)
		if after := c.PreemptCount(); after != before {
			// call_timer_fn: WARN_ONCE, then restore the count.
			kernel.WarnOnce(c, true, "timer: %s preempt leak: %08x -> %08x\n", funcName(fn), before, after)
			kernel.SetPreemptCount(c, before)
		}
		if irqsafe {
			kernel.LocalIRQEnable(c)
		}
	}
	b.mu.Lock()
	if b.waiters > 0 {
		kernel.WakeUpVar(c, t) // timer_delete_sync callers waiting for t
	}
}

// isRunning reports whether t's callback is running on b.
func (b *timerBase) isRunning(t *Timer) bool {
	b.mu.Lock()
	r := b.w.runningTimer == t
	b.mu.Unlock()
	return r
}

// runTimerSoftirq is run_timer_softirq(): expire the due timers of this
// CPU's bases (local, global, then deferrable).
func (s *system) runTimerSoftirq(c *kernel.Ctx) {
	now := s.k.Jiffies()
	for _, b := range s.cpuBases(c.CPU()) {
		b.mu.Lock()
		if b.w.due(now) {
			b.runCtx = c
			b.w.run(now, b.expireFn)
			b.runCtx = nil
		}
		b.mu.Unlock()
	}
}

// NextEvent implements kernel.ClockEvents: the CPU is going idle
// (get_next_timer_interrupt). Both of its wheels are brought up to date
// (see wheel.idle) and the time of the first standard timer returned.
// Deferrable timers never wake an idle CPU.
func (s *system) NextEvent(cpu int) int64 {
	now := s.k.Jiffies()
	var next uint64
	var pending bool
	for _, b := range s.cpuBases(cpu) {
		b.mu.Lock()
		n, p := b.w.idle(now)
		b.mu.Unlock()
		if !b.deferrable && p && (!pending || jiffies.TimeBefore(n, next)) {
			next, pending = n, true
		}
	}
	if !pending {
		return kernel.NoEvent
	}
	return s.k.JiffiesToNs(next)
}

// Tick implements kernel.ClockEvents: run_local_timers() raises
// TIMER_SOFTIRQ when a base of this CPU has reached its next expiry. As in
// the kernel this does not look at timers_pending: a stale next expiry
// costs one softirq that finds nothing and re-bases the wheel.
func (s *system) Tick(c *kernel.Ctx) {
	now := s.k.Jiffies()
	for _, b := range s.cpuBases(c.CPU()) {
		b.mu.Lock()
		due := jiffies.TimeAfterEq(now, b.w.nextExpiry) && b.w.floorReached(now)
		b.mu.Unlock()
		if due {
			kernel.RaiseSoftirqIrqoff(c, kernel.TimerSoftirq)
			return
		}
	}
}

// Init makes sure k's timer bases exist and TIMER_SOFTIRQ is installed. The
// first arm does it too; call it at boot to have the wheel dump list every
// CPU from the start.
func Init(k *kernel.Kernel) { sysOf(k) }

// Dump returns a listing of the pending timers of every CPU and base, by
// level and bucket: the wheel-dump view.
func Dump(k *kernel.Kernel) string {
	s := sysOf(k)
	out := fmt.Sprintf("jiffies: %d\n", k.Jiffies())
	for _, b := range s.bases {
		b.mu.Lock()
		out += fmt.Sprintf("cpu: %d base: %s clk: %d next_expiry: %d\n", b.cpu, b.name, b.w.clk, b.w.nextExpiryJiffies())
		out += b.w.describe()
		b.mu.Unlock()
	}
	return out
}
