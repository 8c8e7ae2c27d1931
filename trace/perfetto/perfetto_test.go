package perfetto_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/tasklet"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/trace/perfetto"
	"github.com/kdefer/kdefer/workqueue"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func ding(c *kernel.Ctx, t *timer.Timer) {}

func blink(c *kernel.Ctx, t *tasklet.Tasklet) {}

func bhWork(c *kernel.Ctx, w *workqueue.Work) {}

func lateWork(c *kernel.Ctx, w *workqueue.Work) {}

// sleepy runs twice: its first run queues it again, and each run sleeps
// 10 ms and then runs a tasklet from its own context (local_bh_enable runs
// the softirq it raised).
func sleepy(tl *tasklet.Tasklet) workqueue.Func {
	runs := 0
	return func(c *kernel.Ctx, w *workqueue.Work) {
		if runs++; runs == 1 {
			workqueue.ScheduleWork(c, w)
		}
		delay.Msleep(c, 10)
		kernel.LocalBHDisable(c)
		tasklet.Schedule(c, tl)
		kernel.LocalBHEnable(c)
	}
}

// scenario runs a virtual kernel through every kind of slice and arrow:
// a task arms a timer (mod_timer → callback), an interrupt schedules a
// tasklet (hardirq → raise → TASKLET softirq → tasklet) and queues a BH
// work item (run in that softirq), tasks wake; a work item queued from
// the task queues itself again while it runs and sleeps (queue_work → its
// kworker's execution → the next), and a delayed item is queued by its
// timer (softirq → kworker).
func scenario(t *testing.T) ([]trace.Record, perfetto.Options) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true, TraceEvents: "all"})
	var tm timer.Timer
	var tl, tl2 tasklet.Tasklet
	var bw, sw workqueue.Work
	var dw workqueue.DelayedWork
	tasklet.Setup(&tl, blink)
	tasklet.Setup(&tl2, blink)
	workqueue.Init(&bw, bhWork)
	workqueue.Init(&sw, sleepy(&tl2))
	workqueue.InitDelayed(&dw, lateWork)
	k.RequestIRQ(9, func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		tasklet.Schedule(c, &tl)
		workqueue.QueueWork(c, workqueue.SystemBH(k), &bw)
		return kernel.IRQHandled
	}, 0, "acpi", nil)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, ding, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
		workqueue.ScheduleWorkOn(c, 0, &sw)
		workqueue.ScheduleDelayedWorkOn(c, 1, &dw, 3)
	})
	ktest.Run(t, k, 100_000_000)
	k.GenerateIRQ(1, 9)
	ktest.Run(t, k, 10_000_000)
	recs, lost := k.Tracer().Snapshot()
	for cpu, n := range lost {
		if n > 0 {
			t.Fatalf("CPU %d lost %d records", cpu, n)
		}
	}
	return recs, perfetto.Options{String: k.Tracer().String, Title: "test"}
}

// decode writes and reads back the timeline as generic JSON, as a viewer
// would see it.
func decode(t *testing.T, recs []trace.Record, opts perfetto.Options) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := perfetto.Write(&buf, recs, opts); err != nil {
		t.Fatal(err)
	}
	var top struct {
		TraceEvents     []map[string]any `json:"traceEvents"`
		DisplayTimeUnit string           `json:"displayTimeUnit"`
	}
	if err := json.Unmarshal(buf.Bytes(), &top); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if top.DisplayTimeUnit != "ns" || len(top.TraceEvents) == 0 {
		t.Fatalf("top level: unit %q, %d events", top.DisplayTimeUnit, len(top.TraceEvents))
	}
	return top.TraceEvents
}

func TestEveryEventHasTheRequiredFields(t *testing.T) {
	recs, opts := scenario(t)
	for _, e := range decode(t, recs, opts) {
		for _, f := range []string{"name", "ph", "pid"} {
			if _, ok := e[f]; !ok {
				t.Errorf("event lacks %q: %v", f, e)
			}
		}
		switch e["ph"] {
		case "X":
			if _, ok := e["dur"]; !ok {
				t.Errorf("complete event without dur: %v", e)
			}
			fallthrough
		case "i", "s", "f":
			if _, ok := e["ts"]; !ok {
				t.Errorf("event without ts: %v", e)
			}
			if _, ok := e["tid"]; !ok {
				t.Errorf("event without tid: %v", e)
			}
		case "M":
		default:
			t.Errorf("unexpected phase %v", e["ph"])
		}
	}
}

