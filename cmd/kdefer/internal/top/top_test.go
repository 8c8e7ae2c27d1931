package top_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/top"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
)

// teatest's NewTestModel leaves a goroutine waiting for a SIGINT.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMainIgnoring(m, "github.com/charmbracelet/x/exp/teatest/v2.NewTestModel")
}

// sample is a made-up sample at second n: 2 CPUs, TIMER running 250
// times a second on CPU0 and TASKLET 10 on CPU1, a few tasks and log
// lines.
func sample(n int) top.Sample {
	s := stats.Snapshot{Now: int64(n) * 1e9, Jiffies: uint64(4294892296 + 250*n), HZ: 250, CPUs: make([]stats.CPUStats, 2)}
	s.CPUs[0].Softirqs[kernel.TimerSoftirq] = uint64(250 * n)
	s.CPUs[1].Softirqs[kernel.TaskletSoftirq] = uint64(10 * n)
	s.Timers.Armed, s.Timers.Expired, s.Timers.Cancelled = uint64(3*n), uint64(2*n), uint64(n)
	s.Timers.Levels[0] = stats.LevelStats{Pending: 1, Expired: uint64(n), LatenessSum: uint64(n), LatenessMax: 1}
	s.Timers.Levels[1] = stats.LevelStats{Pending: 2, Expired: uint64(n), LatenessSum: uint64(5 * n), LatenessMax: 7}
	s.Timers.Lateness = stats.Histogram{Count: uint64(2 * n), Sum: 0.024 * float64(n), Max: 0.028}
	s.Workqueues = []stats.WorkqueueStats{
		{Name: "events", Queued: uint64(40 * n), Executed: uint64(40*n - 3), Running: 1, InFlight: 3,
			Latency: stats.Histogram{Count: uint64(40*n - 2), Sum: 0.002 * float64(40*n-2), Max: 0.012}},
	}
	return top.Sample{
		Stats: s,
		Pools: []top.Pool{
			{ID: 2, Name: "0", Workers: 3, Idle: 1, Running: 1, Pending: 2},
			{ID: 6, Name: "1", Workers: 2, Idle: 2},
		},
		Loadavg: "0.16 0.03 0.01 1/7 9",
		Tasks: []top.Task{
			{PID: 1, State: 'S', Comm: "init"},
			{PID: 2, State: 'S', Comm: "kthreadd", Kthread: true},
			{PID: 3, PPID: 2, State: 'S', Comm: "ksoftirqd/0", Kthread: true},
			{PID: 4, PPID: 2, State: 'R', CPU: 1, Comm: "ksoftirqd/1", Kthread: true},
			{PID: 7, PPID: 1, State: 'D', CPU: 1, Comm: "userapp_sed1"},
			{PID: 8, PPID: 2, State: 'I', Comm: "mykt", Kthread: true},
			{PID: 9, PPID: 2, State: 'D', Comm: "kworker/0:1", Kthread: true},
		},
		Log: []string{
			fmt.Sprintf("[%5d.000000] sed1: line one", n),
			fmt.Sprintf("[%5d.000000] sed1: line two", n),
		},
	}
}

// fakeSource hands out sample(1), sample(2), … and then, after last,
// reports the run over.
type fakeSource struct {
	mu   sync.Mutex
	n    int
	last int
}

func (f *fakeSource) Sample() (top.Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last > 0 && f.n >= f.last {
		return top.Sample{}, errors.New("module not running")
	}
	f.n++
	return sample(f.n), nil
}

