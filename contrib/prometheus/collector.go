// Package prometheus exposes a kdefer kernel's counters (package stats)
// as Prometheus metrics. It is a module of its own, so that the kdefer
// library keeps no third-party dependency:
//
//	k, _ := kernel.Boot(kernel.Config{})
//	stats.Enable(k) // the counters that need tracepoint probes
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(kdeferprom.NewCollector(k, kdeferprom.Options{}))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every scrape reads one stats.Snapshot. The metrics (names follow
// Prometheus conventions: a kdefer_ prefix, _total for counters, base units
// and _seconds):
//
//	kdefer_softirqs_total{cpu,vec}              softirq handler runs (/proc/softirqs)
//	kdefer_softirq_raises_total{cpu,vec}        softirq_raise events
//	kdefer_tasklet_runs_total{cpu}              tasklet callbacks run
//	kdefer_local_timer_interrupts_total{cpu}    /proc/interrupts LOC
//	kdefer_interrupts_total{irq}                handled interrupts per line
//	kdefer_timer_armed_total                    timers queued on the wheel (timer_start)
//	kdefer_timer_expired_total                  timer callbacks run
//	kdefer_timer_cancelled_total                pending timers taken off other than by expiry
//	kdefer_timer_pending{level}                 timers queued per wheel level
//	kdefer_timer_lateness_seconds               histogram of expiry lateness
//	kdefer_hrtimer_started_total, _expired_total, _cancelled_total, kdefer_hrtimer_pending
//	kdefer_hrtimer_lateness_seconds             histogram of hrtimer lateness
//	kdefer_workqueue_queued_total{workqueue}    work items queued (workqueue_queue_work)
//	kdefer_workqueue_executed_total{workqueue}  work items run to their end (workqueue_execute_end)
//	kdefer_workqueue_running{workqueue}         work items running now
//	kdefer_workqueue_in_flight{workqueue}       work items queued and not yet finished
//	kdefer_workqueue_queue_latency_seconds{workqueue}  histogram of queue-to-start latency
//	kdefer_tasks{state,kind}                    tasks by state letter (R, S, D, I …), kind kthread or user
//	kdefer_trace_lost_records_total{cpu}        trace records overwritten unread
//
// Label values are bounded: CPUs, softirq vectors, wheel levels, IRQ
// lines, task states and workqueue names — at most stats.MaxWorkqueues
// of them, the rest counted together as stats.OtherWorkqueues — never
// functions or objects. The workqueue series appear once a workqueue has
// queued an item while counting (see stats.WorkqueueStats for what
// in_flight cannot see: a cancel).
package prometheus

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
)

// Options configure a Collector.
type Options struct {
	// ConstLabels are added to every metric: name the kernel when one
	// registry collects several ({"kernel": "a"}).
	ConstLabels prometheus.Labels
}

// Collector is a prometheus.Collector over one kernel's stats.
type Collector struct {
	k *kernel.Kernel

	softirqs, raises, tasklets, loc, irqs    *prometheus.Desc
	armed, expired, cancelled, pending, late *prometheus.Desc
	hrStarted, hrExpired, hrCancelled        *prometheus.Desc
	hrPending, hrLate                        *prometheus.Desc
	tasks, traceLost                         *prometheus.Desc
	wqQueued, wqExecuted, wqRunning          *prometheus.Desc
	wqInFlight, wqLatency                    *prometheus.Desc
}

