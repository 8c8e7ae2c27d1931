package kthread

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// The tracepoints of include/trace/events/sched.h that kernel/kthread.c
// fires. Each tests its event in line and records out of line.

func traceStop(c *kernel.Ctx, t *kernel.Task) {
	if c.Kernel().Tracer().On(trace.SchedKthreadStop) {
		emitStop(c, t)
	}
}

//go:noinline
func emitStop(c *kernel.Ctx, t *kernel.Task) {
	lo, hi := trace.PackComm(t.Comm())
	kernel.Trace(c, trace.SchedKthreadStop, &trace.Args{lo, hi, uint64(t.PID())})
}

func traceStopRet(c *kernel.Ctx, ret int) {
	if c.Kernel().Tracer().On(trace.SchedKthreadStopRet) {
		kernel.Trace(c, trace.SchedKthreadStopRet, &trace.Args{uint64(int64(ret))})
	}
}

func traceQueueWork(c *kernel.Ctx, w *Worker, work *Work) {
	if c.Kernel().Tracer().On(trace.SchedKthreadWorkQueueWork) {
		emitQueueWork(c, w, work)
	}
}

//go:noinline
func emitQueueWork(c *kernel.Ctx, w *Worker, work *Work) {
	kernel.Trace(c, trace.SchedKthreadWorkQueueWork, &trace.Args{trace.Addr(work), trace.FuncPC(work.fn), trace.Addr(w)})
}

func traceExecuteStart(c *kernel.Ctx, work *Work, fn WorkFunc) {
	if c.Kernel().Tracer().On(trace.SchedKthreadWorkExecuteStart) {
		kernel.Trace(c, trace.SchedKthreadWorkExecuteStart, &trace.Args{trace.Addr(work), trace.FuncPC(fn)})
	}
}

func traceExecuteEnd(c *kernel.Ctx, work *Work, fn WorkFunc) {
	if c.Kernel().Tracer().On(trace.SchedKthreadWorkExecuteEnd) {
		kernel.Trace(c, trace.SchedKthreadWorkExecuteEnd, &trace.Args{trace.Addr(work), trace.FuncPC(fn)})
	}
}
