// Package workqsimple is the seed demo workq_simple (Linux Kernel
// Programming Part 2, ch5/workq_simple/workq_simple.c): timer_simple plus
// the kernel-global workqueue. Each expiry of a kernel timer (softirq
// context) schedules a work item with schedule_work(); the work function
// runs in process context, in a kworker, and reports the latency from the
// scheduling to its start.
//
// Init sets ctx.data to INITIAL_VALUE (3), runs INIT_WORK(&ctx.work,
// work_func), sets the timer's expiry to jiffies +
// msecs_to_jiffies(exp_ms), runs timer_setup(&ctx.tmr, ding, 0), logs
// "Work queue initialized, timer set to expire in 420 ms" and arms the
// timer with add_timer. ding() logs the count (pr_debug "timed out...
// data=3"), decrements it, logs PRINT_CTX — a softirq line such as
//
//	workq_simple:ding(): 000) [swapper/0]:0   |  ..s1   /* ding() */
//
// — re-arms the timer while the count is not zero, stamps t1 and schedules
// the work ("our work's already on the kernel-global workqueue!" if it was
// still pending). work_func() stamps t2 and logs the count (2, 1, 0), a
// process-context PRINT_CTX line of its kworker,
//
//	workq_simple:work_func(): 000) [kworker/0:0]:6   |  ...0   /* work_func() */
//
// and SHOW_DELTA(t2, t1). Exit stops the timer (del_timer_sync), cancels
// the work (cancel_work_sync: "yes, there was indeed some pending work; now
// done..." if it was pending) and logs "removed".
//
// Parameters (read-only at runtime). In the C module exp_ms is a static
// variable, not a module parameter; kdefer exposes it with the same
// default:
//
//	exp_ms  ulong, 420, 0444  the timer period in ms
//	debug   bool,  Y,   0444  pr_debug and PRINT_CTX output (the book
//	                          builds with -DDEBUG)
//
// Deliberate differences (seed-demos §8's notes on the original's races):
//
//   - t1 is stamped before schedule_work(), not after: on SMP the worker
//     can start before the C code's stamp, and SHOW_DELTA then warns that
//     earlier > later.
//   - Exit stops the timer before it cancels the work; the C order (cancel,
//     then del_timer_sync) lets a last ding() queue the work again after
//     the cancel.
//   - In virtual time a wakeup takes no time, so the kworker is charged a
//     nominal WakeupCostNs of CPU time before it stamps t2 (a real one
//     starts tens of µs after schedule_work); SHOW_DELTA would otherwise
//     find t2 equal to t1 and warn.
//   - SHOW_DELTA is the book-era convenient.h form, "delta: N ns (= U us =
//     M ms)", as in the project's other book-era demos.
//   - The context lives in the module instance, not in a static variable,
//     so that two kernels in one process each have their own.
package workqsimple

import (
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/timekeeping"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/workqueue"
)

// Name is the module's name (KBUILD_MODNAME).
const Name = "workq_simple"

// InitialValue is INITIAL_VALUE, the countdown's start.
const InitialValue = 3

// DefaultExpMs is exp_ms's default: the timer period in ms.
const DefaultExpMs = 420

// WakeupCostNs is the CPU time a kworker is charged in virtual time
// between the scheduling of the work and its start.
const WakeupCostNs = 30000

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "a simple LKM to demo the kernel-global workqueue",
	License:     "Dual MIT/GPL",
	Author:      "Kaiwan N Billimoria",
	Version:     "0.1",
	New:         newCtx,
}

// stCtx is struct st_ctx (the work item, the timer and the count) with
// the rest of the module's data: one loaded copy of the module. work is
// its first field, as in the C struct.
type stCtx struct {
	work   workqueue.Work
	tmr    timer.Timer
	data   int
	t1, t2 int64 // the C module's static u64 t1, t2
	expMs  uint64
	debug  bool
	pr     kernel.Logger
}

func newCtx(p *module.Params) module.Instance {
	m := &stCtx{}
	p.Ulong(&m.expMs, "exp_ms", DefaultExpMs, 0444, "timer period in ms (default=420)")
	p.Bool(&m.debug, "debug", true, 0444, "pr_debug and PRINT_CTX output (default=Y)")
	return m
}

// work_func is the work function: it runs in process context, in a
// kworker of the kernel-global workqueue.
func work_func(c *kernel.Ctx, work *workqueue.Work) {
	priv := workqueue.FromWork[stCtx](work, unsafe.Offsetof(stCtx{}.work))
	k := c.Kernel()
	if k.Virtual() {
		kernel.Spin(c, WakeupCostNs) // what the wakeup costs a real kworker
	}
	priv.t2 = timekeeping.KtimeGetRealNs(c)
	priv.pr.Info(c, "In our workq function: data=%d\n", priv.data)
	convenient.PrintCtx(c, priv.pr)
	convenient.ShowDeltaBook(c, priv.pr, priv.t2, priv.t1)
}

// ding is the timer's callback: it runs in timer softirq context.
func ding(c *kernel.Ctx, t *timer.Timer) {
	priv := timer.ContainerOf[stCtx](t, unsafe.Offsetof(stCtx{}.tmr))
	priv.pr.Debug(c, "timed out... data=%d\n", priv.data)
	priv.data--
	convenient.PrintCtx(c, priv.pr)

	// until countdown done, fire it again!
	if priv.data != 0 {
		timer.Mod(c, &priv.tmr, c.Jiffies()+c.Kernel().HZ().MsecsToJiffies(uint32(priv.expMs)))
	}
	// kdefer: stamp t1 before queueing (the worker may start at once)
	priv.t1 = timekeeping.KtimeGetRealNs(c)
	// queue the work on the kernel-global workqueue
	if !workqueue.ScheduleWork(c, &priv.work) {
		priv.pr.Notice(c, "our work's already on the kernel-global workqueue!\n")
	}
}

// Init is module_init(workq_simple_init).
func (m *stCtx) Init(c *kernel.Ctx) error { return m.workq_simple_init(c) }

// Exit is module_exit(workq_simple_exit).
func (m *stCtx) Exit(c *kernel.Ctx) { m.workq_simple_exit(c) }

// workq_simple_init is named as the C function: pr_fmt prints the name.
func (m *stCtx) workq_simple_init(c *kernel.Ctx) error {
	m.pr = kernel.Logger{Module: Name, NoDebug: !m.debug}
	m.data = InitialValue

	// Initialize our workqueue
	workqueue.Init(&m.work, work_func)

	// Initialize our kernel timer
	timer.SetExpires(&m.tmr, c.Jiffies()+c.Kernel().HZ().MsecsToJiffies(uint32(m.expMs)))
	timer.Setup(c, &m.tmr, ding, 0)

	m.pr.Info(c, "Work queue initialized, timer set to expire in %d ms\n", m.expMs)
	timer.Add(c, &m.tmr) // Arm it; lets get going!
	return nil
}

// workq_simple_exit is named as the C function: pr_fmt prints the name.
func (m *stCtx) workq_simple_exit(c *kernel.Ctx) {
	// kdefer: the timer first, so that no ding() queues the work anew
	timer.DeleteSync(c, &m.tmr)
	// Wait for any pending work (queue) to finish
	if workqueue.CancelWorkSync(c, &m.work) {
		m.pr.Info(c, "yes, there was indeed some pending work; now done...\n")
	}
	m.pr.Info(c, "removed\n")
}
