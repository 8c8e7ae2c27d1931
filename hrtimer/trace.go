package hrtimer

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// The hrtimer tracepoints (include/trace/events/timer.h), fired where
// kernel/time/hrtimer.c fires them: hrtimer_setup at setup (here: at the
// first start after it, see traceSetup), hrtimer_start in
// enqueue_hrtimer, hrtimer_cancel when a queued timer is removed
// (remove_hrtimer, and __run_hrtimer before the callback),
// hrtimer_expire_entry and hrtimer_expire_exit around the callback. The
// in-line tests read the tracer cached in the CPU base; the records are
// taken out of line, with the base lock held where they read the timer.

// traceSetup records hrtimer_setup with the clock and mode t was set up
// with. Setup has no context, so it is recorded at the first start after
// it, in the starting context.
func traceSetup(c *kernel.Ctx, t *HRTimer) {
	if c.Kernel().Tracer().On(trace.HrtimerSetup) {
		kernel.Trace(c, trace.HrtimerSetup, &trace.Args{trace.Addr(t), uint64(uint32(t.setupClock)), uint64(t.setupMode)})
	}
}

//go:noinline
func emitStart(c *kernel.Ctx, t *HRTimer, mode Mode) {
	kernel.Trace(c, trace.HrtimerStart, &trace.Args{trace.Addr(t), trace.FuncPC(t.function), uint64(t.expires), uint64(t.softexpires), uint64(mode)})
}

// traceRestart records the hrtimer_start of a timer whose callback
// returned Restart (__run_hrtimer enqueues it with HRTIMER_MODE_ABS).
func (cb *cpuBase) traceRestart(c *kernel.Ctx, t *HRTimer) {
	if cb.tr.On(trace.HrtimerStart) {
		emitStart(c, t, ModeAbs)
	}
}

// traceCancel records hrtimer_cancel for t if it is queued: call it just
// before removing t.
func (cb *cpuBase) traceCancel(c *kernel.Ctx, t *HRTimer) {
	if cb.tr.On(trace.HrtimerCancel) {
		emitCancel(c, t)
	}
}

//go:noinline
func emitCancel(c *kernel.Ctx, t *HRTimer) {
	if t.state.Load()&StateEnqueued != 0 {
		kernel.Trace(c, trace.HrtimerCancel, &trace.Args{trace.Addr(t)})
	}
}

// traceCancelNoCtx is traceCancel for the calls that take no context
// (hrtimer_try_to_cancel, Setup's dequeue): the record has no task and is
// taken on cb's CPU.
func (cb *cpuBase) traceCancelNoCtx(t *HRTimer) {
	if cb.tr.On(trace.HrtimerCancel) {
		cb.emitCancelNoCtx(t)
	}
}

//go:noinline
func (cb *cpuBase) emitCancelNoCtx(t *HRTimer) {
	if t.state.Load()&StateEnqueued != 0 {
		cb.tr.Emit(&trace.Header{CPU: cb.cpu, PID: -1}, trace.HrtimerCancel, &trace.Args{trace.Addr(t)})
	}
}

// emitExpireEntry records hrtimer_expire_entry for t about to run fn;
// now is b's clock read as the callback starts.
//
//go:noinline
func emitExpireEntry(c *kernel.Ctx, b *clockBase, t *HRTimer, fn func(*kernel.Ctx, *HRTimer) HRTimerRestart) {
	kernel.Trace(c, trace.HrtimerExpireEntry, &trace.Args{trace.Addr(t), uint64(b.getTime()), trace.FuncPC(fn)})
}

func (cb *cpuBase) traceExpireExit(c *kernel.Ctx, t *HRTimer) {
	if cb.tr.On(trace.HrtimerExpireExit) {
		emitExpireExit(c, t)
	}
}

//go:noinline
func emitExpireExit(c *kernel.Ctx, t *HRTimer) {
	kernel.Trace(c, trace.HrtimerExpireExit, &trace.Args{trace.Addr(t)})
}
