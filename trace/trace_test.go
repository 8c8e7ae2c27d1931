package trace_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/trace"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() int64 { return c.ns.Load() }

func newTracer(t *testing.T, cpus, size int) (*trace.Tracer, *clock) {
	t.Helper()
	c := &clock{}
	tr, err := trace.New(trace.Options{CPUs: cpus, BufferRecords: size, Clock: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return tr, c
}

func hdr(cpu int) *trace.Header { return &trace.Header{CPU: cpu, PID: 42, Comm: "insmod"} }

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []trace.Options{
		{CPUs: 0, Clock: func() int64 { return 0 }},
		{CPUs: 1, BufferRecords: -1, Clock: func() int64 { return 0 }},
		{CPUs: 1},
	} {
		if _, err := trace.New(o); !errors.Is(err, trace.ErrBadOptions) {
			t.Errorf("New(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
}

func TestCapacityRoundsUpToAPowerOfTwo(t *testing.T) {
	tr, _ := newTracer(t, 1, 100)
	if got := tr.BufferRecords(); got != 128 {
		t.Errorf("BufferRecords() = %d, want 128", got)
	}
	tr, _ = newTracer(t, 1, 0)
	if got := tr.BufferRecords(); got != trace.DefaultBufferRecords {
		t.Errorf("BufferRecords() = %d, want %d", got, trace.DefaultBufferRecords)
	}
}

func TestEveryEventStartsDisabled(t *testing.T) {
	tr, _ := newTracer(t, 2, 8)
	for _, e := range trace.Events() {
		if tr.On(e) {
			t.Errorf("%v enabled at start", e)
		}
	}
	if got := tr.Enabled(); len(got) != 0 {
		t.Errorf("Enabled() = %v, want none", got)
	}
}

func TestDisabledEventRecordsNothing(t *testing.T) {
	tr, _ := newTracer(t, 1, 8)
	tr.EnableEvent(trace.TimerStart)
	tr.Emit(hdr(0), trace.TimerCancel, &trace.Args{1})
	tr.Emit(hdr(0), trace.TimerStart, &trace.Args{2})
	tr.DisableEvent(trace.TimerStart)
	tr.Emit(hdr(0), trace.TimerStart, &trace.Args{3})
	recs, _ := tr.Snapshot()
	if len(recs) != 1 || recs[0].Event != trace.TimerStart || recs[0].Args[0] != 2 {
		t.Fatalf("records = %+v, want only the enabled timer_start", recs)
	}
}

func TestRecordsOnAnOutOfRangeCPUAreDropped(t *testing.T) {
	tr, _ := newTracer(t, 2, 8)
	tr.EnableEvent(trace.SoftirqRaise)
	tr.Emit(hdr(2), trace.SoftirqRaise, &trace.Args{1})
	tr.Emit(hdr(-1), trace.SoftirqRaise, &trace.Args{1})
	if recs, _ := tr.Snapshot(); len(recs) != 0 {
		t.Fatalf("records = %+v, want none", recs)
	}
}

func TestRingOverwritesTheOldestAndCountsTheLost(t *testing.T) {
	tr, clk := newTracer(t, 2, 4)
	tr.EnableEvent(trace.SoftirqRaise)
	for i := range 10 {
		clk.ns.Store(int64(i))
		tr.Emit(hdr(0), trace.SoftirqRaise, &trace.Args{uint64(i)})
	}
	tr.Emit(hdr(1), trace.SoftirqRaise, &trace.Args{100})
	recs, lost := tr.Snapshot()
	var got []uint64
	for _, r := range recs {
		if r.CPU == 0 {
			got = append(got, r.Args[0])
		}
	}
	if want := []uint64{6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("cpu 0 holds %v, want the newest %v", got, want)
	}
	if want := []uint64{6, 0}; !slices.Equal(lost, want) {
		t.Errorf("lost = %v, want %v", lost, want)
	}
	st := tr.Stats()
	if st[0] != (trace.CPUStats{Entries: 4, Overrun: 6, Written: 10}) {
		t.Errorf("Stats()[0] = %+v", st[0])
	}
	// A snapshot consumes nothing.
	if again, _ := tr.Snapshot(); len(again) != len(recs) {
		t.Errorf("second snapshot has %d records, want %d", len(again), len(recs))
	}
}

func TestReadConsumesAndReportsTheLostOnce(t *testing.T) {
	tr, _ := newTracer(t, 1, 4)
	tr.EnableEvent(trace.SoftirqRaise)
	for i := range 6 {
		tr.Emit(hdr(0), trace.SoftirqRaise, &trace.Args{uint64(i)})
	}
	dst := make([]trace.Record, 3)
	n, lost := tr.Read(0, dst)
	if n != 3 || lost != 2 || dst[0].Args[0] != 2 || dst[2].Args[0] != 4 {
		t.Fatalf("Read = %d records from %d, lost %d; want 3 from 2, lost 2", n, dst[0].Args[0], lost)
	}
	n, lost = tr.Read(0, dst)
	if n != 1 || lost != 0 || dst[0].Args[0] != 5 {
		t.Fatalf("second Read = %d records from %d, lost %d; want 1 (5), lost 0", n, dst[0].Args[0], lost)
	}
	if n, _ := tr.Read(0, dst); n != 0 {
		t.Fatalf("third Read = %d records, want 0", n)
	}
	if n, _ := tr.Read(5, dst); n != 0 {
		t.Fatalf("Read of a missing CPU = %d records, want 0", n)
	}
}

func TestClearEmptiesTheRingsAndKeepsTheEnables(t *testing.T) {
	tr, _ := newTracer(t, 1, 2)
	tr.EnableEvent(trace.SoftirqRaise)
	for range 5 {
		tr.Emit(hdr(0), trace.SoftirqRaise, &trace.Args{})
	}
	tr.Clear()
	if recs, lost := tr.Snapshot(); len(recs) != 0 || lost[0] != 0 {
		t.Fatalf("after Clear: %d records, lost %v", len(recs), lost)
	}
	tr.Emit(hdr(0), trace.SoftirqRaise, &trace.Args{})
	if recs, _ := tr.Snapshot(); len(recs) != 1 {
		t.Fatalf("after Clear and one emit: %d records, want 1", len(recs))
	}
}

func TestEnableBySystemEventAndGlob(t *testing.T) {
	names := func(evs []trace.Event) string {
		var s []string
		for _, e := range evs {
			s = append(s, e.Name())
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct{ pattern, want string }{
		{"sched", "sched_wakeup,sched_switch,sched_kthread_stop,sched_kthread_stop_ret,sched_kthread_work_queue_work,sched_kthread_work_execute_start,sched_kthread_work_execute_end"},
		{"sched:", "sched_wakeup,sched_switch,sched_kthread_stop,sched_kthread_stop_ret,sched_kthread_work_queue_work,sched_kthread_work_execute_start,sched_kthread_work_execute_end"},
		{"sched:*", "sched_wakeup,sched_switch,sched_kthread_stop,sched_kthread_stop_ret,sched_kthread_work_queue_work,sched_kthread_work_execute_start,sched_kthread_work_execute_end"},
		{"sched_switch", "sched_switch"},
		{"hrtimer", "hrtimer_setup,hrtimer_start,hrtimer_expire_entry,hrtimer_expire_exit,hrtimer_cancel"},
		{"softirq", "softirq_raise,softirq_entry,softirq_exit"},
		{"tasklet", "tasklet_entry,tasklet_exit"},
		{"workqueue", "workqueue_queue_work,workqueue_activate_work,workqueue_execute_start,workqueue_execute_end"},
		{"workqueue_execute", "workqueue_execute_start,workqueue_execute_end"},
		{"timer_expire", "timer_expire_entry,timer_expire_exit"},
		{"sched:sched_switch", "sched_switch"},
		{"irq:softirq_*", "softirq_raise,softirq_entry,softirq_exit"},
		{"*:hrtimer_*", "hrtimer_setup,hrtimer_start,hrtimer_expire_entry,hrtimer_expire_exit,hrtimer_cancel"},
		{"timer_start,irq_handler_exit", "timer_start,irq_handler_exit"},
		{"timer", "timer_init,timer_start,timer_expire_entry,timer_expire_exit,timer_cancel," +
			"hrtimer_setup,hrtimer_start,hrtimer_expire_entry,hrtimer_expire_exit,hrtimer_cancel"},
	} {
		tr, _ := newTracer(t, 1, 2)
		if err := tr.Enable(tc.pattern); err != nil {
			t.Errorf("Enable(%q): %v", tc.pattern, err)
			continue
		}
		if got := names(tr.Enabled()); got != tc.want {
			t.Errorf("Enable(%q) enabled %s, want %s", tc.pattern, got, tc.want)
		}
	}
	for _, all := range []string{"all", "*", "*:*"} {
		tr, _ := newTracer(t, 1, 2)
		if err := tr.Enable(all); err != nil || len(tr.Enabled()) != int(trace.NumEvents) {
			t.Errorf("Enable(%q) enabled %d events (%v), want all %d", all, len(tr.Enabled()), err, trace.NumEvents)
		}
		if err := tr.Disable("timer"); err != nil || names(tr.Enabled()) != "softirq_raise,softirq_entry,softirq_exit,irq_handler_entry,irq_handler_exit,tasklet_entry,tasklet_exit,sched_wakeup,sched_switch,sched_kthread_stop,sched_kthread_stop_ret,sched_kthread_work_queue_work,sched_kthread_work_execute_start,sched_kthread_work_execute_end,"+
			"workqueue_queue_work,workqueue_activate_work,workqueue_execute_start,workqueue_execute_end" {
			t.Errorf("Disable(timer) left %s (%v)", names(tr.Enabled()), err)
		}
	}
}

func TestEnableOfAnUnknownEventFailsAndEnablesNothing(t *testing.T) {
	tr, _ := newTracer(t, 1, 2)
	for _, p := range []string{"nosuch", "timer:sched_switch", "timer_start,bogus", "[", "sched:["} {
		err := tr.Enable(p)
		if !errors.Is(err, trace.ErrNoEvent) {
			t.Errorf("Enable(%q) = %v, want ErrNoEvent", p, err)
		}
		if err == nil || !strings.HasPrefix(err.Error(), "trace: ") {
			t.Errorf("Enable(%q) error %q lacks the package prefix", p, err)
		}
	}
	if got := tr.Enabled(); len(got) != 0 {
		t.Errorf("failed Enables enabled %v", got)
	}
}

func TestLookupAndEventNames(t *testing.T) {
	for _, e := range trace.Events() {
		for _, name := range []string{e.Name(), e.String()} {
			if got, ok := trace.Lookup(name); !ok || got != e {
				t.Errorf("Lookup(%q) = %v, %t; want %v", name, got, ok, e)
			}
		}
		if e.Format() == "" || len(e.Fields()) == 0 {
			t.Errorf("%v has no format or fields", e)
		}
	}
	if _, ok := trace.Lookup("timer:sched_switch"); ok {
		t.Error("Lookup found sched_switch in system timer")
	}
	if got := trace.TimerStart.String(); got != "timer:timer_start" {
		t.Errorf("TimerStart.String() = %q", got)
	}
	if got := trace.NumEvents.Name(); got != fmt.Sprintf("event%d", trace.NumEvents) {
		t.Errorf("NumEvents.Name() = %q", got)
	}
}

func TestPackCommRoundTripsAndTruncatesTo15Bytes(t *testing.T) {
	for _, s := range []string{"", "a", "ksoftirqd/1", "exactly15bytes!", "sixteen-bytes-xx"} {
		want := s
		if len(want) > 15 {
			want = want[:15]
		}
		if got := trace.UnpackComm(trace.PackComm(s)); got != want {
			t.Errorf("UnpackComm(PackComm(%q)) = %q, want %q", s, got, want)
		}
	}
}

func TestSwitchStateAsTheKernelReportsIt(t *testing.T) {
	for _, tc := range []struct {
		preempt bool
		state   uint32
		want    uint64
	}{
		{false, 0x0000, 0},                    // TASK_RUNNING
		{false, 0x0001, 0x01},                 // TASK_INTERRUPTIBLE
		{false, 0x0002, 0x02},                 // TASK_UNINTERRUPTIBLE
		{false, 0x0102, 0x02},                 // TASK_KILLABLE
		{false, 0x0402, trace.TaskReportIdle}, // TASK_IDLE
		{false, 0x0040, 0x40},                 // TASK_PARKED
		{false, 0x0010, 0x10},                 // EXIT_DEAD
		{true, 0x0001, trace.TaskReportMax},
	} {
		if got := trace.SwitchState(tc.preempt, tc.state); got != tc.want {
			t.Errorf("SwitchState(%t, %#x) = %#x, want %#x", tc.preempt, tc.state, got, tc.want)
		}
	}
}

func ding() {}

type blinker struct{}

func (*blinker) tick() {}

func TestSymbolNamesGoFunctionsAsPercentPs(t *testing.T) {
	b := &blinker{}
	closure := func() {}
	for _, tc := range []struct {
		pc   uint64
		want string
	}{
		{trace.FuncPC(ding), "ding"},
		{trace.FuncPC(b.tick), "tick"},
		{trace.FuncPC(closure), "TestSymbolNamesGoFunctionsAsPercentPs"},
	} {
		if got := trace.SymbolName(tc.pc); got != tc.want {
			t.Errorf("SymbolName = %q, want %q", got, tc.want)
		}
	}
	var nilFn func()
	if pc := trace.FuncPC(nilFn); pc != 0 {
		t.Errorf("FuncPC(nil) = %#x, want 0", pc)
	}
	if got := trace.SymbolName(1); got != "0x1" {
		t.Errorf("SymbolName(1) = %q, want 0x1", got)
	}
}

func TestEmitAllocatesNothing(t *testing.T) {
	tr, _ := newTracer(t, 2, 64)
	tr.EnableEvent(trace.SchedWakeup)
	lo, hi := trace.PackComm("ksoftirqd/1")
	a := trace.Args{lo, hi, 17, 120, 1}
	h := trace.Header{CPU: 1, PID: 17, Comm: "ksoftirqd/1", Flags: trace.FlagSoftirq, Preempt: 1}
	if n := testing.AllocsPerRun(1000, func() { tr.Emit(&h, trace.SchedWakeup, &a) }); n != 0 {
		t.Errorf("Emit allocates %.1f times per call, want 0", n)
	}
	id := tr.Intern("eth0")
	if n := testing.AllocsPerRun(1000, func() { tr.Intern("eth0") }); n != 0 || tr.Intern("eth0") != id {
		t.Errorf("Intern of a known string allocates %.1f times per call, want 0", n)
	}
}

func TestInternNumbersStringsFromOne(t *testing.T) {
	tr, _ := newTracer(t, 1, 2)
	if tr.Intern("") != 0 || tr.String(0) != "" {
		t.Error(`"" is not string 0`)
	}
	a, b := tr.Intern("eth0"), tr.Intern("timer")
	if a != 1 || b != 2 || tr.Intern("eth0") != 1 {
		t.Errorf("ids = %d, %d; want 1, 2", a, b)
	}
	if tr.String(1) != "eth0" || tr.String(2) != "timer" || tr.String(3) != "" {
		t.Error("String does not return the interned strings")
	}
	if got := tr.Strings(); !slices.Equal(got, []string{"eth0", "timer"}) {
		t.Errorf("Strings() = %q", got)
	}
}

// TestConcurrentEmittersAndReaderLoseNothingUncounted has several CPUs
// emit while a reader drains and snapshots: every record is either read,
// still in the ring, or counted lost, and each CPU's records come out in
// the order they were written.
func TestConcurrentEmittersAndReaderLoseNothingUncounted(t *testing.T) {
	const cpus, perCPU = 4, 5000
	tr, clk := newTracer(t, cpus, 64)
	tr.Enable("irq")
	var wg sync.WaitGroup
	for cpu := range cpus {
		wg.Go(func() {
			for i := range perCPU {
				clk.ns.Add(1)
				tr.Emit(&trace.Header{CPU: cpu, PID: cpu + 1, Comm: "w"}, trace.SoftirqRaise, &trace.Args{uint64(i)})
			}
		})
	}
	done := make(chan struct{})
	var read, lost [cpus]uint64
	var last [cpus]int64
	for i := range last {
		last[i] = -1
	}
	readAll := func() {
		buf := make([]trace.Record, 16)
		for cpu := range cpus {
			for {
				n, l := tr.Read(cpu, buf)
				lost[cpu] += l
				for _, r := range buf[:n] {
					if int64(r.Args[0]) <= last[cpu] {
						t.Errorf("cpu %d: record %d after %d", cpu, r.Args[0], last[cpu])
					}
					last[cpu] = int64(r.Args[0])
				}
				read[cpu] += uint64(n)
				if n < len(buf) {
					break
				}
			}
		}
	}
	var rg sync.WaitGroup
	rg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			readAll()
			tr.Snapshot()
			tr.Stats()
		}
	})
	wg.Wait()
	close(done)
	rg.Wait()
	readAll()
	for cpu := range cpus {
		if read[cpu]+lost[cpu] != perCPU {
			t.Errorf("cpu %d: read %d + lost %d != written %d", cpu, read[cpu], lost[cpu], perCPU)
		}
	}
}

func TestOnAnyTestsASetOfEvents(t *testing.T) {
	tr, _ := newTracer(t, 1, 2)
	set := trace.Set(trace.TimerStart, trace.TimerCancel)
	if tr.OnAny(set) {
		t.Error("OnAny true with every event off")
	}
	tr.EnableEvent(trace.SchedSwitch)
	if tr.OnAny(set) {
		t.Error("OnAny true with only another event on")
	}
	tr.EnableEvent(trace.TimerCancel)
	if !tr.OnAny(set) {
		t.Error("OnAny false with timer_cancel on")
	}
	if trace.Set(trace.NumEvents) != 0 {
		t.Error("Set of an out-of-range event is not empty")
	}
}