func key(s string) tea.KeyPressMsg {
	switch s {
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// feed drives a model by hand: two samples a second apart.
func feed(t *testing.T, w, h int) *top.Model {
	m := top.New(&fakeSource{}, time.Second, "sed1_drv")
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.Update(top.SampleMsg{Sample: sample(1)})
	m.Update(top.SampleMsg{Sample: sample(2)})
	return m
}

func TestViewAt80x24IsGolden(t *testing.T) {
	m := feed(t, 80, 24)
	got := m.Render()
	golden.Check(t, "testdata/top_80x24.golden", got+"\n")
	lines := strings.Split(got, "\n")
	if len(lines) != 24 {
		t.Errorf("%d lines, want 24", len(lines))
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("line %d is %d columns: %q", i+1, n, l)
		}
	}
	if !strings.Contains(got, "TIMER           250.0       0.0") || !strings.Contains(got, "TASKLET           0.0      10.0") {
		t.Errorf("rates over the last second missing:\n%s", got)
	}
	if !strings.Contains(got, "WORK queued 80 done 77 running 1 in flight 3  wait avg 2.0 max 12.0 ms") ||
		!strings.Contains(got, "0             3     2     1       1       2") {
		t.Errorf("workqueue line or pool rows missing:\n%s", got)
	}
}

func TestViewFitsLargerAndSmallerTerminals(t *testing.T) {
	for _, sz := range [][2]int{{120, 40}, {80, 24}, {40, 12}} {
		got := feed(t, sz[0], sz[1]).Render()
		lines := strings.Split(got, "\n")
		if len(lines) != sz[1] {
			t.Errorf("%dx%d: %d lines", sz[0], sz[1], len(lines))
		}
		for _, l := range lines {
			if len([]rune(l)) > sz[0] {
				t.Errorf("%dx%d: line too wide: %q", sz[0], sz[1], l)
			}
		}
	}
	big := feed(t, 120, 40).Render()
	if !strings.Contains(big, "userapp_sed1") || !strings.Contains(big, "line two") {
		t.Errorf("120x40 lacks tasks or log:\n%s", big)
	}
}

func TestKeysSortFilterAndPause(t *testing.T) {
	m := feed(t, 80, 24)
	m.Update(key("s")) // by state: R first
	if !strings.Contains(m.Render(), "(7 tasks, by state)") || firstTask(m) != "ksoftirqd/1" {
		t.Errorf("sort by state: first %q\n%s", firstTask(m), m.Render())
	}
	m.Update(key("s"))
	m.Update(key("s")) // by name
	if m.SortBy() != top.SortName || firstTask(m) != "init" {
		t.Errorf("sort by name: first %q", firstTask(m))
	}
	m.Update(key("/"))
	for _, k := range "soft" {
		m.Update(key(string(k)))
	}
	m.Update(key("enter"))
	if m.Filter() != "soft" || !strings.Contains(m.Render(), "(2 tasks, by name  filter: soft)") {
		t.Errorf("filter %q:\n%s", m.Filter(), m.Render())
	}
	m.Update(key("q")) // a filter typed is over: q quits again
	if !m.Quitting() {
		t.Error("q did not quit")
	}
	m = feed(t, 80, 24)
	m.Update(key("p"))
	m.Update(top.SampleMsg{Sample: sample(9)})
	if !m.Paused() || !strings.Contains(m.Render(), "[paused]") || strings.Contains(m.Render(), "up 9.000s") {
		t.Errorf("pause did not hold the view:\n%s", m.Render())
	}
	m.Update(key("esc"))
	m.Update(top.SampleMsg{Err: errors.New("over")})
	if m.Ended() == nil || !strings.Contains(m.Render(), "[run over: q quits]") {
		t.Errorf("end of run not shown:\n%s", m.Render())
	}
	_, cmd := m.Update(key("ctrl+c"))
	if cmd == nil || !m.Quitting() {
		t.Error("ctrl+c did not quit")
	}
}

func firstTask(m *top.Model) string {
	lines := strings.Split(m.Render(), "\n")
	for i, l := range lines {
		if strings.Contains(l, "tasks, by") {
			f := strings.Fields(lines[i+1])
			return strings.Trim(f[len(f)-1], "[]")
		}
	}
	return ""
}

// TestTeatestProgramSamplesAndQuits runs the model as a program with
// teatest: it waits for the first paint, presses s and q, and checks the
// final model and its view.
func TestTeatestProgramSamplesAndQuits(t *testing.T) {
	src := &fakeSource{}
	tm := teatest.NewTestModel(t, top.New(src, 10*time.Millisecond, "sed1_drv"), teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "SOFTIRQ/s") },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	tm.Send(key("s"))
	tm.Send(key("q"))
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*top.Model)
	if !fm.Quitting() || fm.SortBy() != top.SortState {
		t.Errorf("final model: quitting %v, sort %d", fm.Quitting(), fm.SortBy())
	}
	v := fm.View()
	if !v.AltScreen || !strings.Contains(v.Content, "(7 tasks, by state)") || !strings.Contains(v.Content, "POOL    WORKERS") ||
		len(strings.Split(v.Content, "\n")) != 24 {
		t.Errorf("final view (alt screen %v):\n%s", v.AltScreen, v.Content)
	}
	if _, err := io.ReadAll(tm.FinalOutput(t)); err != nil {
		t.Fatal(err)
	}
}
