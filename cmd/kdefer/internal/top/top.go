// Package top is the live view of `kdefer top`: a bubbletea program that
// samples a running kernel every interval and shows per-CPU softirq rates
// by vector, the timer wheel's pending timers per level and their
// lateness, the tasks and their states, and the latest log lines, with
// keys to sort, filter and pause.
//
// The model is plain data advanced by messages (Update) and rendered by
// View, so that it is tested without a terminal; where the samples come
// from is a Source (the runner's kernel, through runner.Runner.Do in
// virtual time).
//
// There is no kernel counterpart: this is top(1) and the parts of
// /proc/softirqs, /proc/timer_list and ps it watches.
package top

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
	"github.com/kdefer/kdefer/stats"
)

// Task is one row of the task table.
type Task struct {
	PID, PPID int
	State     byte // ps's letter
	CPU       int
	Comm      string
	Kthread   bool
}

// Sample is one look at the kernel.
type Sample struct {
	Stats   stats.Snapshot
	Tasks   []Task
	Loadavg string   // /proc/loadavg's text
	Log     []string // the latest log lines, oldest first
}

// Collect takes a sample of k (call it where k may be used: in virtual
// time on the kernel's driver). log gives the latest log lines.
func Collect(k *kernel.Kernel, log func() []string) Sample {
	s := Sample{Stats: stats.Read(k), Loadavg: strings.TrimSpace(procfs.Loadavg(k))}
	for _, t := range k.Tasks() {
		if t.IsIdle() {
			continue
		}
		ppid := 0
		if p := t.Parent(); p != nil {
			ppid = p.PID()
		}
		s.Tasks = append(s.Tasks, Task{PID: t.PID(), PPID: ppid, State: t.State().Letter(), CPU: t.CPU(), Comm: t.Comm(), Kthread: t.IsKthread()})
	}
	if log != nil {
		s.Log = log()
	}
	return s
}

// Source gives samples. Sample returns an error once the run is over (the
// view then keeps its last sample and says so).
type Source interface {
	Sample() (Sample, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func() (Sample, error)

// Sample calls f.
func (f SourceFunc) Sample() (Sample, error) { return f() }

// Messages.
type (
	// SampleMsg carries a new sample (Err set: the run is over).
	SampleMsg struct {
		Sample Sample
		Err    error
	}
	tickMsg struct{}
)

// Sort orders of the task table, cycled by the s key.
const (
	SortPID = iota
	SortState
	SortCPU
	SortName
	numSorts
)

var sortNames = [numSorts]string{"pid", "state", "cpu", "name"}

// Model is top's state.
type Model struct {
	src      Source
	interval time.Duration
	title    string

	width, height int
	prev, cur     *Sample
	ended         error
	paused        bool
	sortBy        int
	filter        string
	editing       bool // typing a filter after /
	quitting      bool
}

// New returns a model sampling src every interval, titled title (the
// module's name).
func New(src Source, interval time.Duration, title string) *Model {
	return &Model{src: src, interval: interval, title: title, width: 80, height: 24}
}

// Init takes the first sample.
func (m *Model) Init() tea.Cmd { return m.sample }

func (m *Model) sample() tea.Msg {
	s, err := m.src.Sample()
	return SampleMsg{Sample: s, Err: err}
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// Update handles keys, resizes, ticks and samples.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tickMsg:
		if m.ended != nil {
			return m, nil
		}
		if m.paused {
			return m, m.tick()
		}
		return m, m.sample
	case SampleMsg:
		if msg.Err != nil {
			m.ended = msg.Err
			return m, nil
		}
		if !m.paused {
			s := msg.Sample
			m.prev, m.cur = m.cur, &s
		}
		return m, m.tick()
	}
	return m, nil
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	key := k.String()
	if key == "ctrl+c" {
		m.quitting = true
		return tea.Quit
	}
	if m.editing {
		switch key {
		case "enter":
			m.editing = false
		case "esc":
			m.editing, m.filter = false, ""
		case "backspace":
			if n := len(m.filter); n > 0 {
				m.filter = m.filter[:n-1]
			}
		default:
			if k.Text != "" {
				m.filter += k.Text
			}
		}
		return nil
	}
	switch key {
	case "q":
		m.quitting = true
		return tea.Quit
	case "p", "space", " ":
		m.paused = !m.paused
	case "s":
		m.sortBy = (m.sortBy + 1) % numSorts
	case "/":
		m.editing, m.filter = true, ""
	case "esc":
		m.filter = ""
	}
	return nil
}

// Paused, SortBy, Filter, Ended and Quitting report the model's state.
func (m *Model) Paused() bool { return m.paused }

// SortBy returns the task table's order (SortPID …).
func (m *Model) SortBy() int { return m.sortBy }

// Filter returns the task filter (a substring of the command).
func (m *Model) Filter() string { return m.filter }

// Ended returns why sampling stopped (nil while the run goes on).
func (m *Model) Ended() error { return m.ended }

// Quitting reports whether q or Ctrl-C was pressed.
func (m *Model) Quitting() bool { return m.quitting }

// View renders the screen in the alternate screen buffer.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	return v
}

