// Package perfetto turns kdefer trace records into a timeline that the
// Perfetto UI (ui.perfetto.dev) and chrome://tracing open: Chrome
// trace-event JSON, the format the Go toolchain writes too.
//
// The timeline has one track per CPU (process "CPUs") and one per task
// (process "tasks", a track per kernel thread and user task, named by its
// comm):
//
//   - slices for what runs in interrupt context, on its CPU's track,
//     nested as they nested: hard interrupt handlers (irq_handler_entry …
//     exit), softirqs (softirq_entry … exit, named by vector), and inside
//     them timer callbacks (timer_expire_entry … exit, named by the
//     function), hrtimer callbacks and tasklets (tasklet_entry … exit);
//   - "running" slices on a task's track, from the sched_switch that puts
//     it on its CPU to the one that takes it off;
//   - work items (workqueue_execute_start … end, named by the function,
//     with the workqueue's name as an argument) on the track of the
//     kworker that ran them, inside its "running" slices — a work item
//     that sleeps is cut where its kworker leaves the CPU (args.slept)
//     and goes on in the kworker's next running slice (args.resumed) —
//     and, for a WQ_BH workqueue, on its CPU's track inside the softirq
//     that ran it, with any interrupt handler that interrupted it nested
//     inside;
//   - instant events for timer_start and hrtimer_start (mod_timer,
//     hrtimer_start), timer_cancel and hrtimer_cancel, softirq_raise,
//     sched_wakeup, workqueue_queue_work (queue_work, with the workqueue
//     and CPUs as arguments) and workqueue_activate_work;
//   - flow arrows from a timer_start to the callback it caused, from an
//     hrtimer_start to its callback, from the first softirq_raise of a
//     pending vector to the softirq run it caused (tasklet_schedule and
//     tasklet_hi_schedule raise TASKLET and HI: the kernel has no
//     tasklet_schedule event, so a tasklet's arrow is its raise's), from
//     a sched_wakeup to the task's next run, and from a
//     workqueue_queue_work to the execution it caused (an item queued
//     again while it runs: to its next execution).
//
// What is a slice, an instant or a flow is data: the tables sliceRules,
// instantRules and flowRules.
//
// Kernel counterpart: none; the Linux equivalent is Perfetto's own ftrace
// importer. Differences: timestamps are the records' (ns since boot),
// except that records sharing a timestamp (virtual time stands still while
// tasks run) are spread 1 ns apart in emission order, so that their order
// and nesting show. Slices that do not nest, as concurrent real-time
// records may not, are cut: a slice whose exit arrives while slices opened
// after it are still open closes them too (with args.cut = true).
package perfetto

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/kdefer/kdefer/trace"
)

// Process ids of the two groups of tracks.
const (
	PIDCPUs  = 1 // one track (tid) per CPU: tid = CPU number
	PIDTasks = 2 // one track per task: tid = the task's pid
)

// Options say how to name what records point to.
type Options struct {
	// Symbol names a function PC (a Sym field); nil: trace.SymbolName.
	Symbol func(pc uint64) string
	// String resolves an interned string id (a Str field); nil: "".
	String func(id uint64) string
	// CPUs is the number of CPU tracks to name (0: those seen).
	CPUs int
	// Title names the trace (otherData.title), e.g. the command recorded.
	Title string
}

// FromFile returns Options that resolve f's strings and symbols.
func FromFile(f *trace.File) Options {
	return Options{Symbol: f.Symbol, String: f.String, CPUs: f.Header.CPUs}
}

// Event is one Chrome trace event, as written.
type Event struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	TS   float64        `json:"ts"` // µs
	Dur  *float64       `json:"dur,omitempty"`
	PID  int            `json:"pid"`
	TID  int            `json:"tid"`
	ID   uint64         `json:"id,omitempty"`
	BP   string         `json:"bp,omitempty"`
	S    string         `json:"s,omitempty"`
	Args map[string]any `json:"args,omitempty"`
}

// Trace is the top-level JSON object.
type Trace struct {
	TraceEvents     []Event        `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit"`
	OtherData       map[string]any `json:"otherData,omitempty"`
}

// track identifies a timeline row.
type track struct{ pid, tid int }

// open is a slice that has begun and not ended.
type open struct {
	rule *sliceRule
	key  uint64
	ts   int64
	name string
	cat  string
	args map[string]any
}

