// Package gotrace shows a kdefer kernel to Go's own tools: runtime/trace
// regions around what runs in interrupt context (hard interrupt handlers,
// softirqs, timer and hrtimer callbacks, tasklets) so that `go tool trace`
// shows them on the goroutines that ran them, runtime/trace tasks from
// each mod_timer to the callback it caused, and pprof labels naming the
// kernel task a goroutine is (ksoftirqd/0, a kthread, a module's user
// task) so that CPU profiles attribute time to it (`go tool pprof -tags`
// shows comm: ksoftirqd/0 …).
//
//	detach := gotrace.Attach(k.Tracer(), gotrace.Options{Regions: true, Labels: true})
//	defer detach()
//
// It works by attaching probes to the kernel's tracepoints
// (trace.Tracer.AttachProbe): nothing costs anything until Attach, and
// while attached, a probe whose runtime/trace part finds the execution
// tracer off (trace.IsEnabled) does only that test.
//
// Kernel counterpart: none (the kernel's equivalent is perf's view of the
// same tracepoints). Differences: a region is named by the event ("softirq
// TIMER", "timer ding", "tasklet blink", "irq 9"), a task "mod_timer ding";
// labels are set when a task is switched in (sched_switch), so a task that
// started before Attach is labelled at its next wake-up.
package gotrace

import (
	"context"
	"fmt"
	"runtime/pprof"
	rtrace "runtime/trace"
	"strconv"
	"sync"

	"github.com/kdefer/kdefer/trace"
)

// Options choose what Attach does.
type Options struct {
	// Regions: runtime/trace regions around interrupt handlers, softirqs,
	// timer and hrtimer callbacks and tasklets; and a runtime/trace task
	// from each timer_start to the timer's expiry (or cancel).
	Regions bool
	// Labels: pprof labels on each task's goroutine: "comm" (the task's
	// name: ksoftirqd/0, a module's kthread or user task) and "pid". A
	// comm changed later (a renamed worker) is labelled at its next
	// switch-in.
	Labels bool
}

// state is one attachment's bookkeeping.
type state struct {
	mu      sync.Mutex
	regions map[ctxKey][]*rtrace.Region // open regions per (CPU, pid): one goroutine each
	tasks   map[uint64]*rtrace.Task     // timer → its mod_timer task
	labels  map[int32]string            // pid → comm it is labelled with
	names   map[uint64]string           // function PC → name
}

type ctxKey struct {
	cpu uint16
	pid int32
}

// Attach attaches the probes opts asks for to tr and returns the function
// that detaches them.
func Attach(tr *trace.Tracer, opts Options) (detach func()) {
	s := &state{regions: map[ctxKey][]*rtrace.Region{}, tasks: map[uint64]*rtrace.Task{},
		labels: map[int32]string{}, names: map[uint64]string{}}
	var ds []func()
	if opts.Regions {
		for _, p := range []struct {
			entry, exit trace.Event
			name        func(s *state, r *trace.Record) string
		}{
			{trace.IRQHandlerEntry, trace.IRQHandlerExit, func(_ *state, r *trace.Record) string { return "irq " + strconv.Itoa(int(int32(r.Args[0]))) }},
			{trace.SoftirqEntry, trace.SoftirqExit, func(_ *state, r *trace.Record) string { return "softirq " + softirqName(r.Args[0]) }},
			{trace.TimerExpireEntry, trace.TimerExpireExit, func(s *state, r *trace.Record) string { return "timer " + s.sym(r.Args[2]) }},
			{trace.HrtimerExpireEntry, trace.HrtimerExpireExit, func(s *state, r *trace.Record) string { return "hrtimer " + s.sym(r.Args[2]) }},
			{trace.TaskletEntry, trace.TaskletExit, func(s *state, r *trace.Record) string { return "tasklet " + s.sym(r.Args[1]) }},
		} {
			name := p.name
			ds = append(ds,
				tr.AttachProbe(p.entry, func(r *trace.Record) { s.begin(r, name) }),
				tr.AttachProbe(p.exit, s.end))
		}
		ds = append(ds,
			tr.AttachProbe(trace.TimerStart, s.timerStart),
			tr.AttachProbe(trace.TimerExpireEntry, s.timerDone),
			tr.AttachProbe(trace.TimerCancel, s.timerCancel))
	}
	if opts.Labels {
		ds = append(ds, tr.AttachProbe(trace.SchedSwitch, s.switchIn))
	}
	return func() {
		for _, d := range ds {
			d()
		}
	}
}

func (s *state) sym(pc uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.names[pc]
	if !ok {
		n = trace.SymbolName(pc)
		s.names[pc] = n
	}
	return n
}

func (s *state) begin(r *trace.Record, name func(*state, *trace.Record) string) {
	if !rtrace.IsEnabled() {
		return
	}
	reg := rtrace.StartRegion(context.Background(), name(s, r))
	k := ctxKey{r.CPU, r.PID}
	s.mu.Lock()
	s.regions[k] = append(s.regions[k], reg)
	s.mu.Unlock()
}

func (s *state) end(r *trace.Record) {
	k := ctxKey{r.CPU, r.PID}
	s.mu.Lock()
	st := s.regions[k]
	if len(st) == 0 { // begun before tracing started, or before Attach
		s.mu.Unlock()
		return
	}
	reg := st[len(st)-1]
	if len(st) == 1 {
		delete(s.regions, k)
	} else {
		s.regions[k] = st[:len(st)-1]
	}
	s.mu.Unlock()
	reg.End()
}

// timerStart begins a task from mod_timer to the expiry.
func (s *state) timerStart(r *trace.Record) {
	if !rtrace.IsEnabled() {
		return
	}
	_, task := rtrace.NewTask(context.Background(), "mod_timer "+s.sym(r.Args[1]))
	s.mu.Lock()
	old := s.tasks[r.Args[0]]
	s.tasks[r.Args[0]] = task
	s.mu.Unlock()
	if old != nil {
		old.End() // re-armed before it fired
	}
}

func (s *state) timerDone(r *trace.Record) { s.endTask(r.Args[0]) }

// timerCancel ends the task of a timer taken off its bucket. An expiry
// records timer_cancel too, just before timer_expire_entry: the task then
// ends there, before its callback's region begins.
func (s *state) timerCancel(r *trace.Record) { s.endTask(r.Args[0]) }

func (s *state) endTask(timer uint64) {
	s.mu.Lock()
	t := s.tasks[timer]
	delete(s.tasks, timer)
	s.mu.Unlock()
	if t != nil {
		t.End()
	}
}

// switchIn labels the goroutine of a task being switched in: kdefer
// records a switch-in on the task's own goroutine (see package trace).
func (s *state) switchIn(r *trace.Record) {
	pid := int32(r.Args[4])
	if pid <= 0 {
		return // a switch out, to the idle task
	}
	comm := trace.UnpackComm(r.Args[2], r.Args[3])
	s.mu.Lock()
	same := s.labels[pid] == comm
	s.labels[pid] = comm
	s.mu.Unlock()
	if same {
		return
	}
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("comm", comm, "pid", fmt.Sprint(pid))))
}

func softirqName(vec uint64) string {
	names := [...]string{"HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU"}
	if vec < uint64(len(names)) {
		return names[vec]
	}
	return strconv.FormatUint(vec, 10)
}