// NewCollector returns a Collector reading k's counters. Register it on a
// registry of your own (the library registers nothing on the default
// one). Call stats.Enable(k) for the counters that need tracepoint
// probes (raises, tasklets, timers, hrtimers, workqueues); without it
// they stay 0 (the workqueue series absent).
func NewCollector(k *kernel.Kernel, opts Options) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kdefer_"+name, help, labels, opts.ConstLabels)
	}
	return &Collector{
		k:           k,
		softirqs:    d("softirqs_total", "Softirq handler runs, as /proc/softirqs counts them.", "cpu", "vec"),
		raises:      d("softirq_raises_total", "Softirqs raised (softirq_raise events).", "cpu", "vec"),
		tasklets:    d("tasklet_runs_total", "Tasklet callbacks run (tasklet_entry events).", "cpu"),
		loc:         d("local_timer_interrupts_total", "Local timer interrupts (/proc/interrupts LOC).", "cpu"),
		irqs:        d("interrupts_total", "Handled interrupts per line, all CPUs together.", "irq"),
		armed:       d("timer_armed_total", "Timers queued on the timer wheel (timer_start events)."),
		expired:     d("timer_expired_total", "Timer callbacks run (timer_expire_entry events)."),
		cancelled:   d("timer_cancelled_total", "Pending timers taken off the wheel other than by expiry."),
		pending:     d("timer_pending", "Timers queued on the wheel, per wheel level.", "level"),
		late:        d("timer_lateness_seconds", "Timer expiry lateness: the jiffy the callback ran minus the expires it was armed for."),
		hrStarted:   d("hrtimer_started_total", "Hrtimers started (hrtimer_start events)."),
		hrExpired:   d("hrtimer_expired_total", "Hrtimer callbacks run (hrtimer_expire_entry events)."),
		hrCancelled: d("hrtimer_cancelled_total", "Queued hrtimers removed other than by expiry."),
		hrPending:   d("hrtimer_pending", "Hrtimers queued."),
		hrLate:      d("hrtimer_lateness_seconds", "Hrtimer lateness: the base's time at the callback minus the expires it was started for."),
		tasks:       d("tasks", "Tasks by state letter (as ps shows it) and kind (kthread or user).", "state", "kind"),
		traceLost:   d("trace_lost_records_total", "Trace records overwritten in a CPU's ring before they were read.", "cpu"),
		wqQueued:    d("workqueue_queued_total", "Work items queued on the workqueue (workqueue_queue_work events).", "workqueue"),
		wqExecuted:  d("workqueue_executed_total", "Work items of the workqueue run to their end (workqueue_execute_end events).", "workqueue"),
		wqRunning:   d("workqueue_running", "Work items of the workqueue running now.", "workqueue"),
		wqInFlight:  d("workqueue_in_flight", "Work items queued on the workqueue and not yet finished.", "workqueue"),
		wqLatency:   d("workqueue_queue_latency_seconds", "Work items' queue-to-start latency: from workqueue_queue_work to the workqueue_execute_start it caused.", "workqueue"),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.softirqs, c.raises, c.tasklets, c.loc, c.irqs, c.armed, c.expired,
		c.cancelled, c.pending, c.late, c.hrStarted, c.hrExpired, c.hrCancelled, c.hrPending, c.hrLate, c.tasks, c.traceLost,
		c.wqQueued, c.wqExecuted, c.wqRunning, c.wqInFlight, c.wqLatency} {
		ch <- d
	}
}

// Collect reads a snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := stats.Read(c.k)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	hist := func(d *prometheus.Desc, h stats.Histogram, labels ...string) {
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, n := range h.Cumulative() {
			buckets[h.Bounds[i]] = n
		}
		ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
	}
	for cpu, cs := range s.CPUs {
		cpuL := strconv.Itoa(cpu)
		for vec := range cs.Softirqs {
			name := kernel.SoftirqName(vec)
			counter(c.softirqs, cs.Softirqs[vec], cpuL, name)
			counter(c.raises, cs.SoftirqRaises[vec], cpuL, name)
		}
		counter(c.tasklets, cs.TaskletRuns, cpuL)
		counter(c.loc, cs.LocalTimer, cpuL)
	}
	for irq, n := range s.IRQs {
		counter(c.irqs, n, strconv.Itoa(irq))
	}
	counter(c.armed, s.Timers.Armed)
	counter(c.expired, s.Timers.Expired)
	counter(c.cancelled, s.Timers.Cancelled)
	for lvl, l := range s.Timers.Levels {
		gauge(c.pending, float64(l.Pending), strconv.Itoa(lvl))
	}
	hist(c.late, s.Timers.Lateness)
	counter(c.hrStarted, s.HRTimers.Started)
	counter(c.hrExpired, s.HRTimers.Expired)
	counter(c.hrCancelled, s.HRTimers.Cancelled)
	gauge(c.hrPending, float64(s.HRTimers.Pending))
	hist(c.hrLate, s.HRTimers.Lateness)
	for _, w := range s.Workqueues {
		counter(c.wqQueued, w.Queued, w.Name)
		counter(c.wqExecuted, w.Executed, w.Name)
		gauge(c.wqRunning, float64(w.Running), w.Name)
		gauge(c.wqInFlight, float64(w.InFlight), w.Name)
		hist(c.wqLatency, w.Latency, w.Name)
	}
	for _, tc := range s.Tasks {
		gauge(c.tasks, float64(tc.Kthreads), tc.State, "kthread")
		gauge(c.tasks, float64(tc.User), tc.State, "user")
	}
	for cpu, n := range s.TraceLost {
		counter(c.traceLost, n, strconv.Itoa(cpu))
	}
}