// sliceRule: records of entry open a slice that the record of exit with
// the same key closes. args, if set, gives the slice's arguments.
type sliceRule struct {
	entry, exit trace.Event
	cat         string
	key         func(r *trace.Record) uint64
	name        func(x *exporter, r *trace.Record) string
	args        func(x *exporter, r *trace.Record) map[string]any
}

// instantRule: records of ev are instants. args, if set, gives their
// arguments.
type instantRule struct {
	ev   trace.Event
	cat  string
	name func(x *exporter, r *trace.Record) string
	args func(x *exporter, r *trace.Record) map[string]any
}

// flowRule: a record of from starts an arrow that the next slice begun by
// a record of to with the same key (and, if sameCPU, on the same CPU)
// ends. A from while an arrow with its key is pending starts none (a
// second raise of a pending softirq causes nothing more).
type flowRule struct {
	from, to trace.Event
	cat      string
	sameCPU  bool
	fromKey  func(r *trace.Record) uint64
	toKey    func(r *trace.Record) uint64
}

func arg0(r *trace.Record) uint64 { return r.Args[0] }

func symName(i int) func(x *exporter, r *trace.Record) string {
	return func(x *exporter, r *trace.Record) string { return x.sym(r.Args[i]) }
}

var sliceRules = []sliceRule{
	{entry: trace.IRQHandlerEntry, exit: trace.IRQHandlerExit, cat: "irq", key: arg0,
		name: func(x *exporter, r *trace.Record) string {
			return fmt.Sprintf("irq %d: %s", int32(r.Args[0]), x.str(r.Args[1]))
		}},
	{entry: trace.SoftirqEntry, exit: trace.SoftirqExit, cat: "softirq", key: arg0,
		name: func(x *exporter, r *trace.Record) string { return "softirq " + softirqName(r.Args[0]) }},
	{entry: trace.TimerExpireEntry, exit: trace.TimerExpireExit, cat: "timer", key: arg0, name: symName(2)},
	{entry: trace.HrtimerExpireEntry, exit: trace.HrtimerExpireExit, cat: "hrtimer", key: arg0, name: symName(2)},
	{entry: trace.TaskletEntry, exit: trace.TaskletExit, cat: "tasklet", key: arg0, name: symName(1)},
	{entry: trace.WorkqueueExecuteStart, exit: trace.WorkqueueExecuteEnd, cat: "workqueue", key: arg0, name: symName(1),
		args: func(x *exporter, r *trace.Record) map[string]any {
			if wq, ok := x.wqOf[r.Args[0]]; ok {
				return map[string]any{"workqueue": wq}
			}
			return nil
		}},
}

var instantRules = []instantRule{
	{ev: trace.TimerStart, cat: "timer", name: func(x *exporter, r *trace.Record) string { return "timer_start " + x.sym(r.Args[1]) }},
	{ev: trace.TimerCancel, cat: "timer", name: func(*exporter, *trace.Record) string { return "timer_cancel" }},
	{ev: trace.HrtimerStart, cat: "hrtimer", name: func(x *exporter, r *trace.Record) string { return "hrtimer_start " + x.sym(r.Args[1]) }},
	{ev: trace.HrtimerCancel, cat: "hrtimer", name: func(*exporter, *trace.Record) string { return "hrtimer_cancel" }},
	{ev: trace.SoftirqRaise, cat: "softirq", name: func(_ *exporter, r *trace.Record) string { return "softirq_raise " + softirqName(r.Args[0]) }},
	{ev: trace.SchedWakeup, cat: "sched", name: func(_ *exporter, r *trace.Record) string {
		return fmt.Sprintf("wakeup %s/%d", trace.UnpackComm(r.Args[0], r.Args[1]), int32(r.Args[2]))
	}},
	{ev: trace.WorkqueueQueueWork, cat: "workqueue",
		name: func(x *exporter, r *trace.Record) string { return "queue_work " + x.sym(r.Args[1]) },
		args: func(x *exporter, r *trace.Record) map[string]any {
			return map[string]any{"workqueue": x.str(r.Args[2]), "req_cpu": int32(r.Args[3]), "cpu": int32(r.Args[4])}
		}},
	{ev: trace.WorkqueueActivateWork, cat: "workqueue",
		name: func(x *exporter, r *trace.Record) string { return "activate_work " + x.sym(r.Args[1]) }},
}

