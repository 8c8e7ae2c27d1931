package kernel_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// traceLines returns the report lines (without the cpus= header) whose
// event is one of events, or all of them when none is given.
func traceLines(t *testing.T, k *kernel.Kernel, events ...trace.Event) []string {
	t.Helper()
	var b strings.Builder
	if err := k.Tracer().Report(&b); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")[1:] {
		if len(events) == 0 {
			out = append(out, l)
			continue
		}
		for _, e := range events {
			if strings.Contains(l, " "+e.Name()+": ") {
				out = append(out, l)
			}
		}
	}
	return out
}

// lineRE splits a report line into comm-pid, CPU, time, event and fields.
var lineRE = regexp.MustCompile(`^ *(\S+) +\[(\d{3})\] +[\d.]+: (\w+): +(.*)$`)

// fields strips the time and event columns of report lines, keeping
// "comm-pid [cpu] fields".
func fields(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			out[i] = "unparsed: " + l
			continue
		}
		out[i] = m[1] + " [" + m[2] + "] " + m[4]
	}
	return out
}

func TestTracingIsOffUntilEnabled(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, Quiet: true})
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {})
	k.Spawn("raiser", func(c *kernel.Ctx) int { kernel.RaiseSoftirq(c, kernel.NetRXSoftirq); return 0 })
	run(t, k, 0)
	if got := k.Tracer().Enabled(); len(got) != 0 {
		t.Errorf("events enabled at boot: %v", got)
	}
	if recs, _ := k.Tracer().Snapshot(); len(recs) != 0 {
		t.Errorf("%d records taken with every event off", len(recs))
	}
}

func TestConfigTraceEventsEnablesAtBootAndSizesTheRings(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, TraceEvents: "sched:sched_wakeup, irq", TraceBufferRecords: 100})
	var names []string
	for _, e := range k.Tracer().Enabled() {
		names = append(names, e.Name())
	}
	want := []string{"softirq_raise", "softirq_entry", "softirq_exit", "irq_handler_entry", "irq_handler_exit", "tasklet_entry", "tasklet_exit", "sched_wakeup"}
	if !slices.Equal(names, want) {
		t.Errorf("enabled %v, want %v", names, want)
	}
	if got := k.Tracer().BufferRecords(); got != 128 {
		t.Errorf("BufferRecords() = %d, want 128", got)
	}
	// ksoftirqd/0 was woken during boot, with sched_wakeup already on.
	if got := fields(traceLines(t, k, trace.SchedWakeup)); !slices.Equal(got, []string{"<idle>-0 [000] comm=ksoftirqd/0 pid=3 prio=120 target_cpu=000"}) {
		t.Errorf("boot wakeups = %q", got)
	}
}

func TestBootRejectsUnknownTraceEventsAndBadRingSizes(t *testing.T) {
	_, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true, TraceEvents: "timer,nosuch"})
	if !errors.Is(err, trace.ErrNoEvent) || !strings.HasPrefix(err.Error(), "kernel: boot: ") {
		t.Errorf("Boot with an unknown event = %v, want a kernel: boot: error wrapping ErrNoEvent", err)
	}
	_, err = kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true, TraceBufferRecords: -1})
	if !errors.Is(err, trace.ErrBadOptions) {
		t.Errorf("Boot with a negative ring size = %v, want ErrBadOptions", err)
	}
}

func TestTwoKernelsTraceIndependently(t *testing.T) {
	k1 := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	k2 := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	k1.Tracer().Enable("irq")
	for _, k := range []*kernel.Kernel{k1, k2} {
		k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {})
		k.Spawn("raiser", func(c *kernel.Ctx) int { kernel.RaiseSoftirq(c, kernel.NetRXSoftirq); return 0 })
		run(t, k, 0)
	}
	if len(traceLines(t, k1)) == 0 {
		t.Error("k1 recorded nothing")
	}
	if got := traceLines(t, k2); len(got) != 0 || len(k2.Tracer().Enabled()) != 0 {
		t.Errorf("k2 recorded %q with %v enabled", got, k2.Tracer().Enabled())
	}
}

// TestSoftirqEventsFromRaiseToExit raises NET_RX from a task: the raise is
// recorded in the task's context, the run in ksoftirqd's, serving a
// softirq.
func TestSoftirqEventsFromRaiseToExit(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, TraceEvents: "irq"})
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {})
	k.Spawn("raiser", func(c *kernel.Ctx) int { kernel.RaiseSoftirq(c, kernel.NetRXSoftirq); return 0 })
	run(t, k, 0)
	want := []string{
		"raiser-4 [000] vec=3 [action=NET_RX]",
		"ksoftirqd/0-3 [000] vec=3 [action=NET_RX]",
		"ksoftirqd/0-3 [000] vec=3 [action=NET_RX]",
	}
	lines := traceLines(t, k)
	if got := fields(lines); !slices.Equal(got, want) {
		t.Fatalf("records = %q, want %q", got, want)
	}
	for i, ev := range []string{"softirq_raise", "softirq_entry", "softirq_exit"} {
		if !strings.Contains(lines[i], " "+ev+": ") {
			t.Errorf("line %d = %q, want %s", i, lines[i], ev)
		}
	}
	recs, _ := k.Tracer().Snapshot()
	// raise_softirq runs with interrupts saved and disabled; the handler
	// serves a softirq.
	if recs[0].Flags != trace.FlagIRQsOff || recs[1].Flags != trace.FlagSoftirq {
		t.Errorf("flags raise %#x, entry %#x: want irqs-off, then serving a softirq", recs[0].Flags, recs[1].Flags)
	}
}

