package tasklet

import (
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/trace"
)

// Tasklet state bits (TASKLET_STATE_* of include/linux/interrupt.h).
const (
	// StateSched is TASKLET_STATE_SCHED: scheduled for execution (on a
	// CPU's list, or owned by tasklet_kill).
	StateSched uint32 = 1 << 0
	// StateRun is TASKLET_STATE_RUN: the callback is running (or the
	// tasklet action holds it for a moment to look at it).
	StateRun uint32 = 1 << 1
)

// Func is a tasklet callback in the v5.9+ form (tasklet_setup): it receives
// its tasklet, from which it finds its owner (FromTasklet, or a closure).
// It runs in softirq context (TASKLET_SOFTIRQ or HI_SOFTIRQ) on the CPU the
// tasklet was scheduled on and must not sleep. The kernel's callback
// receives only the tasklet; kdefer also passes the execution context.
type Func func(c *kernel.Ctx, t *Tasklet)

// OldFunc is the pre-v5.9 callback form (tasklet_init, DECLARE_TASKLET_OLD):
// it receives the unsigned long data given at initialisation.
type OldFunc func(c *kernel.Ctx, data uint64)

// Tasklet is struct tasklet_struct: a deferred function that runs once in
// softirq context after each Schedule, never on two CPUs at once. It is a
// value users embed in their own structs; scheduling it allocates nothing.
// The zero Tasklet has no callback; set it up with Setup or Init (or use
// Declare). A Tasklet must not be copied once set up.
type Tasklet struct {
	// next links the tasklet on a CPU's list (the kernel's t->next);
	// guarded by that list's lock.
	next  *Tasklet
	state atomic.Uint32 // StateSched | StateRun
	count atomic.Int32  // disable count: runs only when 0

	callback Func
	fn       OldFunc
	data     uint64

	// cpu is the CPU whose list the tasklet was last queued on; in
	// virtual time Enable nudges that CPU's busy re-polling.
	cpu atomic.Int32
}

// Setup is tasklet_setup(t, callback) (v5.9+): t is enabled, not scheduled,
// and runs callback.
func Setup(t *Tasklet, callback Func) {
	t.next = nil
	t.state.Store(0)
	t.count.Store(0)
	t.callback, t.fn, t.data = callback, nil, 0
}

// Init is tasklet_init(t, func, data), the old form: t runs fn(data).
func Init(t *Tasklet, fn OldFunc, data uint64) {
	t.next = nil
	t.state.Store(0)
	t.count.Store(0)
	t.callback, t.fn, t.data = nil, fn, data
}

// Declare is DECLARE_TASKLET(name, callback): a tasklet set up with
// callback, enabled. In Go it returns the tasklet, to be kept in a variable
// or struct field of the user's:
//
//	var myTasklet = tasklet.Declare(myCallback)
func Declare(callback Func) *Tasklet {
	t := new(Tasklet)
	Setup(t, callback)
	return t
}

// DeclareDisabled is DECLARE_TASKLET_DISABLED(name, callback): as Declare,
// but disabled (count 1): scheduling it queues it, and it runs only after
// Enable.
func DeclareDisabled(callback Func) *Tasklet {
	t := Declare(callback)
	t.count.Store(1)
	return t
}

// DeclareOld is DECLARE_TASKLET_OLD(name, func) with its data, the pre-v5.9
// form (the kernel's macro passes data 0).
func DeclareOld(fn OldFunc, data uint64) *Tasklet {
	t := new(Tasklet)
	Init(t, fn, data)
	return t
}

// FromTasklet is from_tasklet(var, t, field): the value of type T in which t
// is embedded at byte offset off (container_of):
//
//	d := tasklet.FromTasklet[dev](t, unsafe.Offsetof(dev{}.tl))
//
// t must really be the field at off of a T. A Go callback can usually just
// capture its owner in a closure instead.
func FromTasklet[T any](t *Tasklet, off uintptr) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(t), -int(off)))
}

// State returns t's state bits (StateSched, StateRun): a snapshot.
func State(t *Tasklet) uint32 { return t.state.Load() }

// DisableCount returns t's disable count (t->count): 0 when enabled.
func DisableCount(t *Tasklet) int { return int(t.count.Load()) }