// slice is a complete event, its times in ns (adding the JSON's µs
// floats would make ends that touch overlap by a rounding error).
type slice struct {
	name       string
	start, end int64
}

func ns(us any) int64 { return int64(math.Round(us.(float64) * 1000)) }

func TestSlicesNestOnEveryTrack(t *testing.T) {
	recs, opts := scenario(t)
	tracks := map[string][]slice{}
	for _, e := range decode(t, recs, opts) {
		if e["ph"] != "X" {
			continue
		}
		key := fmt.Sprint(e["pid"], "/", e["tid"])
		ts, dur := ns(e["ts"]), ns(e["dur"])
		if dur < 0 {
			t.Errorf("negative duration: %v", e)
		}
		tracks[key] = append(tracks[key], slice{e["name"].(string), ts, ts + dur})
	}
	if len(tracks) == 0 {
		t.Fatal("no slices")
	}
	for key, ss := range tracks {
		sort.SliceStable(ss, func(i, j int) bool {
			if ss[i].start != ss[j].start {
				return ss[i].start < ss[j].start
			}
			return ss[i].end > ss[j].end
		})
		var stack []slice
		for _, s := range ss {
			for len(stack) > 0 && stack[len(stack)-1].end <= s.start {
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 0 && s.end > stack[len(stack)-1].end {
				t.Errorf("track %s: %q [%v,%v] overlaps %q [%v,%v] without nesting",
					key, s.name, s.start, s.end, stack[len(stack)-1].name, stack[len(stack)-1].start, stack[len(stack)-1].end)
			}
			stack = append(stack, s)
		}
	}
}

func TestEveryFlowHasBothEnds(t *testing.T) {
	recs, opts := scenario(t)
	starts, ends := map[float64]int{}, map[float64]int{}
	cats := map[string]bool{}
	for _, e := range decode(t, recs, opts) {
		switch e["ph"] {
		case "s":
			starts[e["id"].(float64)]++
			cats[e["cat"].(string)] = true
		case "f":
			ends[e["id"].(float64)]++
			if e["bp"] != "e" {
				t.Errorf("flow end not bound to its enclosing slice: %v", e)
			}
		}
	}
	for id, n := range starts {
		if n != 1 || ends[id] != 1 {
			t.Errorf("flow %v: %d starts, %d ends", id, n, ends[id])
		}
	}
	for id := range ends {
		if starts[id] != 1 {
			t.Errorf("flow %v ends without a start", id)
		}
	}
	for _, c := range []string{"timer", "softirq", "sched"} {
		if !cats[c] {
			t.Errorf("no %s arrow; arrows of %v", c, cats)
		}
	}
}

func TestTimelineHasTheTracksAndSlicesOfTheRun(t *testing.T) {
	recs, opts := scenario(t)
	evs := decode(t, recs, opts)
	names := map[string]bool{}
	threads := map[string]bool{}
	for _, e := range evs {
		if e["ph"] == "M" && e["name"] == "thread_name" {
			threads[e["args"].(map[string]any)["name"].(string)] = true
		}
		if e["ph"] == "X" || e["ph"] == "i" {
			names[fmt.Sprint(e["cat"], ":", e["name"])] = true
		}
	}
	for _, want := range []string{"CPU 0", "CPU 1", "ksoftirqd/0/3", "test/5"} {
		if !threads[want] {
			t.Errorf("no track %q; tracks %v", want, threads)
		}
	}
	for _, want := range []string{"timer:ding", "tasklet:blink", "irq:irq 9: acpi", "softirq:softirq TIMER",
		"softirq:softirq TASKLET", "sched:running", "timer:timer_start ding", "softirq:softirq_raise TASKLET"} {
		if !names[want] {
			t.Errorf("no %q; have %v", want, strings.Join(keys(names), ", "))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestUnmatchedAndInterleavedSlicesStillNest(t *testing.T) {
	r := func(ts int64, e trace.Event, a0 uint64) trace.Record {
		return trace.Record{TS: ts, Seq: uint64(ts), Event: e, Flags: trace.FlagSoftirq, Args: trace.Args{a0}}
	}
	recs := []trace.Record{
		r(1000, trace.SoftirqExit, 1), // its entry was before the recording
		r(2000, trace.SoftirqEntry, 1),
		r(3000, trace.SoftirqEntry, 6),
		r(4000, trace.SoftirqExit, 1), // not the innermost: TASKLET is cut
		r(5000, trace.SoftirqExit, 6),
		r(6000, trace.SoftirqEntry, 9), // never exits
		r(7000, trace.SoftirqRaise, 3),
	}
	var got []string
	for _, e := range decode(t, recs, perfetto.Options{}) {
		if e["ph"] == "X" {
			got = append(got, fmt.Sprintf("%v@%v+%v%v", e["name"], e["ts"], e["dur"], e["args"]))
		}
	}
	want := []string{
		"softirq TASKLET@3+1map[cut:true]",
		"softirq TIMER@2+2<nil>",
		"softirq RCU@6+1map[unfinished:true]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("slices:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWorkItemsAreSlicesOnTheirKworkerWithArrowsFromQueueWork: each
// execution of a work item is a slice named by its function on the track
// of the kworker that ran it (a BH item's on its CPU's, inside the
// softirq), cut where the kworker slept; queue_work and activate_work are
// instants, and an arrow goes from each queue_work to the execution it
// caused — for the item queued again while it ran, to its next one.
func TestWorkItemsAreSlicesOnTheirKworkerWithArrowsFromQueueWork(t *testing.T) {
	recs, opts := scenario(t)
	evs := decode(t, recs, opts)
	threads := map[string]string{} // "pid/tid" → track name
	for _, e := range evs {
		if e["ph"] == "M" && e["name"] == "thread_name" {
			threads[fmt.Sprint(e["pid"], "/", e["tid"])] = e["args"].(map[string]any)["name"].(string)
		}
	}
	type run struct {
		track      string
		start, end int64
		args       map[string]any
	}
	runs := map[string][]run{}   // function → its slices, in time order
	starts := map[int64]string{} // flow end time → the slice it ends on
	var flowS, flowF []map[string]any
	instants := map[string]int{}
	for _, e := range evs {
		if e["cat"] != "workqueue" {
			continue
		}
		switch e["ph"] {
		case "X":
			args, _ := e["args"].(map[string]any)
			r := run{threads[fmt.Sprint(e["pid"], "/", e["tid"])], ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]), args}
			runs[e["name"].(string)] = append(runs[e["name"].(string)], r)
			if args["resumed"] == nil {
				starts[r.start] = e["name"].(string)
			}
		case "s":
			flowS = append(flowS, e)
		case "f":
			flowF = append(flowF, e)
		case "i":
			instants[e["name"].(string)]++
			if strings.HasPrefix(e["name"].(string), "queue_work") && e["args"].(map[string]any)["workqueue"] == nil {
				t.Errorf("queue_work without its workqueue: %v", e)
			}
		}
	}
	for _, ss := range runs {
		sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
	}
	// sleepy: two executions, each slept once: four slices on one
	// kworker of CPU 0, slept and resumed in turn.
	sl := runs["sleepy"]
	if len(sl) != 4 {
		t.Fatalf("sleepy slices %+v, want 4", sl)
	}
	for i, r := range sl {
		if !strings.HasPrefix(r.track, "kworker/0:") || r.track != sl[0].track {
			t.Errorf("sleepy slice %d on %q", i, r.track)
		}
		want := "slept"
		if i%2 == 1 {
			want = "resumed"
		}
		if r.args[want] != true || r.args["workqueue"] != "events" {
			t.Errorf("sleepy slice %d args %v, want %s and workqueue events", i, r.args, want)
		}
	}
	if late := runs["lateWork"]; len(late) != 1 || !strings.HasPrefix(late[0].track, "kworker/1:") {
		t.Errorf("lateWork slices %+v, want one on a kworker of CPU 1", late)
	}
	if bh := runs["bhWork"]; len(bh) != 1 || bh[0].track != "CPU 1" || bh[0].args["workqueue"] != "events_bh" {
		t.Errorf("bhWork slices %+v, want one on CPU 1", bh)
	}
	// Four arrows: sleepy's two queueings, lateWork's and bhWork's.
	if len(flowS) != 4 || len(flowF) != 4 {
		t.Fatalf("%d workqueue arrow starts, %d ends; want 4", len(flowS), len(flowF))
	}
	ends := map[float64]int64{}
	for _, f := range flowF {
		ends[f["id"].(float64)] = ns(f["ts"])
	}
	var sleepyEnds []int64
	for _, s := range flowS {
		end, from := ends[s["id"].(float64)], ns(s["ts"])
		if starts[end] == "" || end < from {
			t.Errorf("arrow %v from %d ends at %d, not at an execution's start after it", s["id"], from, end)
		}
		if starts[end] == "sleepy" {
			sleepyEnds = append(sleepyEnds, end)
			if from > sl[0].start && from < sl[1].end && end != sl[2].start {
				t.Errorf("the queueing inside sleepy's first run points at %d, not at its next run (%d)", end, sl[2].start)
			}
		}
	}
	if len(sleepyEnds) != 2 {
		t.Errorf("sleepy arrows end at %v, want one at each execution", sleepyEnds)
	}
	for name, n := range map[string]int{"queue_work sleepy": 2, "activate_work sleepy": 2, "queue_work lateWork": 1,
		"activate_work bhWork": 1} {
		if instants[name] != n {
			t.Errorf("%d %q instants, want %d (have %v)", instants[name], name, n, instants)
		}
	}
}

// rec is a hand-made record of cpu 0: pid 0 unless given, the flags of
// its context.
func rec(ts int64, e trace.Event, flags uint8, pid int32, args ...uint64) trace.Record {
	r := trace.Record{TS: ts, Seq: uint64(ts), Event: e, Flags: flags, PID: pid}
	copy(r.Args[:], args)
	return r
}

// xslices returns the complete events as "track name@ts+dur{args}", in
// output order.
func xslices(t *testing.T, recs []trace.Record) []string {
	var got []string
	for _, e := range decode(t, recs, perfetto.Options{}) {
		if e["ph"] == "X" {
			got = append(got, fmt.Sprintf("%v/%v %v@%v+%v%v", e["pid"], e["tid"], e["name"], e["ts"], e["dur"], e["args"]))
		}
	}
	return got
}

func TestAnInterruptOfABHWorkItemNestsInIt(t *testing.T) {
	const soft, hard = trace.FlagSoftirq, trace.FlagHardirq
	recs := []trace.Record{
		rec(1000, trace.SoftirqEntry, soft, 0, 6),
		rec(2000, trace.WorkqueueExecuteStart, soft, 0, 0xa0, 0),
		rec(3000, trace.IRQHandlerEntry, hard, 0, 9),
		rec(4000, trace.IRQHandlerExit, hard, 0, 9, 1),
		rec(5000, trace.WorkqueueExecuteEnd, soft, 0, 0xa0, 0),
		rec(6000, trace.SoftirqExit, soft, 0, 6),
	}
	want := []string{
		"1/0 irq 9: @3+1<nil>",
		"1/0 0x0@2+3<nil>",
		"1/0 softirq TASKLET@1+5<nil>",
	}
	if got := xslices(t, recs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("slices:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A work item that sleeps is cut at its kworker's switch out and goes on
// in its next running slice; an execute_end while the kworker is off its
// CPU (its switch in was lost) ends the item there.
func TestASleepingWorkItemNestsInItsKworkersRunningSlices(t *testing.T) {
	lo, hi := trace.PackComm("kworker/0:1")
	in := func(ts int64) trace.Record { return rec(ts, trace.SchedSwitch, 0, 0, 120, 0, lo, hi, 6, 120) }
	out := func(ts int64) trace.Record { return rec(ts, trace.SchedSwitch, 0, 6, 120, 2, 0, 0, 0, 120) }
	recs := []trace.Record{
		in(1000),
		rec(2000, trace.WorkqueueExecuteStart, 0, 6, 0xa0, 0),
		out(3000), // sleeps in D
		in(5000),
		rec(6000, trace.WorkqueueExecuteEnd, 0, 6, 0xa0, 0),
		rec(6500, trace.WorkqueueExecuteStart, 0, 6, 0xb0, 0),
		out(7000),
		rec(8000, trace.WorkqueueExecuteEnd, 0, 6, 0xb0, 0), // while off the CPU
		in(9000),
		out(10000),
	}
	want := []string{
		"2/6 0x0@2+1map[slept:true]",
		"2/6 running@1+2map[cpu:0]",
		"2/6 0x0@5+1map[resumed:true]",
		"2/6 0x0@6.5+0.5map[slept:true]",
		"2/6 running@5+2map[cpu:0]",
		"2/6 running@9+1map[cpu:0]",
	}
	if got := xslices(t, recs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("slices:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
