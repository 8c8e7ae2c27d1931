package top_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/cmd/kdefer/internal/top"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// record runs mod with params for forD of virtual time on 2 CPUs with
// every event recorded, as `kdefer trace record` does, and reads the
// recording back.
func record(t *testing.T, forD time.Duration, mod string, params ...string) *trace.File {
	t.Helper()
	var buf bytes.Buffer
	var rec *trace.Recorder
	cfg := runner.Config{Module: mod, Params: params, Virtual: true, CPUs: 2, For: forD,
		TraceEvents: "all", TraceBufferRecords: 1 << 16}
	cfg.OnBoot = func(k *kernel.Kernel) {
		var err error
		rec, err = trace.NewRecorder(&buf, k.Tracer(), trace.FileHeader{HZ: int(k.HZ()), Virtual: true, Command: append([]string{"run", mod}, params...)})
		if err != nil {
			t.Error(err)
		}
	}
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := trace.ReadFile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// periodic is 1-2-timer's periodic timer (a second ahead: wheel level 1,
// 6 jiffies late) recorded for 3 s, in frames of a second.
func periodic(t *testing.T) *top.Replay {
	t.Helper()
	rp, err := top.NewReplay(record(t, 3*time.Second, "1-2-timer", "periodic=Y"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func TestReplayFramesCountWhatTheRecordingDid(t *testing.T) {
	rp := periodic(t)
	if rp.Len() != 3 || rp.End() != 3e9 || rp.At(0) != 1e9 || rp.At(2) != 3e9 {
		t.Fatalf("%d frames at %d, %d ns, end %d", rp.Len(), rp.At(0), rp.At(2), rp.End())
	}
	for i, want := range []uint64{0, 1, 2} {
		s := rp.Sample(i, 3)
		if s.Stats.Timers.Expired != want || s.Stats.CPUs[0].Softirqs[kernel.TimerSoftirq] != want {
			t.Errorf("frame %d: %d expiries, %d TIMER softirqs; want %d", i, s.Stats.Timers.Expired, s.Stats.CPUs[0].Softirqs[kernel.TimerSoftirq], want)
		}
		if len(s.Log) != 3 {
			t.Errorf("frame %d: %d event lines, want 3", i, len(s.Log))
		}
	}
	s := rp.Sample(1, 1)
	if lv := s.Stats.Timers.Levels[1]; lv.Expired != 1 || lv.LatenessMax != 6 || lv.Pending != 1 {
		t.Errorf("level 1 after a second: %+v, want 1 expiry 6 jiffies late and the timer pending again", lv)
	}
	if s.Stats.Jiffies != 4294892296+500 || s.Stats.Now != 2e9 {
		t.Errorf("frame 2: jiffies %d at %d ns", s.Stats.Jiffies, s.Stats.Now)
	}
	if want := "1.024000 [000] <idle>-0 softirq_exit: vec=1 [action=TIMER]"; s.Log[0] != want {
		t.Errorf("latest event %q, want %q", s.Log[0], want)
	}
	if len(s.Tasks) != 2 || s.Tasks[0].Comm != "ksoftirqd/0" || s.Tasks[0].State != 'S' || s.Tasks[1].CPU != 1 {
		t.Errorf("tasks %+v, want ksoftirqd/0 and /1 asleep on their CPUs", s.Tasks)
	}
	for ns, want := range map[int64]int{0: 0, 1e9: 0, 1e9 + 1: 1, 25e8: 2, 9e9: 2} {
		if got := rp.FrameAt(ns); got != want {
			t.Errorf("FrameAt(%d) = %d, want %d", ns, got, want)
		}
	}
}

func TestNewReplayRefusesABadStepOrHeader(t *testing.T) {
	f := record(t, time.Second, "timer_simple")
	for _, step := range []time.Duration{0, -time.Second, time.Nanosecond} {
		if _, err := top.NewReplay(f, step); !errors.Is(err, top.ErrStep) {
			t.Errorf("step %v: %v", step, err)
		}
	}
	f.Header.CPUs = 0
	if _, err := top.NewReplay(f, time.Second); err == nil {
		t.Error("a header of 0 CPUs was taken")
	}
	empty := &trace.File{Header: trace.FileHeader{CPUs: 1, HZ: 100}}
	if rp, err := top.NewReplay(empty, time.Second); err != nil || rp.Len() != 1 || len(rp.Sample(0, 10).Log) != 0 {
		t.Errorf("an empty recording: %v", err)
	}
}

// sched builds records of the scheduler's events by hand.
type sched struct {
	recs []trace.Record
	ts   int64
}

func (s *sched) add(e trace.Event, pid int32, comm string, cpu uint16, args ...uint64) {
	r := trace.Record{TS: s.ts, Seq: uint64(len(s.recs) + 1), PID: pid, CPU: cpu, Event: e}
	copy(r.Comm[:], comm)
	copy(r.Args[:], args)
	s.recs = append(s.recs, r)
	s.ts += 1e6
}

func (s *sched) switchOut(pid int32, comm string, cpu uint16, state uint64) {
	lo, hi := trace.PackComm("swapper")
	s.add(trace.SchedSwitch, pid, comm, cpu, 120, state, lo, hi, 0, 120)
}

func (s *sched) switchIn(pid int32, comm string, cpu uint16) {
	lo, hi := trace.PackComm(comm)
	s.add(trace.SchedSwitch, 0, "swapper", cpu, 120, 0, lo, hi, uint64(pid), 120)
}

func (s *sched) wakeup(pid int32, comm string, cpu uint16) {
	lo, hi := trace.PackComm(comm)
	s.add(trace.SchedWakeup, 0, "swapper", cpu, lo, hi, uint64(pid), 120, uint64(cpu))
}

func tasksAt(t *testing.T, recs []trace.Record) []top.Task {
	t.Helper()
	f := &trace.File{Header: trace.FileHeader{CPUs: 2, HZ: 250}, Records: recs}
	rp, err := top.NewReplay(f, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return rp.Sample(rp.Len()-1, 0).Tasks
}

func TestReplayTaskStatesComeFromTheSchedulerRecords(t *testing.T) {
	var s sched
	s.switchIn(7, "app", 1)
	s.switchOut(7, "app", 1, trace.SwitchState(false, uint32(kernel.TaskUninterruptible))) // D
	s.switchIn(8, "kt", 0)
	s.switchOut(8, "kt", 0, trace.SwitchState(false, uint32(kernel.TaskIdle))) // I
	s.switchIn(9, "worker", 0)
	s.switchOut(9, "worker", 0, trace.SwitchState(true, 0)) // preempted: R
	s.switchIn(10, "gone", 1)
	s.switchOut(10, "gone", 1, trace.SwitchState(false, uint32(kernel.ExitDead)))
	s.switchIn(11, "zombie", 1)
	s.switchOut(11, "zombie", 1, trace.SwitchState(false, uint32(kernel.ExitZombie)))
	s.wakeup(12, "woken", 1)
	lo, hi := trace.PackComm("kt")
	s.add(trace.SchedKthreadStop, 5, "rmmod", 0, lo, hi, 8)
	got := tasksAt(t, s.recs)
	want := []top.Task{
		{PID: 5, State: 'R', Comm: "rmmod"}, // current when it stopped kt
		{PID: 7, State: 'D', CPU: 1, Comm: "app"},
		{PID: 8, State: 'I', Comm: "kt", Kthread: true},
		{PID: 9, State: 'R', Comm: "worker"},
		{PID: 12, State: 'R', CPU: 1, Comm: "woken"},
	}
	if len(got) != len(want) {
		t.Fatalf("tasks %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("task %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Without sched_switch the states are not known.
	var w sched
	w.wakeup(12, "woken", 1)
	if got := tasksAt(t, w.recs); len(got) != 1 || got[0].State != '?' {
		t.Errorf("without sched_switch: %+v", got)
	}
}

func TestParseJumpTakesSecondsDurationsAndShares(t *testing.T) {
	for in, want := range map[string]int64{"1.5": 15e8, "2s": 2e9, "1500ms": 15e8, "50%": 1e9, "0": 0, " 100% ": 2e9} {
		if got, err := top.ParseJump(in, 2e9); err != nil || got != want {
			t.Errorf("ParseJump(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "101%", "-5s", "1e300"} {
		if _, err := top.ParseJump(in, 2e9); err == nil {
			t.Errorf("ParseJump(%q) took it", in)
		}
	}
}

// keys sends each key to m.
func keys(m *top.Model, ks ...string) {
	for _, k := range ks {
		m.Update(key(k))
	}
}

func TestReplayKeysStepJumpPlayAndSpeed(t *testing.T) {
	m := top.Play(periodic(t), time.Second, "periodic.kdt")
	if !m.Playing() || m.Frame() != 0 || m.Init() == nil {
		t.Fatalf("a new replay: playing %v at frame %d", m.Playing(), m.Frame())
	}
	keys(m, "p")
	if m.Playing() || !strings.Contains(m.Render(), "replay [paused]  at 1.000s of 3.000s  frame 1/3") {
		t.Errorf("p did not pause:\n%s", m.Render())
	}
	keys(m, "right")
	if m.Frame() != 1 || !strings.Contains(m.Render(), "TIMER             1.0       0.0") {
		t.Errorf("right: frame %d\n%s", m.Frame(), m.Render())
	}
	keys(m, "left", "left")
	if m.Frame() != 0 {
		t.Errorf("left twice from 1: frame %d", m.Frame())
	}
	keys(m, "]")
	if m.Frame() != 2 || !strings.Contains(m.Render(), "[end]") {
		t.Errorf("]: frame %d\n%s", m.Frame(), m.Render())
	}
	keys(m, "g", ":", "2", "s", "enter")
	if m.Frame() != 1 {
		t.Errorf("jump to 2s: frame %d", m.Frame())
	}
	keys(m, "j", "1", "0", "0", "%", "enter")
	if m.Frame() != 2 {
		t.Errorf("jump to 100%%: frame %d", m.Frame())
	}
	keys(m, ":", "x", "y")
	if r := m.Render(); !strings.HasSuffix(r, "jump to (1.5 s, 1500ms, 50%; enter, esc): xy_") {
		t.Errorf("the jump prompt:\n%s", r)
	}
	keys(m, "enter")
	if m.Frame() != 2 || !strings.Contains(m.Render(), `jump: "xy": want seconds`) {
		t.Errorf("a bad jump moved to %d or was not said:\n%s", m.Frame(), m.Render())
	}
	keys(m, "+", "+", "-")
	if m.Speed() != 2 {
		t.Errorf("speed %d after + + -", m.Speed())
	}
	// Played to the end, space plays from the start again; a tick of an
	// older play does nothing.
	_, cmd := m.Update(key(" "))
	if !m.Playing() || m.Frame() != 0 || cmd == nil {
		t.Fatalf("space at the end: playing %v at %d", m.Playing(), m.Frame())
	}
	if !strings.Contains(m.Render(), "[playing x2]") {
		t.Errorf("no play status:\n%s", m.Render())
	}
	m.Update(cmd()) // the tick: two frames on, the last: it stops
	if m.Frame() != 2 || m.Playing() {
		t.Errorf("after a tick at x2: frame %d, playing %v", m.Frame(), m.Playing())
	}
	keys(m, "space", "G") // play, then End: paused at the end
	if m.Playing() || m.Frame() != 2 {
		t.Errorf("G: playing %v at %d", m.Playing(), m.Frame())
	}
	keys(m, "g", "s", "/", "/", "1", "enter")
	if r := m.Render(); !strings.Contains(r, "(1 tasks, by state  filter: /1)") || !strings.Contains(r, "ksoftirqd/1") {
		t.Errorf("sort and filter in a replay:\n%s", r)
	}
}

func TestReplayViewAt80x24IsGolden(t *testing.T) {
	m := top.Play(periodic(t), time.Second, "periodic.kdt: kdefer run 1-2-timer periodic=Y")
	keys(m, "right")
	got := m.Render()
	golden.Check(t, "testdata/replay_80x24.golden", got+"\n")
	lines := strings.Split(got, "\n")
	if len(lines) != 24 {
		t.Errorf("%d lines, want 24", len(lines))
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("line %d is %d columns: %q", i+1, n, l)
		}
	}
	for _, sz := range [][2]int{{120, 40}, {40, 12}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		lines := strings.Split(m.Render(), "\n")
		if len(lines) != sz[1] {
			t.Errorf("%dx%d: %d lines", sz[0], sz[1], len(lines))
		}
		for _, l := range lines {
			if len([]rune(l)) > sz[0] {
				t.Errorf("%dx%d: line too wide: %q", sz[0], sz[1], l)
			}
		}
	}
}

func TestBatchPrintsFramesAsText(t *testing.T) {
	rp := periodic(t)
	var b strings.Builder
	if err := top.Batch(&b, rp, "periodic.kdt", 2, 60, 2); err != nil {
		t.Fatal(err)
	}
	frames := strings.Split(b.String(), "\n\n")
	if len(frames) != 2 || !strings.Contains(frames[1], "replay  at 2.000s of 3.000s  frame 2/3") {
		t.Fatalf("%d frames:\n%s", len(frames), b.String())
	}
	for _, f := range frames {
		if !strings.HasSuffix(strings.TrimSuffix(f, "\n"), "softirq_exit: vec=1 [action=TIMER]") && !strings.Contains(f, "frame 1/3") {
			t.Errorf("a frame does not end with its latest events:\n%s", f)
		}
		if strings.Contains(f, "q quit") {
			t.Errorf("a batch frame has the key line:\n%s", f)
		}
	}
	if err := top.Batch(failWriter{}, rp, "x", 0, 80, 1); err == nil {
		t.Error("a write error was not returned")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestTeatestReplayPlaysToTheEndAndQuits plays a replay as a program with
// teatest: it waits for the last frame, presses q, and checks the final
// model and its view.
func TestTeatestReplayPlaysToTheEndAndQuits(t *testing.T) {
	tm := teatest.NewTestModel(t, top.Play(periodic(t), 10*time.Millisecond, "periodic.kdt"), teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "frame 3/3") },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	tm.Send(key("left"))
	tm.Send(key("q"))
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*top.Model)
	if !fm.Quitting() || fm.Playing() || fm.Frame() != 1 {
		t.Errorf("final model: quitting %v, playing %v, frame %d", fm.Quitting(), fm.Playing(), fm.Frame())
	}
	v := fm.View()
	if !v.AltScreen || !strings.Contains(v.Content, "replay [paused]  at 2.000s of 3.000s  frame 2/3") || len(strings.Split(v.Content, "\n")) != 24 {
		t.Errorf("final view (alt screen %v):\n%s", v.AltScreen, v.Content)
	}
	if _, err := io.ReadAll(tm.FinalOutput(t)); err != nil {
		t.Fatal(err)
	}
}
