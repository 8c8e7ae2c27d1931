// Package stats counts what a kdefer kernel does and hands the counts out
// as plain snapshots: softirq runs and raises per vector and CPU, timer
// arms, expiries and cancels with pending timers per wheel level and a
// lateness histogram, the same for hrtimers, tasklet runs, work items per
// workqueue (queued, executed, running, in flight, and a queue-to-start
// latency histogram), interrupts, and tasks by state. `kdefer top`, the Prometheus collector
// (contrib/prometheus) and the expvar variable (package stats/statsvar)
// all read Snapshot; the package itself has no dependency.
//
// Enable attaches counting probes to the kernel's tracepoints
// (trace.Tracer.AttachProbe, as perf attaches to a tracepoint), so that
// the counters cost nothing until a program asks for them and about one
// probe call per event after; Disable detaches them. What the kernel
// counts anyway (softirq runs as /proc/softirqs shows them, interrupts,
// task states) is in every snapshot, enabled or not. Replay counts the
// same from a recording's records, after the fact (`kdefer top FILE`).
//
// Kernel counterparts: /proc/softirqs and /proc/interrupts (kstat), and
// the timer/irq tracepoints that perf stat counts. Differences: timer
// lateness is measured from the timer_start record of the arm (the
// expires it asked for) to its timer_expire_entry (the jiffy it ran), in
// jiffies converted to seconds; hrtimer lateness from hrtimer_start's
// expires to hrtimer_expire_entry's now, in ns. Timers armed before Enable
// are not tracked until they are armed again, nor are work items queued
// before it. A work item's queue-to-start latency runs from its
// workqueue_queue_work to the next workqueue_execute_start of the item
// (the kernel's tracepoints carry no queueing id); when another CPU queues
// it again between the moment its worker clears PENDING and its
// execute_start record, the execution is taken for the new queueing (a
// latency too short) and the next one is counted without a latency.
package stats

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// WheelLevels is the timer wheel's maximum depth (LVL_DEPTH for HZ > 100).
const WheelLevels = 9

// wheel geometry for timer_start's idx (include/linux/timer.h, timer.c).
const (
	lvlBits    = 6
	arrayShift = 22
)

// LatencyBounds are the upper bounds, in seconds, of the lateness
// histograms' buckets: 1 µs doubling up to about 16.8 s (24 buckets; the
// last one, +Inf, is implicit), what Prometheus's ExponentialBuckets(1e-6,
// 2, 25) gives.
var latencyBounds = func() [25]float64 {
	var b [25]float64
	for i := range b {
		b[i] = 1e-6 * math.Pow(2, float64(i))
	}
	return b
}()

// LatencyBounds returns the histograms' bucket upper bounds in seconds.
func LatencyBounds() []float64 { return append([]float64(nil), latencyBounds[:]...) }

// Histogram is a snapshot of a latency histogram, in seconds.
type Histogram struct {
	// Bounds are the buckets' upper bounds (LatencyBounds).
	Bounds []float64 `json:"bounds"`
	// Counts[i] is the number of observations ≤ Bounds[i] and above
	// Bounds[i-1]; Counts[len(Bounds)] those above every bound.
	Counts []uint64 `json:"counts"`
	// Count and Sum are the number and the sum of the observations.
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum"`
	// Max is the largest observation.
	Max float64 `json:"max"`
}

// Cumulative returns the cumulative counts (observations ≤ Bounds[i]),
// as Prometheus exposes them.
func (h Histogram) Cumulative() []uint64 {
	out := make([]uint64, len(h.Bounds))
	var n uint64
	for i := range h.Bounds {
		n += h.Counts[i]
		out[i] = n
	}
	return out
}

// histogram is a concurrent histogram over latencyBounds.
type histogram struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	count  atomic.Uint64
	sumNs  atomic.Int64 // sum in ns (seconds would need a float CAS loop)
	maxNs  atomic.Int64
}