func TestIRQHandlerEventsNameTheHandlerAndItsReturn(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, Quiet: true, TraceEvents: "irq:irq_*"})
	handled := func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn { return kernel.IRQHandled }
	none := func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn { return kernel.IRQNone }
	if err := k.RequestIRQ(19, none, kernel.IRQFShared, "eth0", 1); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestIRQ(19, handled, kernel.IRQFShared, "ahci", 2); err != nil {
		t.Fatal(err)
	}
	if err := k.GenerateIRQ(1, 19); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"<idle>-0 [001] irq=19 name=eth0",
		"<idle>-0 [001] irq=19 ret=unhandled",
		"<idle>-0 [001] irq=19 name=ahci",
		"<idle>-0 [001] irq=19 ret=handled",
	}
	lines := traceLines(t, k)
	if got := fields(lines); !slices.Equal(got, want) {
		t.Fatalf("records = %q, want %q", got, want)
	}
	recs, _ := k.Tracer().Snapshot()
	if f := recs[0].Flags; f&trace.FlagHardirq == 0 || f&trace.FlagIRQsOff == 0 {
		t.Errorf("handler flags %#x, want hardirq with interrupts off", f)
	}
}

// TestSchedSwitchBracketsABlockAndWakeupNamesTheWoken: a task that blocks
// records a switch to its CPU's idle task in its sleep state; the wakeup
// is recorded on its CPU; running again records the switch back.
func TestSchedSwitchBracketsABlockAndWakeupNamesTheWoken(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, Quiet: true})
	k.Tracer().Enable("sched")
	sleeper, _ := k.Spawn("sleeper", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		kernel.Schedule(c)
		return 0
	})
	run(t, k, 0)
	k.Spawn("waker", func(c *kernel.Ctx) int { k.WakeUpProcess(sleeper); return 0 })
	run(t, k, 0)
	want := []string{
		"<idle>-0 [000] comm=sleeper pid=5 prio=120 target_cpu=000",
		"<idle>-0 [000] prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=sleeper next_pid=5 next_prio=120",
		"sleeper-5 [000] prev_comm=sleeper prev_pid=5 prev_prio=120 prev_state=D ==> next_comm=swapper/0 next_pid=0 next_prio=120",
		"<idle>-0 [001] comm=waker pid=6 prio=120 target_cpu=001",
		"<idle>-0 [001] prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=waker next_pid=6 next_prio=120",
		"<idle>-0 [000] comm=sleeper pid=5 prio=120 target_cpu=000",
		"waker-6 [001] prev_comm=waker prev_pid=6 prev_prio=120 prev_state=Z ==> next_comm=swapper/1 next_pid=0 next_prio=120",
		"<idle>-0 [000] prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=sleeper next_pid=5 next_prio=120",
		"sleeper-5 [000] prev_comm=sleeper prev_pid=5 prev_prio=120 prev_state=Z ==> next_comm=swapper/0 next_pid=0 next_prio=120",
	}
	if got := fields(traceLines(t, k)); !slices.Equal(got, want) {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestKthreadExitReportsExitDead(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, TraceEvents: "sched_switch"})
	kt, err := k.CreateTask(kernel.TaskOpts{Comm: "kworker", Kthread: true, CPU: 0}, func(c *kernel.Ctx) int { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(kt)
	run(t, k, 0)
	lines := traceLines(t, k)
	if n := len(lines); n < 2 || !strings.HasPrefix(fields(lines[n-1:])[0], "kworker-4 [000] prev_comm=kworker prev_pid=4 prev_prio=120 prev_state=X ==> next_comm=swapper/0") {
		t.Errorf("records = %q, want kworker's last switch out with prev_state=X", lines)
	}
}

func TestTraceRecordsNothingForADisabledEvent(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, TraceEvents: "softirq_entry"})
	c := k.IdleCtx(0)
	kernel.Trace(c, trace.SoftirqRaise, &trace.Args{1})
	kernel.Trace(c, trace.SoftirqEntry, &trace.Args{1})
	if got := fields(traceLines(t, k)); !slices.Equal(got, []string{"<idle>-0 [000] vec=1 [action=TIMER]"}) {
		t.Errorf("records = %q, want only the enabled softirq_entry", got)
	}
}
