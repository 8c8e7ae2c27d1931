package top

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/trace"
)

// ErrStep is wrapped by NewReplay's error for a step that is not positive
// or cuts the recording into more than MaxFrames frames.
var ErrStep = errors.New("top: invalid step")

// MaxFrames bounds the frames of a Replay (each holds a snapshot of the
// counters and the task table: a few kilobytes).
const MaxFrames = 100000

// Replay is a recording (a trace file `kdefer trace record` wrote) cut
// into frames, one every step of the recording's time: what `kdefer top
// FILE` plays. Frame i shows the recording up to its time At(i): the
// counters of stats.Replay (softirqs per CPU and vector, the timer wheel's
// pending timers per level and their lateness, the workqueues' counts),
// the worker pools and the tasks as far as the records tell (see
// poolTable for the pools), and the latest records as trace report lines.
//
// The tasks come from the scheduler's records: sched_switch gives the
// state a task left its CPU in (ps's letter: S, D, I …; R when preempted)
// and puts the next task in R on that CPU, sched_wakeup makes a task R,
// and any record a task was current for shows it running there. A kernel
// thread is known as one only when a kthread event names it
// (sched_kthread_stop, a kthread_worker's work); a task that exited
// (sched_switch's X or Z) leaves the table — the records do not tell when
// a zombie is reaped. Without sched_switch records the states are unknown
// ('?').
//
// There is no kernel counterpart: this is trace-cmd report and top(1)
// over a trace.dat.
type Replay struct {
	recs   []trace.Record // time order
	fm     *trace.Formatter
	frames []frame
	end    int64
}

// frame is the recording up to at.
type frame struct {
	at    int64 // ns since boot
	next  int   // recs[:next] are at or before at
	stats stats.Snapshot
	pools []Pool
	tasks []Task
}

// NewReplay cuts f into frames of step (the last one ends with the last
// record; a recording without records has one frame, at 0). It sorts
// f.Records into time order (trace.SortRecords) and keeps them: a long
// recording is not copied. It fails with
// an error wrapping ErrStep for a step that is not positive or makes more
// than MaxFrames frames, and with one wrapping stats.ErrReplay for a
// header no kernel ran with.
func NewReplay(f *trace.File, step time.Duration) (*Replay, error) {
	if step <= 0 {
		return nil, fmt.Errorf("%w: %v (want a positive duration)", ErrStep, step)
	}
	recs := f.Records
	trace.SortRecords(recs)
	hz := jiffies.HZ(f.Header.HZ)
	if hz == 0 {
		hz = jiffies.DefaultHZ
	}
	sp, err := stats.NewReplay(f.Header.CPUs, hz)
	if err != nil {
		return nil, err
	}
	sp.SetStrings(f.String)
	r := &Replay{recs: recs, fm: f.Formatter()}
	if len(recs) > 0 {
		r.end = max(recs[len(recs)-1].TS, 0)
	}
	n := (r.end + int64(step) - 1) / int64(step)
	if n > MaxFrames {
		return nil, fmt.Errorf("%w: %v cuts %.3fs into %d frames (at most %d)", ErrStep, step, float64(r.end)/1e9, n, MaxFrames)
	}
	n = max(n, 1)
	// Losses are counted where the report shows them: before the CPU's
	// first record read after them, or at the end.
	before := map[uint64][]trace.Drop{}
	var tail []trace.Drop
	for _, d := range f.Drops {
		if d.Before == 0 {
			tail = append(tail, d)
		} else {
			before[d.Before] = append(before[d.Before], d)
		}
	}
	ts := newTaskTable(recs)
	pt := newPoolTable(f.Header.CPUs, ts.sched)
	r.frames = make([]frame, 0, n)
	i := 0
	for k := int64(1); k <= n; k++ {
		at := min(k*int64(step), r.end)
		for ; i < len(recs) && recs[i].TS <= at; i++ {
			rec := &recs[i]
			for _, d := range before[rec.Seq] {
				sp.AddLost(d.CPU, d.Count)
			}
			sp.Add(rec)
			ts.apply(rec)
			pt.apply(rec)
		}
		if k == n {
			for _, d := range tail {
				sp.AddLost(d.CPU, d.Count)
			}
		}
		r.frames = append(r.frames, frame{at: at, next: i, stats: sp.Snapshot(at), pools: pt.list(ts.tasks), tasks: ts.list()})
	}
	return r, nil
}

// Len returns the number of frames (at least 1).
func (r *Replay) Len() int { return len(r.frames) }

// At returns the time of frame i, in ns since boot.
func (r *Replay) At(i int) int64 { return r.frames[r.clamp(i)].at }

// End returns the time of the last record, in ns since boot.
func (r *Replay) End() int64 { return r.end }

// FrameAt returns the first frame at or after ns (ns since boot): the one
// that shows the records up to ns; the last frame for a time past the end.
func (r *Replay) FrameAt(ns int64) int {
	i, _ := slices.BinarySearchFunc(r.frames, ns, func(f frame, ns int64) int {
		switch {
		case f.at < ns:
			return -1
		case f.at > ns:
			return 1
		}
		return 0
	})
	return r.clamp(i)
}

func (r *Replay) clamp(i int) int { return max(0, min(i, len(r.frames)-1)) }

// Sample returns frame i as a sample: its counters and tasks, and as Log
// the latest events records at or before its time, oldest first, each as
// EventLine prints it.
func (r *Replay) Sample(i, events int) Sample {
	f := &r.frames[r.clamp(i)]
	s := Sample{Stats: f.stats, Pools: f.pools, Tasks: f.tasks}
	for j := max(f.next-events, 0); j < f.next; j++ {
		s.Log = append(s.Log, EventLine(r.fm, &r.recs[j]))
	}
	return s
}