func (h *histogram) observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	// The bucket whose bound 1 µs·2^i is the first ≥ ns.
	i := 0
	if ns > 1000 {
		i = min(bits.Len64(uint64(ns-1)/1000), len(latencyBounds))
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sumNs.Add(ns)
	for {
		m := h.maxNs.Load()
		if ns <= m || h.maxNs.CompareAndSwap(m, ns) {
			break
		}
	}
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: LatencyBounds(), Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	out.Count = h.count.Load()
	out.Sum = float64(h.sumNs.Load()) / 1e9
	out.Max = float64(h.maxNs.Load()) / 1e9
	return out
}

// TimerStats are the timer wheel's counters.
type TimerStats struct {
	// Armed counts timer_start: a timer queued on the wheel (add_timer,
	// mod_timer; a pending timer moved to another bucket counts again).
	Armed uint64 `json:"armed"`
	// Expired counts timer_expire_entry: callbacks run.
	Expired uint64 `json:"expired"`
	// Cancelled counts pending timers taken off the wheel other than by
	// expiry: timer_delete and friends, and mod_timer moving a pending
	// timer (timer_cancel records not followed by the timer's expiry).
	Cancelled uint64 `json:"cancelled"`
	// Levels are per wheel level (timer_start's idx / LVL_SIZE).
	Levels [WheelLevels]LevelStats `json:"levels"`
	// Lateness is the histogram of expiry lateness (the jiffy the callback
	// ran minus the expires it was armed for), in seconds.
	Lateness Histogram `json:"lateness"`
}

// LevelStats are one wheel level's counters.
type LevelStats struct {
	// Pending is the number of timers now queued on the level (that were
	// armed while counting).
	Pending int64 `json:"pending"`
	// Expired counts the level's timers that ran.
	Expired uint64 `json:"expired"`
	// LatenessSum and LatenessMax are in jiffies.
	LatenessSum uint64 `json:"lateness_sum_jiffies"`
	LatenessMax uint64 `json:"lateness_max_jiffies"`
}

// HRTimerStats are the hrtimers' counters.
type HRTimerStats struct {
	Started   uint64 `json:"started"`   // hrtimer_start
	Expired   uint64 `json:"expired"`   // hrtimer_expire_entry
	Cancelled uint64 `json:"cancelled"` // hrtimer_cancel not followed by the timer's expiry
	Pending   int64  `json:"pending"`   // queued now (armed while counting)
	// Lateness: the clock base's time when the callback ran minus the
	// expires it was started for, in seconds.
	Lateness Histogram `json:"lateness"`
}

// CPUStats are one CPU's counters.
type CPUStats struct {
	// Softirqs are the softirq runs per vector (/proc/softirqs), always
	// counted.
	Softirqs [kernel.NRSoftirqs]uint64 `json:"softirqs"`
	// SoftirqRaises are softirq_raise records per vector (while counting).
	SoftirqRaises [kernel.NRSoftirqs]uint64 `json:"softirq_raises"`
	// TaskletRuns counts tasklet_entry records (while counting).
	TaskletRuns uint64 `json:"tasklet_runs"`
	// LocalTimer and Resched are /proc/interrupts' LOC and RES.
	LocalTimer uint64 `json:"local_timer_interrupts"`
	Resched    uint64 `json:"resched_interrupts"`
}

// TaskCount is the number of tasks in one state.
type TaskCount struct {
	// State is the state's letter as ps shows it ("R", "S", "D", "I" …).
	State    string `json:"state"`
	Kthreads int    `json:"kthreads"`
	User     int    `json:"user"`
}

