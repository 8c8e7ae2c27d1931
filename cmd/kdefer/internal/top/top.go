// Package top is the view of `kdefer top`: a bubbletea program that
// samples a running kernel every interval and shows per-CPU softirq rates
// by vector, the timer wheel's pending timers per level and their
// lateness, the workqueues' counts and worker pools (busy and idle
// workers, nr_running, pending items), the tasks and their states, and
// the latest log lines, with
// keys to sort, filter and pause. It also plays a recording (a Replay of
// a trace file): the same panes computed from the records, frame by
// frame, with keys to step, play and pause, jump, and change the speed,
// and with the latest records where the live view has the log; Batch
// prints a replay's frames as text, as top -b does.
//
// The model is plain data advanced by messages (Update) and rendered by
// View, so that it is tested without a terminal; where the samples come
// from is a Source (the runner's kernel, through runner.Runner.Do in
// virtual time) or a Replay.
//
// There is no kernel counterpart: this is top(1) and the parts of
// /proc/softirqs, /proc/timer_list, the workqueue dump and ps it watches.
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
	Stats stats.Snapshot
	// Pools are the worker pools that have workers or pending items, by
	// id.
	Pools   []Pool
	Tasks   []Task
	Loadavg string   // /proc/loadavg's text
	Log     []string // the latest log lines, oldest first
}

// Collect takes a sample of k (call it where k may be used: in virtual
// time on the kernel's driver). log gives the latest log lines.
func Collect(k *kernel.Kernel, log func() []string) Sample {
	s := Sample{Stats: stats.Read(k), Pools: collectPools(k), Loadavg: strings.TrimSpace(procfs.Loadavg(k))}
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
	// playMsg advances a replay that plays; gen tells an old play's
	// ticks from the current one's.
	playMsg struct{ gen int }
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

	// A replay: the frame shown, whether it plays and how many frames a
	// tick moves, the jump prompt, a message for the key line.
	replay  *Replay
	pos     int
	playing bool
	speed   int
	gen     int
	jumping bool
	jump    string
	note    string
	// batch renders for Batch: every task, no key line, no height.
	batch bool
}

// New returns a model sampling src every interval, titled title (the
// module's name).
func New(src Source, interval time.Duration, title string) *Model {
	return &Model{src: src, interval: interval, title: title, width: 80, height: 24}
}

// replayEvents is how many of the latest records a replay's frame keeps
// for the events pane (the screen shows what fits).
const replayEvents = 100

// Play returns a model that plays rp from its first frame, one frame every
// interval of real time, titled title (the file and the command it
// recorded). It starts playing; at the last frame it stops.
func Play(rp *Replay, interval time.Duration, title string) *Model {
	m := &Model{interval: interval, title: title, width: 80, height: 24, replay: rp, speed: 1, playing: rp.Len() > 1}
	m.seek(0)
	return m
}

// Init takes the first sample, or starts a replay playing.
func (m *Model) Init() tea.Cmd {
	if m.replay != nil {
		if m.playing {
			return m.playTick()
		}
		return nil
	}
	return m.sample
}

func (m *Model) playTick() tea.Cmd {
	gen := m.gen
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return playMsg{gen: gen} })
}

// seek shows frame i of the replay (clamped to its frames).
func (m *Model) seek(i int) {
	m.pos = m.replay.clamp(i)
	cur := m.replay.Sample(m.pos, replayEvents)
	m.cur, m.prev = &cur, nil
	if m.pos > 0 {
		prev := m.replay.Sample(m.pos-1, 0)
		m.prev = &prev
	}
}