// tlHead is struct tasklet_head: one CPU's list of scheduled tasklets, in
// FIFO order. The kernel guards it by disabling interrupts on its CPU;
// kdefer's contexts of one CPU may run in parallel, so a lock does.
type tlHead struct {
	mu         sync.Mutex
	head, tail *Tasklet
}

func (h *tlHead) append(t *Tasklet) {
	t.next = nil
	if h.tail == nil {
		h.head = t
	} else {
		h.tail.next = t
	}
	h.tail = t
}

// system is one kernel's tasklet state: tasklet_vec and tasklet_hi_vec.
type system struct {
	k     *kernel.Kernel
	vec   []tlHead // TASKLET_SOFTIRQ, per CPU
	hiVec []tlHead // HI_SOFTIRQ, per CPU
	// cur is the tasklet whose callback runs on each CPU right now, to
	// recognise a callback that waits for itself.
	cur []atomic.Pointer[Tasklet]
	// bh is the hook the two softirqs call before their tasklets (see
	// SetBHHook).
	bh atomic.Pointer[func(c *kernel.Ctx, highpri bool) bool]
}

var sysKey kernel.LocalKey

func sysOf(k *kernel.Kernel) *system { return k.Local(&sysKey, newSystem).(*system) }

func newSystem(k *kernel.Kernel) any {
	n := k.NumCPUs()
	s := &system{k: k, vec: make([]tlHead, n), hiVec: make([]tlHead, n), cur: make([]atomic.Pointer[Tasklet], n)}
	k.OpenSoftirq(kernel.TaskletSoftirq, func(c *kernel.Ctx) { s.action(c, s.vec, kernel.TaskletSoftirq) })
	k.OpenSoftirq(kernel.HISoftirq, func(c *kernel.Ctx) { s.action(c, s.hiVec, kernel.HISoftirq) })
	return s
}

// SetBHHook installs fn as the first thing k's TASKLET_SOFTIRQ and
// HI_SOFTIRQ handlers do on each run, before their tasklets: since v6.9
// tasklet_action() and tasklet_hi_action() call
// workqueue_softirq_action(false) and (true), by which BH workqueues
// (WQ_BH) run their work items in softirq context. fn reports whether it
// did anything (so that a pass which only re-polled disabled tasklets is
// told apart). Package workqueue installs it; the softirqs stay owned by
// this package. The hook is per kernel; a second call replaces it.
func SetBHHook(k *kernel.Kernel, fn func(c *kernel.Ctx, highpri bool) bool) {
	sysOf(k).bh.Store(&fn)
}

// InitKernel makes sure k's tasklet lists exist and the TASKLET and HI softirqs
// are installed (softirq_init). The first Schedule does it too.
func InitKernel(k *kernel.Kernel) { sysOf(k) }

// Schedule is tasklet_schedule(t): unless t is already scheduled (SCHED
// set: then nothing happens and it still runs once), t is appended to the
// tail of the calling CPU's list and TASKLET_SOFTIRQ raised. It may be
// called from any context, including t's own callback (it then runs again
// afterwards) and while t runs on another CPU (it runs again once that run
// is over, never concurrently).
func Schedule(c *kernel.Ctx, t *Tasklet) { schedule(c, t, false) }

// HiSchedule is tasklet_hi_schedule(t): Schedule on the high-priority list,
// run from HI_SOFTIRQ, before every other softirq.
func HiSchedule(c *kernel.Ctx, t *Tasklet) { schedule(c, t, true) }

func schedule(c *kernel.Ctx, t *Tasklet, hi bool) {
	if t.state.Or(StateSched)&StateSched != 0 {
		return
	}
	s := sysOf(c.Kernel())
	cpu := c.CPU()
	vec, nr := s.vec, kernel.TaskletSoftirq
	if hi {
		vec, nr = s.hiVec, kernel.HISoftirq
	}
	t.cpu.Store(int32(cpu))
	h := &vec[cpu]
	h.mu.Lock()
	h.append(t)
	h.mu.Unlock()
	kernel.RaiseSoftirq(c, nr)
}