var flowRules = []flowRule{
	{from: trace.TimerStart, to: trace.TimerExpireEntry, cat: "timer", fromKey: arg0, toKey: arg0},
	{from: trace.HrtimerStart, to: trace.HrtimerExpireEntry, cat: "hrtimer", fromKey: arg0, toKey: arg0},
	{from: trace.SoftirqRaise, to: trace.SoftirqEntry, cat: "softirq", sameCPU: true, fromKey: arg0, toKey: arg0},
	{from: trace.SchedWakeup, to: trace.SchedSwitch, cat: "sched",
		fromKey: func(r *trace.Record) uint64 { return uint64(uint32(r.Args[2])) },
		toKey:   func(r *trace.Record) uint64 { return uint64(uint32(r.Args[4])) }}, // next_pid
	// A pending item is not queued again (queue_work returns false and
	// records nothing), so each queue_work has its own execution: the
	// next execute_start of the item, also when it was queued again
	// while it ran.
	{from: trace.WorkqueueQueueWork, to: trace.WorkqueueExecuteStart, cat: "workqueue", fromKey: arg0, toKey: arg0},
}

func softirqName(vec uint64) string {
	names := [...]string{"HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU"}
	if vec < uint64(len(names)) {
		return names[vec]
	}
	return strconv.FormatUint(vec, 10)
}

// exporter holds the state of one export.
type exporter struct {
	opts    Options
	symc    map[uint64]string
	out     []Event
	stacks  map[track][]open
	pending map[flowKey]uint64 // flow id waiting for its end
	nextID  uint64
	names   map[track]string
	cpus    int
	last    int64
	expires map[uint64]uint64 // timer → expires of its last timer_start
	wqOf    map[uint64]string // work item → the workqueue of its last queue_work
	// asleep are the slices a task was in when it left its CPU, to go
	// on when it runs again.
	asleep map[track][]open
}

type flowKey struct {
	rule int
	cpu  int
	key  uint64
}

func (x *exporter) sym(pc uint64) string {
	if pc == 0 {
		return "0x0"
	}
	if s, ok := x.symc[pc]; ok {
		return s
	}
	s := x.opts.Symbol(pc)
	x.symc[pc] = s
	return s
}

func (x *exporter) str(id uint64) string { return x.opts.String(id) }

// us converts ns to the JSON's µs.
func us(ns int64) float64 { return float64(ns) / 1000 }

// Build returns the timeline of recs (in any order).
func Build(recs []trace.Record, opts Options) *Trace {
	if opts.Symbol == nil {
		opts.Symbol = trace.SymbolName
	}
	if opts.String == nil {
		opts.String = func(uint64) string { return "" }
	}
	x := &exporter{opts: opts, symc: map[uint64]string{}, stacks: map[track][]open{},
		pending: map[flowKey]uint64{}, names: map[track]string{}, cpus: opts.CPUs, expires: map[uint64]uint64{},
		wqOf: map[uint64]string{}, asleep: map[track][]open{}}
	sorted := append([]trace.Record(nil), recs...)
	trace.SortRecords(sorted)
	// Spread equal timestamps 1 ns apart, in emission order.
	var prev int64 = -1 << 62
	for i := range sorted {
		if sorted[i].TS <= prev {
			sorted[i].TS = prev + 1
		}
		prev = sorted[i].TS
	}
	for i := range sorted {
		x.record(&sorted[i])
	}
	// Close what is still open at the last timestamp.
	tracks := make([]track, 0, len(x.stacks))
	for tr := range x.stacks {
		tracks = append(tracks, tr)
	}
	sort.Slice(tracks, func(i, j int) bool {
		if tracks[i].pid != tracks[j].pid {
			return tracks[i].pid < tracks[j].pid
		}
		return tracks[i].tid < tracks[j].tid
	})
	for _, tr := range tracks {
		for len(x.stacks[tr]) > 0 {
			x.closeTop(tr, x.last, "unfinished")
		}
	}
	x.metadata()
	t := &Trace{TraceEvents: x.out, DisplayTimeUnit: "ns"}
	if opts.Title != "" {
		t.OtherData = map[string]any{"title": opts.Title}
	}
	return t
}

// Write writes the timeline of recs as JSON to w.
func Write(w io.Writer, recs []trace.Record, opts Options) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(Build(recs, opts)); err != nil {
		return err
	}
	return bw.Flush()
}

// trackOf is where r's slices and instants go: interrupt context on its
// CPU's track, process context on its task's track (the CPU's when the
// record has no task).
func trackOf(r *trace.Record) track {
	if r.Flags&(trace.FlagHardirq|trace.FlagSoftirq) != 0 || r.PID <= 0 {
		return track{PIDCPUs, int(r.CPU)}
	}
	return track{PIDTasks, int(r.PID)}
}

