package trace

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Event identifies a static event (a tracepoint and its TRACE_EVENT
// definition). The numbering is kdefer's own: it is the bit of the event in
// a Tracer's enable mask, and it is stable within one build only.
type Event uint16

// The static events, grouped by the kernel header that defines them. Each
// has the kernel's system and name (timer:timer_start) and the kernel's
// TP_printk layout.
//
// Adding an event: add a constant before NumEvents and an entry in the
// events table below (fields, format, and the functions that turn a
// Record into field values and printf arguments), then call it from the
// code that fires it, behind Tracer.On.
const (
	// include/trace/events/timer.h: the timer wheel.

	TimerInit        Event = iota // timer:timer_init (timer_setup)
	TimerStart                    // timer:timer_start (enqueue_timer)
	TimerExpireEntry              // timer:timer_expire_entry (call_timer_fn)
	TimerExpireExit               // timer:timer_expire_exit (call_timer_fn)
	TimerCancel                   // timer:timer_cancel (detach_timer)

	// include/trace/events/timer.h: hrtimers (system "timer" too).

	HrtimerSetup       // timer:hrtimer_setup (hrtimer_init before v6.15)
	HrtimerStart       // timer:hrtimer_start (enqueue_hrtimer)
	HrtimerExpireEntry // timer:hrtimer_expire_entry (__run_hrtimer)
	HrtimerExpireExit  // timer:hrtimer_expire_exit (__run_hrtimer)
	HrtimerCancel      // timer:hrtimer_cancel (remove_hrtimer, __run_hrtimer)

	// include/trace/events/irq.h.

	SoftirqRaise    // irq:softirq_raise (__raise_softirq_irqoff)
	SoftirqEntry    // irq:softirq_entry (handle_softirqs)
	SoftirqExit     // irq:softirq_exit (handle_softirqs)
	IRQHandlerEntry // irq:irq_handler_entry (__handle_irq_event_percpu)
	IRQHandlerExit  // irq:irq_handler_exit (__handle_irq_event_percpu)
	TaskletEntry    // irq:tasklet_entry (tasklet_action_common, v6.3+)
	TaskletExit     // irq:tasklet_exit (tasklet_action_common, v6.3+)

	// include/trace/events/sched.h.

	SchedWakeup // sched:sched_wakeup (ttwu_do_wakeup)
	SchedSwitch // sched:sched_switch (__schedule); see the package doc for what prev and next mean

	SchedKthreadStop             // sched:sched_kthread_stop (kthread_stop)
	SchedKthreadStopRet          // sched:sched_kthread_stop_ret (kthread_stop)
	SchedKthreadWorkQueueWork    // sched:sched_kthread_work_queue_work (kthread_insert_work, v5.13+)
	SchedKthreadWorkExecuteStart // sched:sched_kthread_work_execute_start (kthread_worker_fn, v5.13+)
	SchedKthreadWorkExecuteEnd   // sched:sched_kthread_work_execute_end (kthread_worker_fn, v5.13+)

	// include/trace/events/workqueue.h (the layout of v6.10 and later:
	// queue_work names the workqueue and has int CPUs, activate_work and
	// execute_end carry the function).

	WorkqueueQueueWork    // workqueue:workqueue_queue_work (__queue_work)
	WorkqueueActivateWork // workqueue:workqueue_activate_work (__queue_work, __pwq_activate_work)
	WorkqueueExecuteStart // workqueue:workqueue_execute_start (process_one_work)
	WorkqueueExecuteEnd   // workqueue:workqueue_execute_end (process_one_work)

	// NumEvents is the number of static events.
	NumEvents
)

// ErrNoEvent is wrapped by the errors of Enable and Disable for a pattern
// that names no event.
var ErrNoEvent = errors.New("trace: no such event")

// Field describes one field of an event's record as the kernel's format
// file lists it (TP_STRUCT__entry), without the common fields.
type Field struct {
	Name string // the field's name, e.g. "expires"
	Type string // its C type, e.g. "unsigned long", "void *", "char[16]"
}

// Values of pointer, function and string fields, as Values and the
// formatter see them. They are resolved only when formatting (Formatter's
// Pointer, Symbol and String).
type (
	// Ptr is a %p value: an object's address, printed as a stable token.
	Ptr uint64
	// Sym is a %ps value: a function's entry PC, printed as its name.
	Sym uint64
	// Str is a string interned in the Tracer (Tracer.Intern); 0 is "".
	Str uint64
)

// eventDef is one entry of the static table.
type eventDef struct {
	system, name string
	fields       []Field
	// format is the TP_printk format (its C verbs are the formatter's).
	format string
	// values returns the fields' values, in fields order.
	values func(r *Record) []any
	// args returns the printf arguments of format; nil means values.
	args func(r *Record) []any
}

var events = [NumEvents]eventDef{
	TimerInit: {system: "timer", name: "timer_init",
		fields: []Field{{"timer", "void *"}}, format: "timer=%p", values: ptr0},
	TimerStart: {system: "timer", name: "timer_start",
		fields: []Field{{"timer", "void *"}, {"function", "void *"}, {"expires", "unsigned long"},
			{"bucket_expiry", "unsigned long"}, {"now", "unsigned long"}, {"flags", "unsigned int"}},
		format: "timer=%p function=%ps expires=%lu [timeout=%ld] bucket_expiry=%lu cpu=%u idx=%u flags=%s",
		values: func(r *Record) []any {
			a := &r.Args
			return []any{Ptr(a[0]), Sym(a[1]), a[2], a[3], a[4], uint32(a[5])}
		},
		args: func(r *Record) []any {
			a := &r.Args
			return []any{Ptr(a[0]), Sym(a[1]), a[2], int64(a[2] - a[4]), a[3],
				a[5] & TimerCPUMask, a[5] >> TimerArrayShift, timerFlags(a[5] & TimerTraceFlagMask)}
		}},
	TimerExpireEntry: {system: "timer", name: "timer_expire_entry",
		fields: []Field{{"timer", "void *"}, {"now", "unsigned long"}, {"function", "void *"}, {"baseclk", "unsigned long"}},
		format: "timer=%p function=%ps now=%lu baseclk=%lu",
		values: func(r *Record) []any { a := &r.Args; return []any{Ptr(a[0]), a[1], Sym(a[2]), a[3]} },
		args:   func(r *Record) []any { a := &r.Args; return []any{Ptr(a[0]), Sym(a[2]), a[1], a[3]} }},
	TimerExpireExit: {system: "timer", name: "timer_expire_exit",
		fields: []Field{{"timer", "void *"}}, format: "timer=%p", values: ptr0},
	TimerCancel: {system: "timer", name: "timer_cancel",
		fields: []Field{{"timer", "void *"}}, format: "timer=%p", values: ptr0},

	HrtimerSetup: {system: "timer", name: "hrtimer_setup",
		fields: []Field{{"hrtimer", "void *"}, {"clockid", "clockid_t"}, {"mode", "enum hrtimer_mode"}},
		format: "hrtimer=%p clockid=%s mode=%s",
		values: func(r *Record) []any { a := &r.Args; return []any{Ptr(a[0]), int32(a[1]), uint32(a[2])} },
		args: func(r *Record) []any {
			a := &r.Args
			return []any{Ptr(a[0]), clockName(int32(a[1])), hrtimerModeName(a[2])}
		}},
	HrtimerStart: {system: "timer", name: "hrtimer_start",
		fields: []Field{{"hrtimer", "void *"}, {"function", "void *"}, {"expires", "s64"},
			{"softexpires", "s64"}, {"mode", "enum hrtimer_mode"}},
		format: "hrtimer=%p function=%ps expires=%llu softexpires=%llu mode=%s",
		values: func(r *Record) []any {
			a := &r.Args
			return []any{Ptr(a[0]), Sym(a[1]), int64(a[2]), int64(a[3]), uint32(a[4])}
		},
		args: func(r *Record) []any {
			a := &r.Args
			return []any{Ptr(a[0]), Sym(a[1]), a[2], a[3], hrtimerModeName(a[4])}
		}},
	HrtimerExpireEntry: {system: "timer", name: "hrtimer_expire_entry",
		fields: []Field{{"hrtimer", "void *"}, {"now", "s64"}, {"function", "void *"}},
		format: "hrtimer=%p function=%ps now=%llu",
		values: func(r *Record) []any { a := &r.Args; return []any{Ptr(a[0]), int64(a[1]), Sym(a[2])} },
		args:   func(r *Record) []any { a := &r.Args; return []any{Ptr(a[0]), Sym(a[2]), a[1]} }},
	HrtimerExpireExit: {system: "timer", name: "hrtimer_expire_exit",
		fields: []Field{{"hrtimer", "void *"}}, format: "hrtimer=%p", values: ptr0},
	HrtimerCancel: {system: "timer", name: "hrtimer_cancel",
		fields: []Field{{"hrtimer", "void *"}}, format: "hrtimer=%p", values: ptr0},

	SoftirqRaise: softirqClass("softirq_raise"),
	SoftirqEntry: softirqClass("softirq_entry"),
	SoftirqExit:  softirqClass("softirq_exit"),
	IRQHandlerEntry: {system: "irq", name: "irq_handler_entry",
		fields: []Field{{"irq", "int"}, {"name", "__data_loc char[]"}},
		format: "irq=%d name=%s",
		values: func(r *Record) []any { return []any{int32(r.Args[0]), Str(r.Args[1])} }},
	IRQHandlerExit: {system: "irq", name: "irq_handler_exit",
		fields: []Field{{"irq", "int"}, {"ret", "int"}},
		format: "irq=%d ret=%s",
		values: func(r *Record) []any { return []any{int32(r.Args[0]), int32(r.Args[1])} },
		args: func(r *Record) []any {
			ret := "unhandled"
			if int32(r.Args[1]) != 0 {
				ret = "handled"
			}
			return []any{int32(r.Args[0]), ret}
		}},

	TaskletEntry: taskletClass("tasklet_entry"),
	TaskletExit:  taskletClass("tasklet_exit"),

	SchedWakeup: {system: "sched", name: "sched_wakeup",
		fields: []Field{{"comm", "char[16]"}, {"pid", "pid_t"}, {"prio", "int"}, {"target_cpu", "int"}},
		format: "comm=%s pid=%d prio=%d target_cpu=%03d",
		values: func(r *Record) []any {
			a := &r.Args
			return []any{UnpackComm(a[0], a[1]), int32(a[2]), int32(a[3]), int32(a[4])}
		}},
	SchedSwitch: {system: "sched", name: "sched_switch",
		fields: []Field{{"prev_comm", "char[16]"}, {"prev_pid", "pid_t"}, {"prev_prio", "int"}, {"prev_state", "long"},
			{"next_comm", "char[16]"}, {"next_pid", "pid_t"}, {"next_prio", "int"}},
		format: "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d",
		values: func(r *Record) []any {
			a := &r.Args
			return []any{r.CommString(), r.PID, int32(a[0]), int64(a[1]), UnpackComm(a[2], a[3]), int32(a[4]), int32(a[5])}
		},
		args: func(r *Record) []any {
			a := &r.Args
			plus := ""
			if a[1]&TaskReportMax != 0 {
				plus = "+"
			}
			return []any{r.CommString(), r.PID, int32(a[0]), switchState(a[1]), plus, UnpackComm(a[2], a[3]), int32(a[4]), int32(a[5])}
		}},

	SchedKthreadStop: {system: "sched", name: "sched_kthread_stop",
		fields: []Field{{"comm", "char[16]"}, {"pid", "pid_t"}},
		format: "comm=%s pid=%d",
		values: func(r *Record) []any { a := &r.Args; return []any{UnpackComm(a[0], a[1]), int32(a[2])} }},
	SchedKthreadStopRet: {system: "sched", name: "sched_kthread_stop_ret",
		fields: []Field{{"ret", "int"}}, format: "ret=%d",
		values: func(r *Record) []any { return []any{int32(r.Args[0])} }},
	SchedKthreadWorkQueueWork: {system: "sched", name: "sched_kthread_work_queue_work",
		fields: []Field{{"work", "void *"}, {"function", "void *"}, {"worker", "void *"}},
		format: "work struct=%p function=%ps worker=%p",
		values: func(r *Record) []any { a := &r.Args; return []any{Ptr(a[0]), Sym(a[1]), Ptr(a[2])} }},
	SchedKthreadWorkExecuteStart: kthreadWorkExecuteClass("sched_kthread_work_execute_start"),
	SchedKthreadWorkExecuteEnd:   kthreadWorkExecuteClass("sched_kthread_work_execute_end"),

	WorkqueueQueueWork: {system: "workqueue", name: "workqueue_queue_work",
		fields: []Field{{"work", "void *"}, {"function", "void *"}, {"workqueue", "__data_loc char[]"},
			{"req_cpu", "int"}, {"cpu", "int"}},
		format: "work struct=%p function=%ps workqueue=%s req_cpu=%d cpu=%d",
		values: func(r *Record) []any {
			a := &r.Args
			return []any{Ptr(a[0]), Sym(a[1]), Str(a[2]), int32(a[3]), int32(a[4])}
		}},
	WorkqueueActivateWork: workqueueWork("workqueue_activate_work", "work struct %p function=%ps "),
	WorkqueueExecuteStart: workqueueWork("workqueue_execute_start", "work struct %p: function %ps"),
	WorkqueueExecuteEnd:   workqueueWork("workqueue_execute_end", "work struct %p: function %ps"),
}

// workqueueWork is the layout of workqueue_activate_work,
// workqueue_execute_start and workqueue_execute_end: the work item and its
// function. (activate_work's format ends in a space, as the kernel's
// does.)
func workqueueWork(name, format string) eventDef {
	return eventDef{system: "workqueue", name: name,
		fields: []Field{{"work", "void *"}, {"function", "void *"}},
		format: format,
		values: func(r *Record) []any { return []any{Ptr(r.Args[0]), Sym(r.Args[1])} }}
}

func ptr0(r *Record) []any { return []any{Ptr(r.Args[0])} }

// kthreadWorkExecuteClass is DECLARE_EVENT_CLASS(sched_kthread_work_execute_template):
// the work and its function.
func kthreadWorkExecuteClass(name string) eventDef {
	return eventDef{system: "sched", name: name,
		fields: []Field{{"work", "void *"}, {"function", "void *"}},
		format: "work struct %p: function %ps",
		values: func(r *Record) []any { return []any{Ptr(r.Args[0]), Sym(r.Args[1])} }}
}

// taskletClass is DECLARE_EVENT_CLASS(tasklet) (v6.3+): the tasklet and
// the callback (or old-style function) it runs.
func taskletClass(name string) eventDef {
	return eventDef{system: "irq", name: name,
		fields: []Field{{"tasklet", "void *"}, {"func", "void *"}},
		format: "tasklet=%ps function=%ps",
		values: func(r *Record) []any { return []any{Ptr(r.Args[0]), Sym(r.Args[1])} }}
}

func softirqClass(name string) eventDef {
	return eventDef{system: "irq", name: name,
		fields: []Field{{"vec", "unsigned int"}}, format: "vec=%u [action=%s]",
		values: func(r *Record) []any { return []any{uint32(r.Args[0])} },
		args:   func(r *Record) []any { return []any{uint32(r.Args[0]), softirqName(r.Args[0])} }}
}

// Name returns the event's name, e.g. "timer_start".
func (e Event) Name() string {
	if e >= NumEvents {
		return fmt.Sprintf("event%d", uint16(e))
	}
	return events[e].name
}

// System returns the event's system (TRACE_SYSTEM), e.g. "timer".
func (e Event) System() string {
	if e >= NumEvents {
		return ""
	}
	return events[e].system
}

// String returns "system:name", as set_event and trace-cmd -e spell it.
func (e Event) String() string { return e.System() + ":" + e.Name() }

// Format returns the event's TP_printk format string, e.g. "timer=%p".
func (e Event) Format() string {
	if e >= NumEvents {
		return ""
	}
	return events[e].format
}

// Fields returns the event's fields (TP_STRUCT__entry), without the common
// fields (timestamp, CPU, pid, comm) every record has.
func (e Event) Fields() []Field {
	if e >= NumEvents {
		return nil
	}
	return append([]Field(nil), events[e].fields...)
}

// Values returns the values of r's event fields, in the order of Fields:
// integers as int32/uint32/int64/uint64, comms as string, and Ptr, Sym and
// Str for pointers, functions and interned strings (see Formatter).
func (e Event) Values(r *Record) []any {
	if e >= NumEvents || r.Event != e {
		return nil
	}
	return events[e].values(r)
}

// Events returns every static event, in numbering order.
func Events() []Event {
	out := make([]Event, NumEvents)
	for i := range out {
		out[i] = Event(i)
	}
	return out
}

// Lookup returns the event named name ("timer_start" or
// "timer:timer_start").
func Lookup(name string) (Event, bool) {
	sys, ev, qualified := strings.Cut(name, ":")
	if !qualified {
		ev, sys = sys, ""
	}
	for i := range events {
		if events[i].name == ev && (sys == "" || events[i].system == sys) {
			return Event(i), true
		}
	}
	return 0, false
}

// Match returns the events a pattern selects, in the syntax of the
// kernel's set_event file and trace-cmd's -e option:
//
//	timer_start         one event, by name
//	timer:timer_start   one event, by system and name
//	timer               every event of a system
//	hrtimer             a family: the events named hrtimer_* (also
//	                    softirq, irq_handler, timer_expire…)
//	timer: or timer:*   the same
//	*:hrtimer_*         shell globs in either part (path.Match)
//	all, * or *:*       every event
//
// It fails with an error wrapping ErrNoEvent when nothing matches or the
// pattern is malformed.
func Match(pattern string) ([]Event, error) {
	p := strings.TrimSpace(pattern)
	var sysPat, evPat string
	switch sys, ev, qualified := strings.Cut(p, ":"); {
	case p == "all":
		sysPat, evPat = "*", "*"
	case qualified:
		sysPat, evPat = sys, ev
		if sysPat == "" {
			sysPat = "*"
		}
		if evPat == "" {
			evPat = "*"
		}
	default:
		sysPat, evPat = "", p // a system or an event name
	}
	var out []Event
	for i := range events {
		d := &events[i]
		var ok bool
		if sysPat == "" {
			ok = match(evPat, d.system) || match(evPat, d.name) || match(evPat+"_*", d.name)
		} else {
			ok = match(sysPat, d.system) && match(evPat, d.name)
		}
		if ok {
			out = append(out, Event(i))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trace: %q: %w", pattern, ErrNoEvent)
	}
	return out, nil
}

func match(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return ok && err == nil
}

// Timer flag layout (include/linux/timer.h), for timer_start's flags field.
const (
	TimerCPUMask       = 0x0003FFFF // TIMER_CPUMASK
	TimerMigrating     = 0x00040000 // TIMER_MIGRATING
	TimerDeferrable    = 0x00080000 // TIMER_DEFERRABLE
	TimerPinned        = 0x00100000 // TIMER_PINNED
	TimerIRQSafe       = 0x00200000 // TIMER_IRQSAFE
	TimerArrayShift    = 22         // TIMER_ARRAYSHIFT
	TimerTraceFlagMask = TimerMigrating | TimerDeferrable | TimerPinned | TimerIRQSafe
)

// timerFlags is decode_timer_flags: __print_flags(flags, "|", M, D, P, I).
func timerFlags(flags uint64) string {
	return printFlags(flags, "|", []flagName{
		{TimerMigrating, "M"}, {TimerDeferrable, "D"}, {TimerPinned, "P"}, {TimerIRQSafe, "I"},
	})
}

type flagName struct {
	mask uint64
	name string
}

// printFlags is trace_print_flags_seq(): the names of the set flags joined
// by delim, then any bits no name covers in hex.
func printFlags(flags uint64, delim string, names []flagName) string {
	var b strings.Builder
	for _, n := range names {
		if n.mask == 0 || flags&n.mask != n.mask {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(delim)
		}
		b.WriteString(n.name)
		flags &^= n.mask
		if flags == 0 {
			break
		}
	}
	if flags != 0 {
		if b.Len() > 0 {
			b.WriteString(delim)
		}
		fmt.Fprintf(&b, "0x%x", flags)
	}
	return b.String()
}

// printSymbol is trace_print_symbols_seq(): the name of val, or val in hex.
func printSymbol(val uint64, names []flagName) string {
	for _, n := range names {
		if n.mask == val {
			return n.name
		}
	}
	return fmt.Sprintf("0x%x", val)
}

// clockName is decode_clockid.
func clockName(id int32) string {
	return printSymbol(uint64(uint32(id)), []flagName{
		{0, "CLOCK_REALTIME"}, {1, "CLOCK_MONOTONIC"}, {7, "CLOCK_BOOTTIME"}, {11, "CLOCK_TAI"},
	})
}

// hrtimerModeName is decode_hrtimer_mode.
func hrtimerModeName(mode uint64) string {
	return printSymbol(mode, []flagName{
		{0x0, "ABS"}, {0x1, "REL"}, {0x2, "ABS|PINNED"}, {0x3, "REL|PINNED"},
		{0x4, "ABS|SOFT"}, {0x5, "REL|SOFT"}, {0x6, "ABS|PINNED|SOFT"}, {0x7, "REL|PINNED|SOFT"},
		{0x8, "ABS|HARD"}, {0x9, "REL|HARD"}, {0xa, "ABS|PINNED|HARD"}, {0xb, "REL|PINNED|HARD"},
	})
}

// softirqName is show_softirq_name (softirq_to_name).
func softirqName(vec uint64) string {
	return printSymbol(vec, []flagName{
		{0, "HI"}, {1, "TIMER"}, {2, "NET_TX"}, {3, "NET_RX"}, {4, "BLOCK"},
		{5, "IRQ_POLL"}, {6, "TASKLET"}, {7, "SCHED"}, {8, "HRTIMER"}, {9, "RCU"},
	})
}

// Task-state reporting for sched_switch's prev_state (include/linux/sched.h).
const (
	TaskReportIdle = 0x80  // TASK_REPORT_IDLE
	TaskReportMax  = 0x100 // TASK_REPORT_MAX: set in prev_state for a preemption
	taskReport     = 0x7f  // TASK_REPORT
)

// SwitchState is __trace_sched_switch_state(preempt, state): the
// prev_state value sched_switch records for a task leaving the CPU in
// state (a TASK_* bit set; exit states included). A preempted task is
// TASK_REPORT_MAX; a running one 0.
func SwitchState(preempt bool, state uint32) uint64 {
	if preempt {
		return TaskReportMax
	}
	s := state & taskReport
	if state&0x0402 == 0x0402 { // TASK_IDLE = TASK_UNINTERRUPTIBLE | TASK_NOLOAD
		s = TaskReportIdle
	}
	if state&0x8000 != 0 { // TASK_FROZEN is reported as TASK_UNINTERRUPTIBLE (v6.1+)
		s = 0x02
	}
	if s == 0 {
		return 0
	}
	// fls(s) - 1: the highest reported bit.
	var idx uint
	for v := s; v > 1; v >>= 1 {
		idx++
	}
	return 1 << idx
}

// switchState prints prev_state as sched_switch's TP_printk does.
func switchState(state uint64) string {
	if state&(TaskReportMax-1) == 0 {
		return "R"
	}
	return printFlags(state&(TaskReportMax-1), "|", []flagName{
		{0x01, "S"}, {0x02, "D"}, {0x04, "T"}, {0x08, "t"},
		{0x10, "X"}, {0x20, "Z"}, {0x40, "P"}, {0x80, "I"},
	})
}