// action is tasklet_action_common(): it takes the CPU's whole list, and for
// each tasklet that is not running elsewhere (RUN trylock) and not disabled,
// clears SCHED and calls it; the others go back to the tail of the list and
// the softirq is raised again (the kernel's busy re-polling).
func (s *system) action(c *kernel.Ctx, vec []tlHead, nr int) {
	bhRan := false
	if hook := s.bh.Load(); hook != nil {
		bhRan = (*hook)(c, nr == kernel.HISoftirq)
	}
	h := &vec[c.CPU()]
	h.mu.Lock()
	list := h.head
	h.head, h.tail = nil, nil
	h.mu.Unlock()
	polled, ran := list != nil, bhRan
	defer func() {
		if polled && !ran {
			kernel.SoftirqRepoll(c) // nothing ran: busy re-polling
		}
	}()
	for list != nil {
		t := list
		list = list.next
		if t.state.Or(StateRun)&StateRun == 0 { // tasklet_trylock
			if t.count.Load() == 0 {
				if s.clearSched(c, t) {
					s.call(c, t)
				}
				ran = true
				s.unlock(c, t)
				continue
			}
			s.unlock(c, t)
		}
		h.mu.Lock()
		h.append(t)
		h.mu.Unlock()
		kernel.RaiseSoftirqIrqoff(c, nr)
	}
}

// clearSched is tasklet_clear_sched(): test_and_clear_wake_up_bit(SCHED),
// with the kernel's WARN_ONCE when SCHED was not set.
func (s *system) clearSched(c *kernel.Ctx, t *Tasklet) bool {
	if t.state.And(^StateSched)&StateSched != 0 {
		kernel.WakeUpVar(c, &t.state)
		return true
	}
	form, fn := "func", funcName(t.fn)
	if t.callback != nil {
		form, fn = "callback", funcName(t.callback)
	}
	kernel.WarnOnce(c, true, "tasklet SCHED state not set: %s %s\n", form, fn)
	return false
}

// call runs t's callback as the kernel does (a panic in it is an Oops, and
// the softirq goes on).
func (s *system) call(c *kernel.Ctx, t *Tasklet) {
	cur := &s.cur[c.CPU()]
	prev := cur.Swap(t) // HI_SOFTIRQ and TASKLET_SOFTIRQ do not nest, but be exact
	defer cur.Store(prev)
	tr := c.Kernel().Tracer()
	switch {
	case t.callback != nil:
		cb := t.callback
		if tr.On(trace.TaskletEntry) {
			kernel.Trace(c, trace.TaskletEntry, &trace.Args{trace.Addr(t), trace.FuncPC(cb)})
		}
		kernel.CallHandler(c, func() { cb(c, t) })
		if tr.On(trace.TaskletExit) {
			kernel.Trace(c, trace.TaskletExit, &trace.Args{trace.Addr(t), trace.FuncPC(cb)})
		}
	case t.fn != nil:
		fn, data := t.fn, t.data
		if tr.On(trace.TaskletEntry) {
			kernel.Trace(c, trace.TaskletEntry, &trace.Args{trace.Addr(t), trace.FuncPC(fn)})
		}
		kernel.CallHandler(c, func() { fn(c, data) })
		if tr.On(trace.TaskletExit) {
			kernel.Trace(c, trace.TaskletExit, &trace.Args{trace.Addr(t), trace.FuncPC(fn)})
		}
	}
}

// unlock is tasklet_unlock(): clear RUN and wake tasklet_unlock_wait
// callers.
func (s *system) unlock(c *kernel.Ctx, t *Tasklet) {
	t.state.And(^StateRun)
	kernel.WakeUpVar(c, &t.state)
}

// DisableNosync is tasklet_disable_nosync(t): it raises t's disable count
// without waiting for a running callback. A disabled tasklet that is
// scheduled stays queued (busy re-polled) and runs once it is enabled.
func DisableNosync(t *Tasklet) { t.count.Add(1) }

// Disable is tasklet_disable(t): DisableNosync, then it waits until t's
// callback is not running (tasklet_unlock_wait, which sleeps since v5.13:
// a task waits in TASK_UNINTERRUPTIBLE, through the kernel's wait
// primitive). Counts nest: each Disable needs an Enable. It may sleep: from
// atomic context it gets the might_sleep report (and then busy-waits); use
// DisableInAtomic there.
func Disable(c *kernel.Ctx, t *Tasklet) {
	DisableNosync(t)
	kernel.MightSleep(c)
	unlockWait(c, t)
}