// last is the replay's last frame.
func (m *Model) last() int { return m.replay.Len() - 1 }

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
	case playMsg:
		if m.replay == nil || msg.gen != m.gen || !m.playing {
			return m, nil // a tick of a play that was paused since
		}
		m.seek(m.pos + m.speed)
		if m.pos == m.last() {
			m.playing = false
			return m, nil
		}
		return m, m.playTick()
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
	if m.replay != nil {
		if cmd, ok := m.replayKey(k); ok {
			return cmd
		}
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

// replayKey handles the keys of a replay; ok is false for the keys it
// shares with the live view (q, s, /, esc).
func (m *Model) replayKey(k tea.KeyPressMsg) (cmd tea.Cmd, ok bool) {
	key := k.String()
	if m.jumping {
		switch key {
		case "enter":
			m.jumping = false
			ns, err := ParseJump(m.jump, m.replay.End())
			if err != nil {
				m.note = "jump: " + err.Error()
				return nil, true
			}
			m.stop()
			m.seek(m.replay.FrameAt(ns))
		case "esc":
			m.jumping = false
		case "backspace":
			if n := len(m.jump); n > 0 {
				m.jump = m.jump[:n-1]
			}
		default:
			if k.Text != "" {
				m.jump += k.Text
			}
		}
		return nil, true
	}
	m.note = ""
	switch key {
	case "p", "space", " ":
		if m.playing {
			m.stop()
			return nil, true
		}
		if m.pos == m.last() {
			m.seek(0) // played to the end: from the start again
		}
		m.gen++
		m.playing = true
		return m.playTick(), true
	case "right", "l":
		m.stop()
		m.seek(m.pos + 1)
	case "left", "h":
		m.stop()
		m.seek(m.pos - 1)
	case "]":
		m.stop()
		m.seek(m.pos + 10)
	case "[":
		m.stop()
		m.seek(m.pos - 10)
	case "home", "g":
		m.stop()
		m.seek(0)
	case "end", "G":
		m.stop()
		m.seek(m.last())
	case ":", "j":
		m.jumping, m.jump = true, ""
	case "+", "=":
		m.speed = min(m.speed*2, 64)
	case "-":
		m.speed = max(m.speed/2, 1)
	default:
		return nil, false
	}
	return nil, true
}

// stop pauses a replay (its pending tick is dropped).
func (m *Model) stop() {
	m.playing = false
	m.gen++
}

// Paused, SortBy, Filter, Ended and Quitting report the model's state.
func (m *Model) Paused() bool { return m.paused }

// Frame returns the replay's frame shown (0 for a live view).
func (m *Model) Frame() int { return m.pos }

// Playing reports whether a replay plays.
func (m *Model) Playing() bool { return m.playing }

// Speed returns the frames a replay moves per tick while it plays.
func (m *Model) Speed() int { return m.speed }

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
	if m.replay != nil {
		add("kdefer top - %s", m.title)
		add("%s", m.replayStatus())
	} else {
		load := strings.Fields(m.cur.Loadavg) // 1 5 15 running/threads last_pid
		if len(load) == 5 {
			load = load[:4]
		}
		add("kdefer top - %s%s  up %.3fs  load %s  jiffies %d", m.title, status, float64(s.Now)/1e9, strings.Join(load, " "), s.Jiffies)
	}

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

	// The workqueues and their worker pools, once there are any.
	if len(s.Workqueues) > 0 || len(m.cur.Pools) > 0 {
		lines = append(lines, workqueueLine(s.Workqueues))
		n := max(2, h/6) // 4 rows at 24 lines
		if m.batch {
			n = -1
		}
		if len(m.cur.Pools) > 0 {
			lines = append(lines, poolRows(m.cur.Pools, n)...)
		}
	}

	// Tasks and log share what is left: the log gets the rows the tasks
	// leave, and at least a third.
	tasks := m.tasks()
	rest := h - len(lines) - 3 // the two headers and the key line
	logRows := min(len(m.cur.Log), max(rest-max(len(tasks), 1), rest/3, 1))
	taskRows := max(rest-logRows, 1)
	if m.batch { // everything, as top -b prints it
		logRows, taskRows = len(m.cur.Log), len(tasks)
	}
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
	if m.replay != nil {
		lines = append(lines, "EVENTS")
	} else {
		lines = append(lines, "LOG")
	}
	log := m.cur.Log
	if len(log) > logRows {
		log = log[len(log)-logRows:]
	}
	lines = append(lines, log...)
	if m.batch {
		return fit(lines, w, len(lines))
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	switch {
	case m.replay == nil:
		lines = append(lines, "q quit  p pause  s sort  / filter  esc clear filter")
	case m.jumping:
		lines = append(lines, "jump to (1.5 s, 1500ms, 50%; enter, esc): "+m.jump+"_")
	case m.note != "":
		lines = append(lines, m.note)
	default:
		lines = append(lines, "q quit  space play  ←→ step  [] 10  g G ends  : jump  +- speed  s sort  / filter")
	}
	return fit(lines, w, h)
}

// workqueueLine sums the workqueues' counters: what was queued and run,
// what runs and waits now, and the queue-to-start latency.
func workqueueLine(wqs []stats.WorkqueueStats) string {
	var queued, executed uint64
	var running, inFlight int64
	var n uint64
	var sum, maxLat float64
	for _, w := range wqs {
		queued += w.Queued
		executed += w.Executed
		running += w.Running
		inFlight += w.InFlight
		n += w.Latency.Count
		sum += w.Latency.Sum
		maxLat = max(maxLat, w.Latency.Max)
	}
	late := "-"
	if n > 0 {
		late = fmt.Sprintf("avg %.1f max %.1f ms", sum/float64(n)*1e3, maxLat*1e3)
	}
	return fmt.Sprintf("WORK queued %d done %d running %d in flight %d  wait %s", queued, executed, running, inFlight, late)
}

// replayStatus is a replay's second header line: where it is and whether
// it plays.
func (m *Model) replayStatus() string {
	st := ""
	switch {
	case m.batch:
	case m.playing && m.speed > 1:
		st = fmt.Sprintf(" [playing x%d]", m.speed)
	case m.playing:
		st = " [playing]"
	case m.pos == m.last():
		st = " [end]"
	default:
		st = " [paused]"
	}
	s := m.cur.Stats
	line := fmt.Sprintf("replay%s  at %.3fs of %.3fs  frame %d/%d  jiffies %d", st,
		float64(s.Now)/1e9, float64(m.replay.End())/1e9, m.pos+1, m.replay.Len(), s.Jiffies)
	var lost uint64
	for _, n := range s.TraceLost {
		lost += n
	}
	if lost > 0 {
		line += fmt.Sprintf("  lost %d", lost)
	}
	return line
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