// Render returns the screen's text: at most height lines of at most width
// columns.
func (m *Model) Render() string {
	w, h := max(m.width, 20), max(m.height, 6)
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	status := ""
	switch {
	case m.ended != nil:
		status = " [run over: q quits]"
	case m.paused:
		status = " [paused]"
	}
	if m.cur == nil {
		add("kdefer top - %s  waiting for the first sample%s", m.title, status)
		return fit(lines, w, h)
	}
	s := m.cur.Stats
	load := strings.Fields(m.cur.Loadavg) // 1 5 15 running/threads last_pid
	if len(load) == 5 {
		load = load[:4]
	}
	add("kdefer top - %s%s  up %.3fs  load %s  jiffies %d", m.title, status, float64(s.Now)/1e9, strings.Join(load, " "), s.Jiffies)

	// Softirq rates per vector and CPU, over the last interval of kernel
	// time (since boot for the first sample).
	dt := float64(s.Now) / 1e9
	var prev *stats.Snapshot
	if m.prev != nil {
		prev = &m.prev.Stats
		dt = float64(s.Now-prev.Now) / 1e9
	}
	ncpu := min(len(s.CPUs), max((w-12)/10, 1))
	hdr := fmt.Sprintf("%-11s", "SOFTIRQ/s")
	for cpu := 0; cpu < ncpu; cpu++ {
		hdr += fmt.Sprintf(" %9s", fmt.Sprintf("CPU%d", cpu))
	}
	if ncpu < len(s.CPUs) {
		hdr += " …"
	}
	lines = append(lines, hdr)
	for vec := 0; vec < kernel.NRSoftirqs; vec++ {
		total := uint64(0)
		for _, c := range s.CPUs {
			total += c.Softirqs[vec]
		}
		if total == 0 && vec != kernel.TimerSoftirq {
			continue // vectors that never ran are left out
		}
		row := fmt.Sprintf("%-11s", kernel.SoftirqName(vec))
		for cpu := 0; cpu < ncpu; cpu++ {
			n := s.CPUs[cpu].Softirqs[vec]
			if prev != nil && cpu < len(prev.CPUs) {
				n -= prev.CPUs[cpu].Softirqs[vec]
			}
			rate := 0.0
			if dt > 0 {
				rate = float64(n) / dt
			}
			row += fmt.Sprintf(" %9.1f", rate)
		}
		lines = append(lines, row)
	}

	// The timer wheel.
	t := s.Timers
	late := "-"
	if t.Lateness.Count > 0 {
		late = fmt.Sprintf("avg %.1f max %.1f ms", t.Lateness.Sum/float64(t.Lateness.Count)*1e3, t.Lateness.Max*1e3)
	}
	add("TIMERS armed %d expired %d cancelled %d  lateness %s", t.Armed, t.Expired, t.Cancelled, late)
	lv, pend, lmax := "LEVEL  ", "pending", "late(j)"
	for i, l := range t.Levels {
		lv += fmt.Sprintf(" %5d", i)
		pend += fmt.Sprintf(" %5d", l.Pending)
		if l.Expired > 0 {
			lmax += fmt.Sprintf(" %5d", l.LatenessMax)
		} else {
			lmax += fmt.Sprintf(" %5s", "-")
		}
	}
	lines = append(lines, lv, pend, lmax)

	// Tasks and log share what is left, tasks first.
	rest := h - len(lines) - 3 // the two headers and the key line
	logRows := min(len(m.cur.Log), max(rest/3, 1))
	taskRows := max(rest-logRows, 1)
	tasks := m.tasks()
	filt := ""
	if m.filter != "" || m.editing {
		filt = fmt.Sprintf("  filter: %s", m.filter)
		if m.editing {
			filt += "_"
		}
	}
	add("%7s %4s %3s %s   (%d tasks, by %s%s)", "PID", "STAT", "CPU", "CMD", len(tasks), sortNames[m.sortBy], filt)
	for i, tk := range tasks {
		if i == taskRows {
			break
		}
		cmd := tk.Comm
		if tk.Kthread {
			cmd = "[" + cmd + "]"
		}
		add("%7d %-4c %3d %s", tk.PID, tk.State, tk.CPU, cmd)
	}
	for i := len(tasks); i < taskRows; i++ {
		lines = append(lines, "")
	}
	lines = append(lines, "LOG")
	log := m.cur.Log
	if len(log) > logRows {
		log = log[len(log)-logRows:]
	}
	lines = append(lines, log...)
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = append(lines, "q quit  p pause  s sort  / filter  esc clear filter")
	return fit(lines, w, h)
}

// tasks returns the current sample's tasks, filtered and sorted.
func (m *Model) tasks() []Task {
	var out []Task
	for _, t := range m.cur.Tasks {
		if m.filter == "" || strings.Contains(t.Comm, m.filter) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b Task) int {
		switch m.sortBy {
		case SortState:
			if c := cmp.Compare(stateRank(a.State), stateRank(b.State)); c != 0 {
				return c
			}
		case SortCPU:
			if c := cmp.Compare(a.CPU, b.CPU); c != 0 {
				return c
			}
		case SortName:
			if c := cmp.Compare(a.Comm, b.Comm); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.PID, b.PID)
	})
	return out
}

// stateRank puts running tasks first, then the sleeping kinds.
func stateRank(s byte) int {
	if i := strings.IndexByte("RDSIPTtZX", s); i >= 0 {
		return i
	}
	return 99
}

// fit cuts lines to h lines of w columns (runes; the view is ASCII but
// for the CPU ellipsis).
func fit(lines []string, w, h int) string {
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if r := []rune(l); len(r) > w {
			lines[i] = string(r[:w])
		}
	}
	return strings.Join(lines, "\n")
}
