package perfetto_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/tasklet"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/trace/perfetto"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func ding(c *kernel.Ctx, t *timer.Timer) {}

func blink(c *kernel.Ctx, t *tasklet.Tasklet) {}

// scenario runs a virtual kernel through every kind of slice and arrow:
// a task arms a timer (mod_timer → callback), an interrupt schedules a
// tasklet (hardirq → raise → TASKLET softirq → tasklet), tasks wake.
func scenario(t *testing.T) ([]trace.Record, perfetto.Options) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true, TraceEvents: "all"})
	var tm timer.Timer
	var tl tasklet.Tasklet
	tasklet.Setup(&tl, blink)
	k.RequestIRQ(9, func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		tasklet.Schedule(c, &tl)
		return kernel.IRQHandled
	}, 0, "acpi", nil)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, ding, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
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

type slice struct {
	name       string
	start, end float64
}

func TestSlicesNestOnEveryTrack(t *testing.T) {
	recs, opts := scenario(t)
	tracks := map[string][]slice{}
	for _, e := range decode(t, recs, opts) {
		if e["ph"] != "X" {
			continue
		}
		key := fmt.Sprint(e["pid"], "/", e["tid"])
		ts, dur := e["ts"].(float64), e["dur"].(float64)
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
