package kernel

import "github.com/kdefer/kdefer/trace"

// Tracer returns the kernel's tracer: the enable switches of its static
// events (all off at boot unless Config.TraceEvents names some), its
// per-CPU rings of records (Config.TraceBufferRecords each) and the
// trace-cmd report reader. It is the kernel's tracefs top-level instance:
// Tracer().Enable("timer") is `echo 1 > events/timer/enable`, Report is
// `trace-cmd report`, Read drains a CPU as trace_pipe_raw does.
func (k *Kernel) Tracer() *trace.Tracer { return k.tr }

// Trace records event e with arguments a in c's context: on c's CPU, as
// c's current task (the interrupted task in interrupt context), with c's
// interrupt state and preemption depth as the record's flags. It records
// nothing while e is disabled; guard the call with the tracer's On, as
// the kernel's tracepoints test their static key in line, so that a
// disabled tracepoint costs one load:
//
//	if tr := c.Kernel().Tracer(); tr.On(trace.TimerStart) {
//		kernel.Trace(c, trace.TimerStart, &trace.Args{…})
//	}
//
// It allocates nothing.
func Trace(c *Ctx, e trace.Event, a *trace.Args) {
	h := traceHeader(c)
	c.k.tr.Emit(&h, e, a)
}

// traceHeader is tracing_gen_ctx(): the common fields of a record taken
// in c.
func traceHeader(c *Ctx) trace.Header {
	t := c.task
	h := trace.Header{CPU: c.cpu.id, PID: t.pid, Comm: t.Comm(), Preempt: uint8(min(c.preempt&PreemptMask, 15))}
	if c.irqsOff {
		h.Flags |= trace.FlagIRQsOff
	}
	if c.preempt&HardirqMask != 0 {
		h.Flags |= trace.FlagHardirq
	}
	if c.preempt&SoftirqOffset != 0 {
		h.Flags |= trace.FlagSoftirq
	}
	if c.preempt&SoftirqMask >= SoftirqDisableOffset {
		h.Flags |= trace.FlagBHOff
	}
	return h
}

// taskPrio is p->prio of every kdefer task: SCHED_NORMAL at nice 0.
const taskPrio = 120

// The tracepoints of this package. Each tests its event in line and
// records out of line.

func traceSoftirqRaise(c *Ctx, nr int) {
	if c.k.tr.On(trace.SoftirqRaise) {
		emitSoftirqRaise(c, nr)
	}
}

func traceSoftirqEntry(c *Ctx, nr int) {
	if c.k.tr.On(trace.SoftirqEntry) {
		emitSoftirqEntry(c, nr)
	}
}

func traceSoftirqExit(c *Ctx, nr int) {
	if c.k.tr.On(trace.SoftirqExit) {
		emitSoftirqExit(c, nr)
	}
}

//go:noinline
func emitSoftirqRaise(c *Ctx, nr int) { Trace(c, trace.SoftirqRaise, &trace.Args{uint64(nr)}) }

//go:noinline
func emitSoftirqEntry(c *Ctx, nr int) { Trace(c, trace.SoftirqEntry, &trace.Args{uint64(nr)}) }

//go:noinline
func emitSoftirqExit(c *Ctx, nr int) { Trace(c, trace.SoftirqExit, &trace.Args{uint64(nr)}) }

// traceSoftirqOn records softirq_raise for a raise with no context
// (RaiseSoftirqOn).
func (k *Kernel) traceSoftirqOn(cpu, nr int) {
	if k.tr.On(trace.SoftirqRaise) {
		k.emitSoftirqOn(cpu, nr)
	}
}

//go:noinline
func (k *Kernel) emitSoftirqOn(cpu, nr int) {
	k.tr.Emit(&trace.Header{CPU: cpu, PID: -1}, trace.SoftirqRaise, &trace.Args{uint64(nr)})
}

// emitIRQEntry and emitIRQExit record irq_handler_entry and
// irq_handler_exit. Their tests stand in GenerateIRQ itself: a helper
// taking the three arguments would exceed the inlining budget.
//
//go:noinline
func emitIRQEntry(c *Ctx, irq int, a *irqAction) {
	Trace(c, trace.IRQHandlerEntry, &trace.Args{uint64(irq), c.k.tr.Intern(a.name)})
}

//go:noinline
func emitIRQExit(c *Ctx, irq int, ret IRQReturn) {
	Trace(c, trace.IRQHandlerExit, &trace.Args{uint64(irq), uint64(ret)})
}

// traceWakeup records sched_wakeup for p, just set running. The waker is
// not known here, so the record is taken on p's CPU as its idle task, as
// the kernel records a wakeup it queued to an idle CPU.
func (k *Kernel) traceWakeup(p *Task) {
	if k.tr.On(trace.SchedWakeup) {
		k.emitWakeup(p)
	}
}

//go:noinline
func (k *Kernel) emitWakeup(p *Task) {
	cpu := p.cpu
	lo, hi := trace.PackComm(p.Comm())
	k.tr.Emit(&trace.Header{CPU: cpu, PID: 0, Comm: k.cpus[cpu].idle.Comm()}, trace.SchedWakeup,
		&trace.Args{lo, hi, uint64(p.pid), taskPrio, uint64(cpu)})
}

// traceSwitchOut records sched_switch for c's task leaving its CPU in
// state (blocking, or exiting): prev is the task, next the CPU's idle
// task.
func traceSwitchOut(c *Ctx, state TaskState) {
	if c.k.tr.On(trace.SchedSwitch) {
		emitSwitchOut(c, state)
	}
}

//go:noinline
func emitSwitchOut(c *Ctx, state TaskState) {
	lo, hi := trace.PackComm(c.cpu.idle.Comm())
	Trace(c, trace.SchedSwitch, &trace.Args{taskPrio, trace.SwitchState(false, uint32(state)), lo, hi, 0, taskPrio})
}

// traceSwitchIn records sched_switch for c's task running again: prev is
// the CPU's idle task (the record is taken in its context, as the kernel
// records a switch in prev's), next the task.
func traceSwitchIn(c *Ctx) {
	if c.k.tr.On(trace.SchedSwitch) {
		emitSwitchIn(c)
	}
}

//go:noinline
func emitSwitchIn(c *Ctx) {
	t := c.task
	lo, hi := trace.PackComm(t.Comm())
	idle := c.cpu.idle
	c.k.tr.Emit(&trace.Header{CPU: c.cpu.id, PID: 0, Comm: idle.Comm(), Preempt: 1}, trace.SchedSwitch,
		&trace.Args{taskPrio, 0, lo, hi, uint64(t.pid), taskPrio})
}

// exitState is the exit_state a task's last switch reports: EXIT_DEAD for
// a kernel thread (kthreadd reaps its children at once), EXIT_ZOMBIE for
// a user task until its parent reaps it.
func exitState(t *Task) TaskState {
	if t.kthread {
		return ExitDead
	}
	return ExitZombie
}