// DisableInAtomic is tasklet_disable_in_atomic(t): Disable for atomic
// context, busy-waiting for a running callback (tasklet_unlock_spin_wait).
// Called from t's own callback it would spin forever in the kernel; kdefer
// reports it and returns.
func DisableInAtomic(c *kernel.Ctx, t *Tasklet) {
	DisableNosync(t)
	unlockWait(c, t)
}

// unlockWait is tasklet_unlock_wait(): wait until RUN is clear. From the
// tasklet's own callback that would never end: reported, and it returns.
func unlockWait(c *kernel.Ctx, t *Tasklet) {
	if t.state.Load()&StateRun == 0 {
		return
	}
	if running(c, t) {
		kernel.Warn(c, "tasklet %s waits for its own callback to finish: it would wait forever\n", describe(t))
		return
	}
	kernel.WaitVarEvent(c, &t.state, func() bool { return t.state.Load()&StateRun == 0 })
}

// Enable is tasklet_enable(t): it drops t's disable count. A tasklet that
// was scheduled while disabled runs once the count reaches 0 (it is still
// on its CPU's list; Enable does not queue it). Enabling more often than
// disabling is a bug the kernel does not check; kdefer warns and leaves the
// count at 0.
func Enable(c *kernel.Ctx, t *Tasklet) {
	n := t.count.Add(-1)
	if n < 0 {
		t.count.Add(1)
		kernel.WarnOnce(c, true, "tasklet_enable: %s was not disabled\n", describe(t))
		return
	}
	if n == 0 && c.Kernel().Virtual() && t.state.Load()&StateSched != 0 {
		// Wake the re-polling ksoftirqd of the tasklet's CPU (see
		// kernel's virtual-time busy re-polling).
		k := c.Kernel()
		cpu := int(t.cpu.Load())
		k.RaiseSoftirqOn(cpu, kernel.TaskletSoftirq)
		k.RaiseSoftirqOn(cpu, kernel.HISoftirq)
	}
}

// Kill is tasklet_kill(t): it waits until a scheduled run of t has happened
// (sleeping in TASK_UNINTERRUPTIBLE through the kernel's wait primitive),
// then takes the SCHED bit so that t cannot be scheduled meanwhile, waits
// for a running callback to finish, and releases SCHED. After it returns t
// is neither scheduled nor running, and may be scheduled again.
//
// From interrupt context it prints the kernel's notice "Attempt to kill
// tasklet from interrupt" and goes on (busy-waiting). Killing a tasklet that
// is scheduled but disabled hangs the kernel forever (unless another context
// enables it); kdefer reports it ("tasklet_kill: … is scheduled but
// disabled") as soon as the wait finds it so, and returns, leaving t
// scheduled. Calling it from t's own callback is reported too. It may sleep
// (might_sleep).
func Kill(c *kernel.Ctx, t *Tasklet) {
	if c.InInterrupt() {
		kernel.Printk(c, printk.LevelNotice, "Attempt to kill tasklet from interrupt\n")
	}
	kernel.MightSleep(c)
	if running(c, t) {
		kernel.Warn(c, "tasklet_kill() of %s from its own callback: it would wait forever\n", describe(t))
		return
	}
	stuck := false
	kernel.WaitVarEvent(c, &t.state, func() bool {
		if t.state.Or(StateSched)&StateSched == 0 {
			return true
		}
		if t.count.Load() > 0 {
			stuck = true
			return true
		}
		return false
	})
	if stuck {
		kernel.Warn(c, "tasklet_kill: %s is scheduled but disabled: the kernel would wait forever for it to run\n", describe(t))
		return
	}
	unlockWait(c, t)
	s := sysOf(c.Kernel())
	s.clearSched(c, t)
}

// running reports whether the caller is t's own callback: softirq context
// on the CPU where t's callback runs right now.
func running(c *kernel.Ctx, t *Tasklet) bool {
	return c.InServingSoftirq() && sysOf(c.Kernel()).cur[c.CPU()].Load() == t
}

func describe(t *Tasklet) string {
	if t.callback != nil {
		return funcName(t.callback)
	}
	return funcName(t.fn)
}

func funcName(f any) string {
	v := reflect.ValueOf(f)
	if !v.IsValid() || v.IsNil() {
		return "0x0"
	}
	return trace.SymbolName(uint64(v.Pointer()))
}
