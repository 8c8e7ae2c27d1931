package prometheus_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	kdeferprom "github.com/kdefer/kdefer/contrib/prometheus"
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/tasklet"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/workqueue"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func fn(*kernel.Ctx, *timer.Timer)      {}
func tfn(*kernel.Ctx, *tasklet.Tasklet) {}

// knownRun: a virtual 1-CPU kernel at HZ=250 arms a timer 10 jiffies
// ahead (it runs 1 jiffy late: calc_index rounds up), arms and deletes
// another, and runs a tasklet.
func knownRun(t *testing.T) *kernel.Kernel {
	k := ktest.Virtual(t, 1, 250)
	stats.Enable(k)
	var a, b timer.Timer
	var tl tasklet.Tasklet
	tasklet.Setup(&tl, tfn)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &a, fn, 0)
		timer.Setup(c, &b, fn, 0)
		timer.Mod(c, &a, c.Jiffies()+10)
		timer.Mod(c, &b, c.Jiffies()+100)
		timer.Delete(&b)
		tasklet.Schedule(c, &tl)
	})
	ktest.Run(t, k, 1_000_000_000)
	return k
}

func TestCollectorValuesAfterAKnownRun(t *testing.T) {
	c := kdeferprom.NewCollector(knownRun(t), kdeferprom.Options{ConstLabels: prometheus.Labels{"kernel": "test"}})
	want := `
# HELP kdefer_timer_armed_total Timers queued on the timer wheel (timer_start events).
# TYPE kdefer_timer_armed_total counter
kdefer_timer_armed_total{kernel="test"} 2
# HELP kdefer_timer_expired_total Timer callbacks run (timer_expire_entry events).
# TYPE kdefer_timer_expired_total counter
kdefer_timer_expired_total{kernel="test"} 1
# HELP kdefer_timer_cancelled_total Pending timers taken off the wheel other than by expiry.
# TYPE kdefer_timer_cancelled_total counter
kdefer_timer_cancelled_total{kernel="test"} 1
# HELP kdefer_tasklet_runs_total Tasklet callbacks run (tasklet_entry events).
# TYPE kdefer_tasklet_runs_total counter
kdefer_tasklet_runs_total{cpu="0",kernel="test"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"kdefer_timer_armed_total", "kdefer_timer_expired_total", "kdefer_timer_cancelled_total", "kdefer_tasklet_runs_total"); err != nil {
		t.Error(err)
	}
	// The lateness histogram: one observation of one jiffy (4 ms), in the
	// bucket ≤ 4.096 ms.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, mf := range mfs {
		types[mf.GetName()] = mf.GetType().String()
		if mf.GetName() != "kdefer_timer_lateness_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.004 {
			t.Errorf("lateness: count %d sum %v, want 1 and 0.004", h.GetSampleCount(), h.GetSampleSum())
		}
		for _, b := range h.GetBucket() {
			if want := uint64(0); b.GetUpperBound() >= 0.004 {
				want = 1
				if b.GetCumulativeCount() != want {
					t.Errorf("bucket ≤%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
				}
			} else if b.GetCumulativeCount() != want {
				t.Errorf("bucket ≤%v: %d, want 0", b.GetUpperBound(), b.GetCumulativeCount())
			}
		}
	}
	for name, typ := range map[string]string{
		"kdefer_softirqs_total": "COUNTER", "kdefer_softirq_raises_total": "COUNTER", "kdefer_timer_pending": "GAUGE",
		"kdefer_timer_lateness_seconds": "HISTOGRAM", "kdefer_hrtimer_lateness_seconds": "HISTOGRAM", "kdefer_tasks": "GAUGE",
		"kdefer_local_timer_interrupts_total": "COUNTER", "kdefer_trace_lost_records_total": "COUNTER",
	} {
		if types[name] != typ {
			t.Errorf("%s: type %q, want %s", name, types[name], typ)
		}
	}
}

func TestSoftirqAndTaskMetricsCarryBoundedLabels(t *testing.T) {
	c := kdeferprom.NewCollector(knownRun(t), kdeferprom.Options{})
	want := `
# HELP kdefer_softirqs_total Softirq handler runs, as /proc/softirqs counts them.
# TYPE kdefer_softirqs_total counter
kdefer_softirqs_total{cpu="0",vec="BLOCK"} 0
kdefer_softirqs_total{cpu="0",vec="HI"} 0
kdefer_softirqs_total{cpu="0",vec="HRTIMER"} 0
kdefer_softirqs_total{cpu="0",vec="IRQ_POLL"} 0
kdefer_softirqs_total{cpu="0",vec="NET_RX"} 0
kdefer_softirqs_total{cpu="0",vec="NET_TX"} 0
kdefer_softirqs_total{cpu="0",vec="RCU"} 0
kdefer_softirqs_total{cpu="0",vec="SCHED"} 0
kdefer_softirqs_total{cpu="0",vec="TASKLET"} 1
kdefer_softirqs_total{cpu="0",vec="TIMER"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kdefer_softirqs_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "kdefer_timer_pending"); n != stats.WheelLevels {
		t.Errorf("%d pending series, want one per wheel level (%d)", n, stats.WheelLevels)
	}
}

