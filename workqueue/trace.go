package workqueue

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// The workqueue tracepoints (include/trace/events/workqueue.h), fired where
// kernel/workqueue.c fires them:
//
//   - workqueue_queue_work in __queue_work, once the pwq is chosen and its
//     pool locked: for every queueing that gets that far, and for a delayed
//     item when its timer queues it. req_cpu is the CPU asked for
//     (CPUUnbound when none), cpu the pool's (-1 for an unbound pool).
//   - workqueue_activate_work when an item goes on its pool's worklist:
//     right after workqueue_queue_work when max_active allows, or later,
//     when it leaves the inactive list (__pwq_activate_work).
//   - workqueue_execute_start and workqueue_execute_end around the work
//     function in process_one_work, in the worker's context (softirq
//     context for a BH workqueue).
//
// Each call site tests its event in line, one load of the enable mask of
// the tracer the pool caches (written out at the site where a helper would
// exceed the inlining budget), and records out of line, so that a disabled
// tracepoint adds a load and a branch to the queueing and execution paths.

// emitQueue records workqueue_queue_work for w, queued on pw (req_cpu the
// CPU asked for).
//
//go:noinline
func emitQueue(c *kernel.Ctx, reqCPU int, pw *pwq, w *Work) {
	kernel.Trace(c, trace.WorkqueueQueueWork, &trace.Args{trace.Addr(w), trace.FuncPC(w.fn),
		pw.pool.tr.Intern(pw.wq.name), uint64(int64(reqCPU)), uint64(int64(pw.pool.cpu))})
}

// traceActivate records workqueue_activate_work. c is nil when the caller
// has no context (a freezer thaw, a max_active change from boot code): the
// record is then taken on the pool's CPU with no task, as the timer
// tracepoints of calls without a context are.
func (p *workerPool) traceActivate(c *kernel.Ctx, w *Work) {
	if p.tr.On(trace.WorkqueueActivateWork) {
		p.emitActivate(c, w)
	}
}

//go:noinline
func (p *workerPool) emitActivate(c *kernel.Ctx, w *Work) {
	a := &trace.Args{trace.Addr(w), trace.FuncPC(w.fn)}
	if c == nil {
		p.tr.Emit(&trace.Header{CPU: max(p.cpu, 0), PID: -1}, trace.WorkqueueActivateWork, a)
		return
	}
	kernel.Trace(c, trace.WorkqueueActivateWork, a)
}

// emitExecute records workqueue_execute_start or workqueue_execute_end
// (e) for w, whose function is fn.
//
//go:noinline
func emitExecute(c *kernel.Ctx, e trace.Event, w *Work, fn Func) {
	kernel.Trace(c, e, &trace.Args{trace.Addr(w), trace.FuncPC(fn)})
}
