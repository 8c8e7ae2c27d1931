package kernel

import (
	"context"
	"math/bits"
	"time"
)

// Ctx is an execution context: the kernel's "current" task, the CPU it runs
// on, and that context's preempt_count and interrupt state. Go has no
// goroutine-local storage, so every kernel API takes the caller's Ctx as its
// first parameter, where the kernel would consult current and the per-CPU
// preempt_count.
//
// A task's process-context Ctx is handed to its function; softirq and
// hardirq Ctxs are made by the kernel for the handlers it runs. A Ctx must be
// used only by the goroutine it was handed to: its preempt count is not
// synchronised.
//
// Ctx implements context.Context. For process context it is the task's
// context: it is cancelled when the task gets a signal it accepts or a stop
// request (tell them apart with context.Cause). Interrupt contexts are never
// cancelled.
type Ctx struct {
	k       *Kernel
	task    *Task
	cpu     *CPU
	preempt uint32
	irqsOff bool
	bhHeld  bool // this context holds its CPU's softirq lock (outermost local_bh_disable)

	// seen is the jiffies value Jiffies last returned in real time, with
	// seenValid set, for ArmJiffies; 0 once an arm has used it. (Real
	// jiffies start near 2^32 and would take millennia to reach 2^63.)
	seen uint64

	// tscJ is the jiffies value readJiffies last computed from the TSC,
	// and tscNext the counter value at which the next jiffy begins (0:
	// none known): until the counter reaches it, jiffies is tscJ.
	tscJ    uint64
	tscNext uint64
}

// Kernel returns the kernel this context runs in.
func (c *Ctx) Kernel() *Kernel { return c.k }

// Current returns the task this context runs on behalf of (the kernel's
// current). In softirq and hardirq context it is the interrupted task,
// usually the CPU's idle task swapper/N or ksoftirqd/N.
func (c *Ctx) Current() *Task { return c.task }

// CPU returns smp_processor_id().
func (c *Ctx) CPU() int { return c.cpu.id }

// Jiffies returns the current jiffies value. In real time the context
// also remembers it for the next ArmJiffies; on the TSC clock it is
// converted straight from the counter (one multiplication, rounded down,
// where Kernel.Jiffies goes through nanoseconds), so for a fraction of a
// nanosecond after a jiffy boundary it may still be the previous jiffy:
// never ahead of Kernel.Jiffies.
func (c *Ctx) Jiffies() uint64 {
	if c.k.virtual {
		return c.k.vjiffies.Load()
	}
	return readJiffiesFast(c)
}

// readJiffies is Jiffies in real time at a jiffy the context has not
// seen yet, or off the TSC clock (readJiffiesFast, in assembly where there
// is a TSC, answers the same jiffy as the context's last read itself).
//
//go:noinline
func readJiffies(c *Ctx) uint64 {
	k := c.k
	rc := &k.clock
	if !rc.tsc {
		j := k.initialJ + k.ticks(rc.now())
		c.seen = j | seenValid
		return j
	}
	tsc := rdtsc()
	if tsc < c.tscNext {
		c.seen = c.tscJ | seenValid
		return c.tscJ
	}
	return c.readJiffiesTSC(tsc)
}

// readJiffiesTSC is readJiffies at a jiffy this context has not seen yet:
// the TSC-to-jiffies conversion at the counter value tsc, remembering where the
// next jiffy begins.
func (c *Ctx) readJiffiesTSC(tsc uint64) uint64 {
	k := c.k
	rc := &k.clock
	var e uint64
	c.tscNext = 0
	if d := int64(tsc - rc.tsc0); d > 0 {
		e, _ = bits.Mul64(uint64(d), rc.multJ)
		// The first counter value of jiffy e+1: ceil((e+1) 2^64 / multJ).
		if e+1 < rc.multJ {
			q, r := bits.Div64(e+1, 0, rc.multJ)
			if r != 0 {
				q++
			}
			c.tscNext = rc.tsc0 + q
		}
	}
	j := k.initialJ + e
	c.tscJ = j
	c.seen = j | seenValid
	return j
}

// ArmJiffies returns the jiffies value with which an arm operation
// (mod_timer and its variants) forwards its timer base: TakeJiffies' value
// if there is one, else Kernel().Jiffies().
//
// The usual call timer.Mod(c, t, c.Jiffies()+n) so reads the clock once,
// where the kernel's mod_timer reads jiffies a second time (a plain load
// there, a clock read here). The value is never ahead of the clock: a
// base forwarded with it may be forwarded less far, which can only choose
// a later bucket, never an earlier one, so a timer armed with it never
// runs before its expiry. Between the two reads lie only the caller's own
// instructions; a caller that holds the value across jiffies (reads
// jiffies, sleeps, then arms) gets the arm it would have got right after
// the read, except that a timer whose expiry has passed still waits for
// the tick after the jiffy it is really armed in (the timer code reads the
// clock in that case).
func (c *Ctx) ArmJiffies() uint64 {
	if j, ok := c.TakeJiffies(); ok {
		return j
	}
	return c.k.Jiffies()
}

// TakeJiffies returns, once, the value this context's last Jiffies call
// returned in real time, and false if there is none (in virtual time, or
// already taken). ArmJiffies is the usual way to use it; this half of it
// inlines into the caller.
func (c *Ctx) TakeJiffies() (uint64, bool) {
	s := c.seen
	c.seen = 0
	return s &^ seenValid, s != 0
}

// seenValid marks Ctx.seen as holding a value.
const seenValid = 1 << 63

// Dying reports whether the caller may no longer sleep: the kernel is
// shutting down, or (virtual time) a sleep of this attached task was found
// to be a deadlock. Sleeping primitives then return at once, and their
// loops end: they test it where the kernel tests for a fatal signal or a
// stop request.
func (c *Ctx) Dying() bool { return c.k.dying.Load() || c.task.noSleep.Load() }

// Deadline implements context.Context; kernel contexts have no deadline.
func (c *Ctx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context: closed when the task is signalled or
// asked to stop. It is nil (never closed) in interrupt context.
func (c *Ctx) Done() <-chan struct{} {
	if !c.InTask() {
		return nil
	}
	return c.task.context().Done()
}

// Err implements context.Context.
func (c *Ctx) Err() error {
	if !c.InTask() {
		return nil
	}
	return c.task.context().Err()
}

// Value implements context.Context by delegating to the task's context.
func (c *Ctx) Value(key any) any {
	return c.task.context().Value(key)
}

var _ context.Context = (*Ctx)(nil)
