package timer

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// The timer tracepoints (include/trace/events/timer.h), fired where
// kernel/time/timer.c fires them: timer_init in timer_setup, timer_start
// in enqueue_timer, timer_cancel in detach_timer (a pending timer taken
// off its bucket: by timer_delete, by mod_timer moving it, by expiry),
// timer_expire_entry and timer_expire_exit in call_timer_fn. Each helper
// tests its event in line and records out of line, so that a disabled
// tracepoint costs one load. Every helper is called with t's base lock
// held, except traceInit and the expiry ones, which read only values
// captured under it. b.tr is the kernel's tracer, cached in each base so
// that the test is one load away.

// traceInit records timer_init. Setup is no hot path: it tests the event
// out of line.
func traceInit(c *kernel.Ctx, t *Timer) {
	if c != nil && c.Kernel().Tracer().On(trace.TimerInit) {
		kernel.Trace(c, trace.TimerInit, &trace.Args{trace.Addr(t)})
	}
}

// traceStart records timer_start for t, just enqueued on its base.
func (b *timerBase) traceStart(c *kernel.Ctx, t *Timer) {
	if b.tr.On(trace.TimerStart) {
		emitStart(c, t)
	}
}

//go:noinline
func emitStart(c *kernel.Ctx, t *Timer) {
	b := t.base.Load()
	idx := t.wheelIdx()
	// The kernel keeps the owning CPU in the flags' low bits.
	flags := t.flags&^flagCPUMask | uint32(b.cpu)
	kernel.Trace(c, trace.TimerStart, &trace.Args{trace.Addr(t), trace.FuncPC(t.function), t.expires,
		b.w.bucketExpiry(idx), c.Kernel().Jiffies(), uint64(flags)})
}

// traceCancel records timer_cancel for t if it is pending: call it just
// before detaching t.
func (b *timerBase) traceCancel(c *kernel.Ctx, t *Timer) {
	if b.tr.On(trace.TimerCancel) {
		emitCancelIfPending(c, t)
	}
}

//go:noinline
func emitCancelIfPending(c *kernel.Ctx, t *Timer) {
	if t.pending() {
		emitCancel(c, t)
	}
}

// traceCancelNoCtx is traceCancel for the calls that take no context
// (timer_delete, timer_delete_sync_try, timer_shutdown): the record has no
// task and is taken on b's CPU.
func (b *timerBase) traceCancelNoCtx(t *Timer) {
	if b.tr.On(trace.TimerCancel) {
		b.emitCancelNoCtx(t)
	}
}

//go:noinline
func (b *timerBase) emitCancelNoCtx(t *Timer) {
	if t.pending() {
		b.tr.Emit(&trace.Header{CPU: b.cpu, PID: -1}, trace.TimerCancel, &trace.Args{trace.Addr(t)})
	}
}

// traceExpiring records the timer_cancel of a timer that expiry has just
// taken off its bucket (expire_timers' detach_timer).
func (b *timerBase) traceExpiring(c *kernel.Ctx, t *Timer) {
	if b.tr.On(trace.TimerCancel) {
		emitCancel(c, t)
	}
}

//go:noinline
func emitCancel(c *kernel.Ctx, t *Timer) {
	kernel.Trace(c, trace.TimerCancel, &trace.Args{trace.Addr(t)})
}

// emitExpireEntry records timer_expire_entry; fn is t's function and
// baseclk the base clock of the expiring bucket, both read under the base
// lock.
//
//go:noinline
func emitExpireEntry(c *kernel.Ctx, t *Timer, fn Func, baseclk uint64) {
	kernel.Trace(c, trace.TimerExpireEntry, &trace.Args{trace.Addr(t), c.Kernel().Jiffies(), trace.FuncPC(fn), baseclk})
}

func (b *timerBase) traceExpireExit(c *kernel.Ctx, t *Timer) {
	if b.tr.On(trace.TimerExpireExit) {
		emitExpireExit(c, t)
	}
}

//go:noinline
func emitExpireExit(c *kernel.Ctx, t *Timer) {
	kernel.Trace(c, trace.TimerExpireExit, &trace.Args{trace.Addr(t)})
}

// modEvents are the events the wheel's mod may fire (trace.Set of them).
const modEvents = 1<<trace.TimerStart | 1<<trace.TimerCancel

// tracePre and tracePost bracket the wheel's mod (the locked part of
// __mod_timer) to fire what it fires: timer_cancel when a pending timer
// leaves its bucket, timer_start when the timer is queued. tracePre
// notes t's bucket and whether it is pending (-1 while both events are
// off); tracePost records what changed. Both are tested in line.
func (b *timerBase) tracePre(t *Timer) int {
	if b.tr.OnAny(modEvents) {
		return modState(t)
	}
	return -1
}

//go:noinline
func modState(t *Timer) int {
	if !t.pending() {
		return 0
	}
	return 1<<16 | int(t.wheelIdx())
}

func (b *timerBase) tracePost(c *kernel.Ctx, t *Timer, pre int) {
	if pre >= 0 {
		b.emitMod(c, t, pre)
	}
}

//go:noinline
func (b *timerBase) emitMod(c *kernel.Ctx, t *Timer, pre int) {
	wasPending, idx := pre>>16 != 0, uint(pre&0xffff)
	// The wheel queued t if it is pending in another bucket than before
	// (a pending timer whose bucket does not change is left in place).
	if !t.pending() || (wasPending && t.wheelIdx() == idx) {
		return
	}
	if wasPending && b.tr.On(trace.TimerCancel) {
		emitCancel(c, t)
	}
	b.traceStart(c, t)
}