func (x *exporter) record(r *trace.Record) {
	x.last = r.TS
	if int(r.CPU)+1 > x.cpus {
		x.cpus = int(r.CPU) + 1
	}
	if r.PID > 0 && r.Flags&(trace.FlagHardirq|trace.FlagSoftirq) == 0 {
		x.names[track{PIDTasks, int(r.PID)}] = r.CommString()
	}
	switch r.Event {
	case trace.TimerStart:
		x.expires[r.Args[0]] = r.Args[2]
	case trace.WorkqueueQueueWork:
		x.wqOf[r.Args[0]] = x.str(r.Args[2])
	}
	if r.Event == trace.SchedSwitch {
		x.schedSwitch(r)
	}
	for i := range sliceRules {
		sr := &sliceRules[i]
		switch r.Event {
		case sr.entry:
			tr := trackOf(r)
			o := open{rule: sr, key: sr.key(r), ts: r.TS, name: sr.name(x, r), cat: sr.cat}
			if sr.args != nil {
				o.args = sr.args(x, r)
			}
			if r.Event == trace.TimerExpireEntry {
				if exp, ok := x.expires[r.Args[0]]; ok {
					o.args = map[string]any{"lateness_jiffies": int64(r.Args[1] - exp)}
				}
			}
			x.stacks[tr] = append(x.stacks[tr], o)
			x.flowEnd(r, tr)
		case sr.exit:
			x.closeMatching(trackOf(r), sr, sr.key(r), r.TS)
		}
	}
	for i := range instantRules {
		ir := &instantRules[i]
		if r.Event == ir.ev {
			tr := trackOf(r)
			ev := Event{Name: ir.name(x, r), Cat: ir.cat, Ph: "i", S: "t", TS: us(r.TS), PID: tr.pid, TID: tr.tid}
			if ir.args != nil {
				ev.Args = ir.args(x, r)
			}
			x.out = append(x.out, ev)
			x.flowStart(r, tr)
		}
	}
}

// schedSwitch turns kdefer's sched_switch records into "running" slices:
// a switch from swapper/N to a task starts one on the task's track, a
// switch from a task to swapper/N ends it (see package trace's doc). The
// slices a task is in when it leaves its CPU (a work item that sleeps)
// end there, marked slept, and go on, marked resumed, inside the task's
// next running slice: so they nest in the running slices, and the gaps
// show the sleeps.
func (x *exporter) schedSwitch(r *trace.Record) {
	nextPID := int(int32(r.Args[4]))
	prevPID := int(r.PID)
	if nextPID > 0 {
		tr := track{PIDTasks, nextPID}
		x.names[tr] = trace.UnpackComm(r.Args[2], r.Args[3])
		x.stacks[tr] = append(x.stacks[tr], open{key: uint64(nextPID), ts: r.TS, name: "running", cat: "sched",
			args: map[string]any{"cpu": int(r.CPU)}})
		x.flowEnd(r, tr)
		for _, o := range x.asleep[tr] {
			o.ts = r.TS
			o.args = withArg(o.args, "resumed", true)
			x.stacks[tr] = append(x.stacks[tr], o)
		}
		delete(x.asleep, tr)
	}
	if prevPID > 0 && nextPID == 0 {
		tr := track{PIDTasks, prevPID}
		st := x.stacks[tr]
		base := 0 // the slices above the task's running slice sleep with it
		for i := len(st) - 1; i >= 0; i-- {
			if st[i].rule == nil && st[i].key == uint64(prevPID) {
				base = i + 1
				break
			}
		}
		asleep := append([]open(nil), st[base:]...)
		for len(x.stacks[tr]) > base {
			x.closeTop(tr, r.TS, "slept")
		}
		x.asleep[tr] = append(x.asleep[tr], asleep...)
		x.closeMatching(tr, nil, uint64(prevPID), r.TS)
	}
}

// withArg returns a copy of args with k set to v.
func withArg(args map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(args)+1)
	for ak, av := range args {
		out[ak] = av
	}
	out[k] = v
	return out
}

// closeMatching closes the innermost open slice of tr made by rule with
// key, and any slice opened after it (cut: they did not nest). An exit
// with nothing to match (its entry was before the recording, or lost) is
// ignored; one whose slice is asleep with its task ends it there.
func (x *exporter) closeMatching(tr track, rule *sliceRule, key uint64, ts int64) {
	st := x.stacks[tr]
	for i := len(st) - 1; i >= 0; i-- {
		if st[i].rule == rule && st[i].key == key {
			for len(x.stacks[tr]) > i+1 {
				x.closeTop(tr, ts, "cut")
			}
			x.closeTop(tr, ts, "")
			return
		}
	}
	as := x.asleep[tr]
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].rule == rule && as[i].key == key {
			x.asleep[tr] = as[:i] // and what it was in (they did not nest)
			return
		}
	}
}