// EventLine is a record as the events pane shows it: what trace report
// prints (the time, the CPU, the task as comm-pid, the event and its
// fields by the event's TP_printk), in that order and without the padding
// that aligns the report's columns, so that the fields fit a terminal:
//
//	0.448000 [000] <idle>-0 timer_expire_entry: timer=… function=ding now=4294892408 baseclk=4294892408
func EventLine(fm *trace.Formatter, r *trace.Record) string {
	comm := r.CommString()
	switch {
	case r.PID == 0:
		comm = "<idle>"
	case comm == "":
		comm = "<...>"
	}
	us := (uint64(r.TS) + 500) / 1000
	return fmt.Sprintf("%d.%06d [%03d] %s-%d %s: %s", us/1e6, us%1e6, r.CPU, comm, r.PID, r.Event.Name(), fm.Info(r))
}

// Batch writes the first n frames of rp (n <= 0: every frame) as text, as
// top -b does for scripts: each frame's screen with the header, the
// softirq rates, the timer wheel, every task and the latest events records
// (at most events lines), cut to width columns, without the key line; a
// blank line between frames. It returns w's error.
func Batch(w io.Writer, rp *Replay, title string, n, width, events int) error {
	if n <= 0 || n > rp.Len() {
		n = rp.Len()
	}
	bw := bufio.NewWriter(w)
	m := &Model{title: title, width: max(width, 20), replay: rp, speed: 1, batch: true}
	for i := range n {
		cur := rp.Sample(i, events)
		m.pos, m.cur, m.prev = i, &cur, nil
		if i > 0 {
			prev := rp.Sample(i-1, 0)
			m.prev = &prev
		}
		if i > 0 {
			bw.WriteString("\n")
		}
		bw.WriteString(m.Render())
		bw.WriteString("\n")
	}
	return bw.Flush()
}

// ParseJump parses where the jump prompt sends a replay that ends at end
// (ns since boot): seconds (1.5, 1.5s), a Go duration (1500ms, 1m2s) or a
// share of the recording (50%). It returns ns since boot.
func ParseJump(s string, end int64) (int64, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return 0, fmt.Errorf("%q: want a percentage 0..100", s)
		}
		return int64(f / 100 * float64(end)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return int64(d), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e9 {
		return 0, fmt.Errorf("%q: want seconds (1.5), a duration (1500ms) or a percentage (50%%)", s)
	}
	return int64(f * 1e9), nil
}

// taskTable is what the records tell about the tasks so far.
type taskTable struct {
	sched bool // sched_switch was recorded: states are known
	tasks map[int32]*Task
}

func newTaskTable(recs []trace.Record) *taskTable {
	t := &taskTable{tasks: map[int32]*Task{}}
	for i := range recs {
		if recs[i].Event == trace.SchedSwitch {
			t.sched = true
			break
		}
	}
	return t
}

// task returns pid's entry, made if new, with comm (when known) as its
// name.
func (t *taskTable) task(pid int32, comm string) *Task {
	tk := t.tasks[pid]
	if tk == nil {
		tk = &Task{PID: int(pid), State: '?'}
		t.tasks[pid] = tk
	}
	if comm != "" {
		tk.Comm = comm
	}
	return tk
}

// running marks pid running on cpu (pid 0, the idle tasks, and -1,
// unknown, are not tasks).
func (t *taskTable) running(pid int32, comm string, cpu uint16) *Task {
	if pid <= 0 {
		return nil
	}
	tk := t.task(pid, comm)
	tk.CPU = int(cpu)
	if t.sched {
		tk.State = 'R'
	}
	return tk
}

func (t *taskTable) apply(r *trace.Record) {
	t.running(r.PID, r.CommString(), r.CPU)
	a := &r.Args
	switch r.Event {
	case trace.SchedSwitch:
		if r.PID > 0 {
			tk := t.tasks[r.PID]
			if tk.State = switchLetter(a[1]); tk.State == 'X' || tk.State == 'Z' {
				delete(t.tasks, r.PID) // it exited
			}
		}
		t.running(int32(a[4]), trace.UnpackComm(a[2], a[3]), r.CPU)
	case trace.SchedWakeup:
		t.running(int32(a[2]), trace.UnpackComm(a[0], a[1]), uint16(a[4]))
	case trace.SchedKthreadStop:
		if pid := int32(a[2]); pid > 0 {
			t.task(pid, trace.UnpackComm(a[0], a[1])).Kthread = true
		}
	case trace.SchedKthreadWorkExecuteStart, trace.SchedKthreadWorkExecuteEnd:
		if tk := t.tasks[r.PID]; tk != nil {
			tk.Kthread = true
		}
	}
}

// list returns the tasks, by pid.
func (t *taskTable) list() []Task {
	out := make([]Task, 0, len(t.tasks))
	for _, tk := range t.tasks {
		out = append(out, *tk)
	}
	slices.SortFunc(out, func(a, b Task) int { return a.PID - b.PID })
	return out
}

// switchLetter is ps's letter for sched_switch's prev_state: R for a
// preempted or running task, else the one state bit it reports.
func switchLetter(state uint64) byte {
	if state&trace.TaskReportMax != 0 {
		return 'R'
	}
	for i, l := range []byte("SDTtXZPI") {
		if state&(1<<i) != 0 {
			return l
		}
	}
	return 'R'
}