func TestCollectorPassesTheLinter(t *testing.T) {
	problems, err := testutil.CollectAndLint(kdeferprom.NewCollector(knownRun(t), kdeferprom.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func nap(c *kernel.Ctx, _ *workqueue.Work) { delay.Msleep(c, 10) }
func nop(*kernel.Ctx, *workqueue.Work)     {}

// wqRun: a virtual 1-CPU kernel at HZ=250 runs, on an ordered workqueue
// "ord", a (sleeping 16 ms: msleep(10) wakes at the fourth tick) and b
// queued behind it, and e queued behind them and cancelled; on "events"
// one item c.
func wqRun(t *testing.T) *kernel.Kernel {
	k := ktest.Virtual(t, 1, 250)
	stats.Enable(k)
	var a, b, c, e workqueue.Work
	workqueue.Init(&a, nap)
	workqueue.Init(&b, nop)
	workqueue.Init(&c, nop)
	workqueue.Init(&e, nop)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		ord, err := workqueue.AllocOrderedWorkqueue(ctx, "ord", 0)
		if err != nil {
			t.Fatal(err)
		}
		workqueue.QueueWork(ctx, ord, &a)
		workqueue.QueueWork(ctx, ord, &b)
		workqueue.QueueWork(ctx, ord, &e)
		workqueue.CancelWork(ctx, &e)
		workqueue.ScheduleWork(ctx, &c)
		workqueue.FlushWorkqueue(ctx, ord)
		workqueue.DestroyWorkqueue(ctx, ord)
	})
	ktest.Run(t, k, 100_000_000)
	return k
}

func TestWorkqueueMetricsAfterAKnownRun(t *testing.T) {
	c := kdeferprom.NewCollector(wqRun(t), kdeferprom.Options{})
	want := `
# HELP kdefer_workqueue_queued_total Work items queued on the workqueue (workqueue_queue_work events).
# TYPE kdefer_workqueue_queued_total counter
kdefer_workqueue_queued_total{workqueue="events"} 1
kdefer_workqueue_queued_total{workqueue="ord"} 3
# HELP kdefer_workqueue_executed_total Work items of the workqueue run to their end (workqueue_execute_end events).
# TYPE kdefer_workqueue_executed_total counter
kdefer_workqueue_executed_total{workqueue="events"} 1
kdefer_workqueue_executed_total{workqueue="ord"} 2
# HELP kdefer_workqueue_running Work items of the workqueue running now.
# TYPE kdefer_workqueue_running gauge
kdefer_workqueue_running{workqueue="events"} 0
kdefer_workqueue_running{workqueue="ord"} 0
# HELP kdefer_workqueue_in_flight Work items queued on the workqueue and not yet finished.
# TYPE kdefer_workqueue_in_flight gauge
kdefer_workqueue_in_flight{workqueue="events"} 0
kdefer_workqueue_in_flight{workqueue="ord"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kdefer_workqueue_queued_total",
		"kdefer_workqueue_executed_total", "kdefer_workqueue_running", "kdefer_workqueue_in_flight"); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, mf := range mfs {
		if mf.GetName() != "kdefer_workqueue_queue_latency_seconds" {
			continue
		}
		seen = true
		if mf.GetType().String() != "HISTOGRAM" || len(mf.GetMetric()) != 2 {
			t.Fatalf("latency: %s with %d series", mf.GetType(), len(mf.GetMetric()))
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			switch wq := m.GetLabel()[0].GetValue(); wq {
			case "events": // c started at once
				if h.GetSampleCount() != 1 || h.GetSampleSum() != 0 || h.GetBucket()[0].GetCumulativeCount() != 1 {
					t.Errorf("events latency: %v", h)
				}
			case "ord": // a at once, b after a's 16 ms
				if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.016 {
					t.Errorf("ord latency: count %d sum %v, want 2 and 0.016", h.GetSampleCount(), h.GetSampleSum())
				}
				for _, b := range h.GetBucket() {
					want := uint64(1)
					if b.GetUpperBound() >= 0.016 {
						want = 2
					}
					if b.GetCumulativeCount() != want {
						t.Errorf("ord bucket ≤%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
					}
				}
			default:
				t.Errorf("a latency series for %q", wq)
			}
		}
	}
	if !seen {
		t.Error("no kdefer_workqueue_queue_latency_seconds")
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestWorkqueueSeriesAreAbsentWithoutWork(t *testing.T) {
	c := kdeferprom.NewCollector(knownRun(t), kdeferprom.Options{})
	if n := testutil.CollectAndCount(c, "kdefer_workqueue_queued_total", "kdefer_workqueue_queue_latency_seconds"); n != 0 {
		t.Errorf("%d workqueue series from a run that queued no work", n)
	}
}