func (x *exporter) closeTop(tr track, ts int64, why string) {
	st := x.stacks[tr]
	o := st[len(st)-1]
	x.stacks[tr] = st[:len(st)-1]
	dur := us(ts - o.ts)
	args := o.args
	if why != "" {
		args = withArg(args, why, true)
	}
	x.out = append(x.out, Event{Name: o.name, Cat: o.cat, Ph: "X", TS: us(o.ts), Dur: &dur, PID: tr.pid, TID: tr.tid, Args: args})
}

// flowStart starts the arrows r begins.
func (x *exporter) flowStart(r *trace.Record, tr track) {
	for i := range flowRules {
		fr := &flowRules[i]
		if r.Event != fr.from {
			continue
		}
		k := flowKey{rule: i, cpu: -1, key: fr.fromKey(r)}
		if fr.sameCPU {
			k.cpu = int(r.CPU)
		}
		if _, ok := x.pending[k]; ok && fr.sameCPU {
			continue // already raised: this raise causes nothing more
		}
		x.nextID++
		x.pending[k] = x.nextID
		x.out = append(x.out, Event{Name: fr.cat, Cat: fr.cat, Ph: "s", TS: us(r.TS), PID: tr.pid, TID: tr.tid, ID: x.nextID})
	}
}

// flowEnd ends the arrows that wait for the slice r begins on tr.
func (x *exporter) flowEnd(r *trace.Record, tr track) {
	for i := range flowRules {
		fr := &flowRules[i]
		if r.Event != fr.to {
			continue
		}
		k := flowKey{rule: i, cpu: -1, key: fr.toKey(r)}
		if fr.sameCPU {
			k.cpu = int(r.CPU)
		}
		id, ok := x.pending[k]
		if !ok {
			continue
		}
		delete(x.pending, k)
		x.out = append(x.out, Event{Name: fr.cat, Cat: fr.cat, Ph: "f", BP: "e", TS: us(r.TS), PID: tr.pid, TID: tr.tid, ID: id})
	}
}

// metadata names the processes and tracks.
func (x *exporter) metadata() {
	// Arrows that never ended are dropped: a flow needs both ends.
	ended := map[uint64]bool{}
	for _, e := range x.out {
		if e.Ph == "f" {
			ended[e.ID] = true
		}
	}
	kept := x.out[:0]
	for _, e := range x.out {
		if e.Ph != "s" || ended[e.ID] {
			kept = append(kept, e)
		}
	}
	x.out = kept
	meta := []Event{
		{Name: "process_name", Ph: "M", PID: PIDCPUs, Args: map[string]any{"name": "CPUs"}},
		{Name: "process_sort_index", Ph: "M", PID: PIDCPUs, Args: map[string]any{"sort_index": 0}},
		{Name: "process_name", Ph: "M", PID: PIDTasks, Args: map[string]any{"name": "tasks"}},
		{Name: "process_sort_index", Ph: "M", PID: PIDTasks, Args: map[string]any{"sort_index": 1}},
	}
	for cpu := 0; cpu < x.cpus; cpu++ {
		meta = append(meta,
			Event{Name: "thread_name", Ph: "M", PID: PIDCPUs, TID: cpu, Args: map[string]any{"name": fmt.Sprintf("CPU %d", cpu)}},
			Event{Name: "thread_sort_index", Ph: "M", PID: PIDCPUs, TID: cpu, Args: map[string]any{"sort_index": cpu}})
	}
	tasks := make([]int, 0, len(x.names))
	for tr := range x.names {
		tasks = append(tasks, tr.tid)
	}
	sort.Ints(tasks)
	for _, pid := range tasks {
		meta = append(meta,
			Event{Name: "thread_name", Ph: "M", PID: PIDTasks, TID: pid, Args: map[string]any{"name": fmt.Sprintf("%s/%d", x.names[track{PIDTasks, pid}], pid)}},
			Event{Name: "thread_sort_index", Ph: "M", PID: PIDTasks, TID: pid, Args: map[string]any{"sort_index": pid}})
	}
	x.out = append(meta, x.out...)
}