// Snapshot is what stats knows about a kernel at one instant.
type Snapshot struct {
	// Counting tells whether Enable's probes are attached (otherwise
	// the counters that need them are zero).
	Counting bool `json:"counting"`
	// Now is the kernel's time (ns since boot) and Jiffies its jiffies.
	Now     int64  `json:"now_ns"`
	Jiffies uint64 `json:"jiffies"`
	HZ      int    `json:"hz"`
	// CPUs are per CPU.
	CPUs []CPUStats `json:"cpus"`
	// IRQs counts each interrupt line's handled interrupts, all CPUs
	// together, by line number.
	IRQs map[int]uint64 `json:"irqs"`
	// Timers and HRTimers are the timer counters.
	Timers   TimerStats   `json:"timers"`
	HRTimers HRTimerStats `json:"hrtimers"`
	// Workqueues are the counters of each workqueue that queued an item
	// while counting, by name.
	Workqueues []WorkqueueStats `json:"workqueues"`
	// Tasks counts the live tasks by state (idle tasks excluded), in the
	// order R S D I T t P Z X; states with no task are left out.
	Tasks []TaskCount `json:"tasks"`
	// TraceLost is, per CPU, the trace records overwritten unread in the
	// rings.
	TraceLost []uint64 `json:"trace_lost"`
}

// counters is one kernel's state (k.Local).
type counters struct {
	mu      sync.Mutex // serialises Enable and Disable
	detach  []func()
	enabled atomic.Bool

	cpus []cpuCounters

	timerArmed, timerExpired, timerDetached, timerExpiryDetach atomic.Uint64
	levels                                                     [WheelLevels]levelCounters
	timerLateness                                              histogram
	timers                                                     shardedMap

	hrStarted, hrExpired, hrDetached, hrExpiryDetach atomic.Uint64
	hrPending                                        atomic.Int64
	hrLateness                                       histogram
	hrtimers                                         shardedMap

	wqs   wqTable
	works workMap
	str   func(uint64) string // names an interned string (a workqueue's)

	tickNs int64
}

type levelCounters struct {
	pending atomic.Int64
	expired atomic.Uint64
	latSum  atomic.Uint64
	latMax  atomic.Uint64
}

type cpuCounters struct {
	raises  [kernel.NRSoftirqs]atomic.Uint64
	tasklet atomic.Uint64
	// recent are the timers this CPU last took off their bucket, so that
	// an expiry (timer_cancel then timer_expire_entry on the base's CPU)
	// can be told from a cancel and its lateness measured.
	mu     sync.Mutex
	recent [8]detached
	next   int
	_      [64]byte
}

type detached struct {
	ptr, expires uint64
	level        int
	hr           bool
}

// armed is a pending timer's arm: what its expiry is measured against.
type armed struct {
	expires uint64
	level   int
}

// shardedMap maps a timer's address to its arm.
type shardedMap struct {
	shards [16]struct {
		mu sync.Mutex
		m  map[uint64]armed
		_  [40]byte
	}
}

func (s *shardedMap) shard(ptr uint64) int { return int((ptr >> 4) & 15) }

func (s *shardedMap) put(ptr uint64, a armed) (old armed, had bool) {
	sh := &s.shards[s.shard(ptr)]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = map[uint64]armed{}
	}
	old, had = sh.m[ptr]
	sh.m[ptr] = a
	sh.mu.Unlock()
	return old, had
}

func (s *shardedMap) take(ptr uint64) (armed, bool) {
	sh := &s.shards[s.shard(ptr)]
	sh.mu.Lock()
	a, ok := sh.m[ptr]
	if ok {
		delete(sh.m, ptr)
	}
	sh.mu.Unlock()
	return a, ok
}

func (s *shardedMap) clear() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
}

var key kernel.LocalKey

func of(k *kernel.Kernel) *counters {
	return k.Local(&key, func(k *kernel.Kernel) any {
		return &counters{cpus: make([]cpuCounters, k.NumCPUs()), tickNs: k.TickNsec(), str: k.Tracer().String}
	}).(*counters)
}

