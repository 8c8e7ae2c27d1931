package workqueue_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/workqueue"
)

func traced(c *kernel.Ctx, w *workqueue.Work) {}

var barrierTok = regexp.MustCompile(`work struct [0-9a-f]{16}:`)

// records returns the events of k's tracer as "comm event: info" lines, in
// order, with the pointers of ptrs named (their tokens are assigned in the
// order given, before any record is formatted).
func records(k *kernel.Kernel, ptrs map[string]uint64, order ...string) []string {
	tr := k.Tracer()
	f := trace.NewFormatter(tr.String)
	names := map[string]string{}
	for _, n := range order {
		names[f.Pointer(trace.Ptr(ptrs[n]))] = n
	}
	recs, _ := tr.Snapshot()
	var out []string
	for i := range recs {
		r := &recs[i]
		info := f.Info(r)
		for tok, n := range names {
			info = strings.ReplaceAll(info, tok, n)
		}
		out = append(out, fmt.Sprintf("%s %s: %s", r.CommString(), r.Event.Name(), info))
	}
	return out
}

// TestTracepointsFireWhereTheKernelFiresThem: queue_work with the asked and
// the pool's CPU, activate_work at once or when the item leaves the
// inactive list (in the worker that ends the previous one, on an ordered
// workqueue), execute_start and execute_end around the function, and a
// delayed item's queue_work from its timer, in softirq context.
func TestTracepointsFireWhereTheKernelFiresThem(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, Quiet: true, TraceEvents: "workqueue"})
	var a, b workqueue.Work
	var d workqueue.DelayedWork
	workqueue.Init(&a, traced)
	workqueue.Init(&b, traced)
	workqueue.InitDelayed(&d, traced)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, err := workqueue.AllocOrderedWorkqueue(c, "ord", 0)
		if err != nil {
			t.Fatal(err)
		}
		workqueue.QueueWork(c, wq, &a)
		workqueue.QueueWorkOn(c, 0, wq, &b) // waits on the inactive list
		workqueue.FlushWorkqueue(c, wq)
		workqueue.ScheduleDelayedWork(c, &d, 2)
		workqueue.FlushDelayedWork(c, &d)
		workqueue.DestroyWorkqueue(c, wq)
	})
	ktest.Run(t, k, 0)
	ptrs := map[string]uint64{"A": trace.Addr(&a), "B": trace.Addr(&b), "D": trace.Addr(&d.Work)}
	got := records(k, ptrs, "A", "B", "D")
	unbound := workqueue.CPUUnbound
	want := []string{
		fmt.Sprintf("test workqueue_queue_work: work struct=A function=traced workqueue=ord req_cpu=%d cpu=-1", unbound),
		"test workqueue_activate_work: work struct A function=traced ",
		"test workqueue_queue_work: work struct=B function=traced workqueue=ord req_cpu=0 cpu=-1",
		"kworker/u4:0 workqueue_execute_start: work struct A: function traced",
		"kworker/u4:0 workqueue_execute_end: work struct A: function traced",
		"kworker/u4:0 workqueue_activate_work: work struct B function=traced ",
		"kworker/u4:0 workqueue_execute_start: work struct B: function traced",
		"kworker/u4:0 workqueue_execute_end: work struct B: function traced",
		// FlushDelayedWork queues the item at once, from the flusher.
		fmt.Sprintf("test workqueue_queue_work: work struct=D function=traced workqueue=events req_cpu=%d cpu=0", unbound),
		"test workqueue_activate_work: work struct D function=traced ",
		"kworker/0:0 workqueue_execute_start: work struct D: function traced",
		"kworker/0:0 workqueue_execute_end: work struct D: function traced",
		// The flush barrier behind D runs as a work item too (it is
		// inserted without queue_work or activate_work, as in the kernel).
		"kworker/0:0 workqueue_execute_start: work struct BAR: function barrierFunc",
		"kworker/0:0 workqueue_execute_end: work struct BAR: function barrierFunc",
	}
	for i, l := range got {
		if strings.HasSuffix(l, "function barrierFunc") {
			got[i] = barrierTok.ReplaceAllString(l, "work struct BAR:")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("trace:\n%s\nwant:\n%s", join(got), join(want))
	}
}