// Enable starts counting on k: it attaches the probes to k's timer,
// hrtimer, softirq, tasklet and workqueue tracepoints. Enabling twice does
// nothing.
// The counters keep their values across Disable and Enable.
func Enable(k *kernel.Kernel) {
	s := of(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() {
		return
	}
	tr := k.Tracer()
	attach := func(e trace.Event, fn trace.Probe) { s.detach = append(s.detach, tr.AttachProbe(e, fn)) }
	attach(trace.TimerStart, s.timerStart)
	attach(trace.TimerCancel, s.timerCancel)
	attach(trace.TimerExpireEntry, s.timerExpire)
	attach(trace.HrtimerStart, s.hrStart)
	attach(trace.HrtimerCancel, s.hrCancel)
	attach(trace.HrtimerExpireEntry, s.hrExpire)
	attach(trace.SoftirqRaise, s.raise)
	attach(trace.TaskletEntry, s.taskletEntry)
	attach(trace.WorkqueueQueueWork, s.wqQueue)
	attach(trace.WorkqueueExecuteStart, s.wqStart)
	attach(trace.WorkqueueExecuteEnd, s.wqEnd)
	s.enabled.Store(true)
}

// Disable stops counting on k (the probes are detached; the counts
// stay). The gauges of what is pending — timers per level, hrtimers, work
// items in flight and running — are reset: what changes while not
// counting would make them wrong.
func Disable(k *kernel.Kernel) {
	s := of(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.detach {
		d()
	}
	s.detach = nil
	s.enabled.Store(false)
	s.timers.clear()
	s.hrtimers.clear()
	for i := range s.levels {
		s.levels[i].pending.Store(0)
	}
	s.hrPending.Store(0)
	s.works.clear()
	s.wqs.resetGauges()
}

// Enabled reports whether k's counting probes are attached.
func Enabled(k *kernel.Kernel) bool { return of(k).enabled.Load() }

func (s *counters) cpu(r *trace.Record) *cpuCounters {
	if int(r.CPU) < len(s.cpus) {
		return &s.cpus[r.CPU]
	}
	return nil
}

func (s *counters) timerStart(r *trace.Record) {
	s.timerArmed.Add(1)
	level := int(r.Args[5]>>arrayShift) >> lvlBits
	if level >= WheelLevels {
		level = WheelLevels - 1
	}
	if old, had := s.timers.put(r.Args[0], armed{expires: r.Args[2], level: level}); had {
		s.levels[old.level].pending.Add(-1)
	}
	s.levels[level].pending.Add(1)
}

func (s *counters) timerCancel(r *trace.Record) {
	a, ok := s.timers.take(r.Args[0])
	if !ok {
		s.timerDetached.Add(1)
		return
	}
	s.levels[a.level].pending.Add(-1)
	s.timerDetached.Add(1)
	s.remember(r, detached{ptr: r.Args[0], expires: a.expires, level: a.level})
}

func (s *counters) timerExpire(r *trace.Record) {
	s.timerExpired.Add(1)
	d, ok := s.recall(r, r.Args[0], false)
	if !ok {
		return
	}
	s.timerExpiryDetach.Add(1)
	late := r.Args[1] - d.expires // now - expires, in jiffies
	if int64(late) < 0 {
		late = 0
	}
	lv := &s.levels[d.level]
	lv.expired.Add(1)
	lv.latSum.Add(late)
	for {
		m := lv.latMax.Load()
		if late <= m || lv.latMax.CompareAndSwap(m, late) {
			break
		}
	}
	s.timerLateness.observe(int64(late) * s.tickNs)
}

func (s *counters) hrStart(r *trace.Record) {
	s.hrStarted.Add(1)
	if _, had := s.hrtimers.put(r.Args[0], armed{expires: r.Args[2]}); !had {
		s.hrPending.Add(1)
	}
}

func (s *counters) hrCancel(r *trace.Record) {
	s.hrDetached.Add(1)
	a, ok := s.hrtimers.take(r.Args[0])
	if !ok {
		return
	}
	s.hrPending.Add(-1)
	s.remember(r, detached{ptr: r.Args[0], expires: a.expires, hr: true})
}

func (s *counters) hrExpire(r *trace.Record) {
	s.hrExpired.Add(1)
	d, ok := s.recall(r, r.Args[0], true)
	if !ok {
		return
	}
	s.hrExpiryDetach.Add(1)
	s.hrLateness.observe(int64(r.Args[1]) - int64(d.expires))
}

func (s *counters) remember(r *trace.Record, d detached) {
	c := s.cpu(r)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.recent[c.next] = d
	c.next = (c.next + 1) % len(c.recent)
	c.mu.Unlock()
}

func (s *counters) recall(r *trace.Record, ptr uint64, hr bool) (detached, bool) {
	c := s.cpu(r)
	if c == nil {
		return detached{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.recent {
		if d := c.recent[i]; d.ptr == ptr && d.hr == hr && ptr != 0 {
			c.recent[i] = detached{}
			return d, true
		}
	}
	return detached{}, false
}

func (s *counters) raise(r *trace.Record) {
	if c := s.cpu(r); c != nil && r.Args[0] < kernel.NRSoftirqs {
		c.raises[r.Args[0]].Add(1)
	}
}

func (s *counters) taskletEntry(r *trace.Record) {
	if c := s.cpu(r); c != nil {
		c.tasklet.Add(1)
	}
}

// timerSnapshot fills snap's Timers and HRTimers.
func (s *counters) timerSnapshot(snap *Snapshot) {
	t := &snap.Timers
	t.Armed, t.Expired = s.timerArmed.Load(), s.timerExpired.Load()
	t.Cancelled = s.timerDetached.Load() - s.timerExpiryDetach.Load()
	for i := range t.Levels {
		lv := &s.levels[i]
		t.Levels[i] = LevelStats{Pending: max(lv.pending.Load(), 0), Expired: lv.expired.Load(),
			LatenessSum: lv.latSum.Load(), LatenessMax: lv.latMax.Load()}
	}
	t.Lateness = s.timerLateness.snapshot()
	h := &snap.HRTimers
	h.Started, h.Expired = s.hrStarted.Load(), s.hrExpired.Load()
	h.Cancelled = s.hrDetached.Load() - s.hrExpiryDetach.Load()
	h.Pending = max(s.hrPending.Load(), 0)
	h.Lateness = s.hrLateness.snapshot()
}

// stateOrder is the order of Snapshot.Tasks.
const stateOrder = "RSDITtPZX"

// Read returns a snapshot of k's counters. It may be called from any
// goroutine, at any time, also after k has shut down.
func Read(k *kernel.Kernel) Snapshot {
	s := of(k)
	snap := Snapshot{Counting: s.enabled.Load(), Now: k.Now(), Jiffies: k.Jiffies(), HZ: int(k.HZ()),
		CPUs: make([]CPUStats, k.NumCPUs()), IRQs: map[int]uint64{}}
	for cpu := range snap.CPUs {
		c := &snap.CPUs[cpu]
		for nr := 0; nr < kernel.NRSoftirqs; nr++ {
			c.Softirqs[nr] = k.SoftirqCount(nr, cpu)
			c.SoftirqRaises[nr] = s.cpus[cpu].raises[nr].Load()
		}
		c.TaskletRuns = s.cpus[cpu].tasklet.Load()
		c.LocalTimer = k.LocalTimerInterrupts(cpu)
		c.Resched = k.ReschedInterrupts(cpu)
	}
	for _, l := range k.IRQLines() {
		var n uint64
		for _, c := range l.Counts {
			n += c
		}
		snap.IRQs[l.IRQ] = n
	}
	s.timerSnapshot(&snap)
	s.wqSnapshot(&snap)
	counts := map[byte]*TaskCount{}
	for _, task := range k.Tasks() {
		if task.IsIdle() {
			continue
		}
		l := task.State().Letter()
		tc := counts[l]
		if tc == nil {
			tc = &TaskCount{State: string(l)}
			counts[l] = tc
		}
		if task.IsKthread() {
			tc.Kthreads++
		} else {
			tc.User++
		}
	}
	for i := 0; i < len(stateOrder); i++ {
		if tc := counts[stateOrder[i]]; tc != nil {
			snap.Tasks = append(snap.Tasks, *tc)
			delete(counts, stateOrder[i])
		}
	}
	for _, tc := range counts { // a letter outside stateOrder
		snap.Tasks = append(snap.Tasks, *tc)
	}
	for _, st := range k.Tracer().Stats() {
		snap.TraceLost = append(snap.TraceLost, st.Overrun)
	}
	return snap
}