// TestADelayedItemIsTracedWhenItsTimerQueuesIt: the timer callback records
// queue_work (in softirq context, on the idle task) with the CPU the item
// was queued for.
func TestADelayedItemIsTracedWhenItsTimerQueuesIt(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 1000, Quiet: true, TraceEvents: "workqueue_queue_work"})
	var d workqueue.DelayedWork
	workqueue.InitDelayed(&d, traced)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleDelayedWorkOn(c, 1, &d, 5)
	})
	ktest.Run(t, k, 0)
	recs, _ := k.Tracer().Snapshot()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := &recs[0]
	f := trace.NewFormatter(k.Tracer().String)
	want := "work struct=" + f.Pointer(trace.Ptr(trace.Addr(&d.Work))) + " function=traced workqueue=events req_cpu=1 cpu=1"
	if got := f.Info(r); got != want || r.CPU != 1 || r.Flags&trace.FlagSoftirq == 0 {
		t.Fatalf("record %q on CPU %d flags %#x, want %q on CPU 1 in softirq", got, r.CPU, r.Flags, want)
	}
}

// TestDisabledTracepointsRecordNothing: with the workqueue events off, a
// run records nothing.
func TestDisabledTracepointsRecordNothing(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, Quiet: true, TraceEvents: "sched_kthread_stop"})
	var a workqueue.Work
	workqueue.Init(&a, traced)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, &a)
		workqueue.FlushWork(c, &a)
	})
	if recs, _ := k.Tracer().Snapshot(); len(recs) != 0 {
		t.Fatalf("%d records with the workqueue events off", len(recs))
	}
}

func join(lines []string) string {
	s := ""
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s
}

// TestAThawActivatesWithoutATask: items held back by the freezer are
// activated by ThawWorkqueues, which has no context: their
// activate_work records carry no task (pid -1), on the pool's CPU.
func TestAThawActivatesWithoutATask(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 1000, Quiet: true, TraceEvents: "workqueue_activate_work"})
	var a workqueue.Work
	workqueue.Init(&a, traced)
	workqueue.FreezeWorkqueuesBegin(k)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.QueueWorkOn(c, 1, workqueue.SystemFreezable(c.Kernel()), &a)
	})
	if recs, _ := k.Tracer().Snapshot(); len(recs) != 0 {
		t.Fatalf("%d activations while frozen, want none", len(recs))
	}
	workqueue.ThawWorkqueues(k)
	ktest.Run(t, k, 0)
	recs, _ := k.Tracer().Snapshot()
	if len(recs) != 1 || recs[0].PID != -1 || recs[0].CPU != 1 || recs[0].Args[0] != trace.Addr(&a) {
		t.Fatalf("records %+v, want one activation of a with pid -1 on CPU 1", recs)
	}
}

// TestAnItemQueuedByARunningItemIsTracedLikeAnyOther: queue_work from an
// item running on the same pool — where, untraced, the queuer skips the
// pool lock — records workqueue_queue_work and workqueue_activate_work in
// the queuer's context, in that order, before the item starts.
func TestAnItemQueuedByARunningItemIsTracedLikeAnyOther(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, Quiet: true, TraceEvents: "workqueue"})
	var a, parent workqueue.Work
	workqueue.Init(&a, traced)
	workqueue.Init(&parent, func(c *kernel.Ctx, _ *workqueue.Work) {
		workqueue.QueueWork(c, workqueue.System(c.Kernel()), &a)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, &parent)
		workqueue.FlushWork(c, &parent)
		workqueue.FlushWork(c, &a)
	})
	ktest.Run(t, k, 0)
	got := records(k, map[string]uint64{"A": trace.Addr(&a)}, "A")
	var mine []string
	for _, l := range got {
		if strings.Contains(l, " A") || strings.Contains(l, "=A ") {
			mine = append(mine, l)
		}
	}
	want := []string{
		fmt.Sprintf("kworker/0:0 workqueue_queue_work: work struct=A function=traced workqueue=events req_cpu=%d cpu=0", workqueue.CPUUnbound),
		"kworker/0:0 workqueue_activate_work: work struct A function=traced ",
		"kworker/0:0 workqueue_execute_start: work struct A: function traced",
		"kworker/0:0 workqueue_execute_end: work struct A: function traced",
	}
	if !slices.Equal(mine, want) {
		t.Fatalf("records of A:\n%s\nwant:\n%s\nall:\n%s", join(mine), join(want), join(got))
	}
}
