package trace_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/trace"
)

// rec builds a record of e with args at ts on cpu, as task comm/pid.
func rec(e trace.Event, ts int64, cpu int, pid int32, comm string, args ...uint64) trace.Record {
	r := trace.Record{TS: ts, CPU: uint16(cpu), PID: pid, Event: e}
	copy(r.Comm[:15], comm)
	copy(r.Args[:], args)
	return r
}

const (
	timerA = 0xc000123400
	timerB = 0xc000567800
)

// TestEachEventFormatsAsItsTPPrintk checks the field text of every event
// against the kernel's TP_printk output for the same values.
func TestEachEventFormatsAsItsTPPrintk(t *testing.T) {
	dingPC := trace.FuncPC(ding)
	wl, wh := trace.PackComm("ksoftirqd/1")
	nl, nh := trace.PackComm("insmod")
	strs := map[uint64]string{1: "eth0", 2: "events"}
	f := trace.NewFormatter(func(id uint64) string { return strs[id] })
	tokA := f.Pointer(timerA) // first pointer seen
	tokB := f.Pointer(timerB)
	for _, tc := range []struct {
		r    trace.Record
		want string
	}{
		{rec(trace.TimerInit, 0, 0, 1, "x", timerA), "timer=" + tokA},
		{rec(trace.TimerStart, 0, 0, 1, "x", timerA, dingPC, 4294892402, 4294892408, 4294892296, 1|trace.TimerPinned|12<<trace.TimerArrayShift),
			"timer=" + tokA + " function=ding expires=4294892402 [timeout=106] bucket_expiry=4294892408 cpu=1 idx=12 flags=P"},
		{rec(trace.TimerStart, 0, 0, 1, "x", timerA, dingPC, 100, 100, 200, trace.TimerDeferrable|trace.TimerIRQSafe|trace.TimerMigrating),
			"timer=" + tokA + " function=ding expires=100 [timeout=-100] bucket_expiry=100 cpu=0 idx=0 flags=M|D|I"},
		{rec(trace.TimerStart, 0, 0, 1, "x", timerB, 0, 5, 5, 5, 0),
			"timer=" + tokB + " function=0x0 expires=5 [timeout=0] bucket_expiry=5 cpu=0 idx=0 flags="},
		{rec(trace.TimerExpireEntry, 0, 0, 1, "x", timerA, 4294892409, dingPC, 4294892408),
			"timer=" + tokA + " function=ding now=4294892409 baseclk=4294892408"},
		{rec(trace.TimerExpireExit, 0, 0, 1, "x", timerA), "timer=" + tokA},
		{rec(trace.TimerCancel, 0, 0, 1, "x", timerB), "timer=" + tokB},
		{rec(trace.HrtimerSetup, 0, 0, 1, "x", timerA, 1, 0x5), "hrtimer=" + tokA + " clockid=CLOCK_MONOTONIC mode=REL|SOFT"},
		{rec(trace.HrtimerSetup, 0, 0, 1, "x", timerA, 3, 0x10), "hrtimer=" + tokA + " clockid=0x3 mode=0x10"},
		{rec(trace.HrtimerStart, 0, 0, 1, "x", timerA, dingPC, 2000500, 2000000, 0x8),
			"hrtimer=" + tokA + " function=ding expires=2000500 softexpires=2000000 mode=ABS|HARD"},
		{rec(trace.HrtimerExpireEntry, 0, 0, 1, "x", timerA, 2000501, dingPC), "hrtimer=" + tokA + " function=ding now=2000501"},
		{rec(trace.HrtimerExpireExit, 0, 0, 1, "x", timerA), "hrtimer=" + tokA},
		{rec(trace.HrtimerCancel, 0, 0, 1, "x", timerA), "hrtimer=" + tokA},
		{rec(trace.SoftirqRaise, 0, 0, 1, "x", 1), "vec=1 [action=TIMER]"},
		{rec(trace.SoftirqEntry, 0, 0, 1, "x", 8), "vec=8 [action=HRTIMER]"},
		{rec(trace.SoftirqExit, 0, 0, 1, "x", 6), "vec=6 [action=TASKLET]"},
		{rec(trace.SoftirqExit, 0, 0, 1, "x", 12), "vec=12 [action=0xc]"},
		{rec(trace.IRQHandlerEntry, 0, 0, 1, "x", 19, 1), "irq=19 name=eth0"},
		{rec(trace.IRQHandlerExit, 0, 0, 1, "x", 19, 1), "irq=19 ret=handled"},
		{rec(trace.IRQHandlerExit, 0, 0, 1, "x", 19, 0), "irq=19 ret=unhandled"},
		{rec(trace.SchedWakeup, 0, 0, 1, "x", wl, wh, 12, 120, 1), "comm=ksoftirqd/1 pid=12 prio=120 target_cpu=001"},
		{rec(trace.SchedSwitch, 0, 1, 12, "ksoftirqd/1", 120, 1, nl, nh, 0, 120),
			"prev_comm=ksoftirqd/1 prev_pid=12 prev_prio=120 prev_state=S ==> next_comm=insmod next_pid=0 next_prio=120"},
		{rec(trace.SchedSwitch, 0, 1, 0, "swapper/1", 120, 0, nl, nh, 7, 120),
			"prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=insmod next_pid=7 next_prio=120"},
		{rec(trace.SchedSwitch, 0, 1, 7, "insmod", 120, trace.TaskReportIdle, nl, nh, 0, 120),
			"prev_comm=insmod prev_pid=7 prev_prio=120 prev_state=I ==> next_comm=insmod next_pid=0 next_prio=120"},
		{rec(trace.SchedSwitch, 0, 1, 7, "insmod", 120, trace.TaskReportMax|0x01, nl, nh, 0, 120),
			"prev_comm=insmod prev_pid=7 prev_prio=120 prev_state=S+ ==> next_comm=insmod next_pid=0 next_prio=120"},
		{rec(trace.WorkqueueQueueWork, 0, 0, 1, "x", timerA, dingPC, 2, 64, 0),
			"work struct=" + tokA + " function=ding workqueue=events req_cpu=64 cpu=0"},
		{rec(trace.WorkqueueQueueWork, 0, 0, 1, "x", timerA, dingPC, 2, 1, uint64(0xffffffff)),
			"work struct=" + tokA + " function=ding workqueue=events req_cpu=1 cpu=-1"},
		{rec(trace.WorkqueueActivateWork, 0, 0, 1, "x", timerA, dingPC), "work struct " + tokA + " function=ding "},
		{rec(trace.WorkqueueExecuteStart, 0, 0, 1, "x", timerA, dingPC), "work struct " + tokA + ": function ding"},
		{rec(trace.WorkqueueExecuteEnd, 0, 0, 1, "x", timerA, dingPC), "work struct " + tokA + ": function ding"},
	} {
		if got := f.Info(&tc.r); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.r.Event, got, tc.want)
		}
	}
}

func TestEveryEventHasAFormatCase(t *testing.T) {
	// Values and Info must not panic on a zero record of any event, and
	// Values returns one value per field.
	f := trace.NewFormatter(nil)
	for _, e := range trace.Events() {
		r := trace.Record{Event: e}
		if got := len(e.Values(&r)); got != len(e.Fields()) {
			t.Errorf("%v: %d values for %d fields", e, got, len(e.Fields()))
		}
		if f.Info(&r) == "" {
			t.Errorf("%v formats as nothing", e)
		}
	}
	r := trace.Record{Event: trace.TimerInit}
	if v := trace.TimerStart.Values(&r); v != nil {
		t.Errorf("Values of another event's record = %v, want nil", v)
	}
}

func TestPointerTokensAreStableAndLookHashed(t *testing.T) {
	f1, f2 := trace.NewFormatter(nil), trace.NewFormatter(nil)
	a1, b1 := f1.Pointer(0x1000), f1.Pointer(0x2000)
	// Other addresses, met in the same order, give the same tokens.
	a2, b2 := f2.Pointer(0x7000), f2.Pointer(0x3000)
	if a1 != a2 || b1 != b2 || a1 == b1 {
		t.Errorf("tokens %s %s vs %s %s: want equal by order of appearance, distinct", a1, b1, a2, b2)
	}
	if f1.Pointer(0x1000) != a1 {
		t.Error("the same pointer got a new token")
	}
	if len(a1) != 16 || !strings.HasPrefix(a1, "00000000") {
		t.Errorf("token %q is not in the kernel's hashed-pointer shape", a1)
	}
	if got := f1.Pointer(0); got != "0000000000000000" {
		t.Errorf("Pointer(0) = %q", got)
	}
}

// TestReportLineMatchesTraceCmdPadding checks the exact columns of
// trace-cmd report: "%16s-%-5d [%03d] %5llu.%06llu: " then the event name
// padded to 20 columns.
func TestReportLineMatchesTraceCmdPadding(t *testing.T) {
	f := trace.NewFormatter(nil)
	for _, tc := range []struct {
		r    trace.Record
		want string
	}{
		{rec(trace.SoftirqRaise, 424_000_000, 1, 0, "swapper/1", 1),
			"          <idle>-0     [001]     0.424000: softirq_raise:        vec=1 [action=TIMER]"},
		{rec(trace.SoftirqRaise, 1_234_567_499, 0, 12345, "ksoftirqd/0", 1),
			"     ksoftirqd/0-12345 [000]     1.234567: softirq_raise:        vec=1 [action=TIMER]"},
		{rec(trace.SoftirqRaise, 1_234_567_500, 0, 7, "insmod", 1),
			"          insmod-7     [000]     1.234568: softirq_raise:        vec=1 [action=TIMER]"},
		{rec(trace.TimerCancel, 86_400_000_000_000, 63, -1, "", 0),
			"           <...>--1    [063] 86400.000000: timer_cancel:         timer=0000000000000000"},
		{rec(trace.HrtimerExpireEntry, 3_000_000_000, 2, 9, "a-very-long-name", 0, 5, 0),
			" a-very-long-nam-9     [002]     3.000000: hrtimer_expire_entry: hrtimer=0000000000000000 function=0x0 now=5"},
	} {
		if got := f.Line(&tc.r); got != tc.want {
			t.Errorf("line:\n got %q\nwant %q", got, tc.want)
		}
	}
}

func TestWriteReportPrintsCPUsAndDroppedEvents(t *testing.T) {
	tr, clk := newTracer(t, 2, 2)
	tr.Enable("irq:softirq_raise")
	for i := range 3 {
		clk.ns.Store(int64(i+1) * 1_000_000_000)
		tr.Emit(&trace.Header{CPU: 1, PID: 0, Comm: "swapper/1"}, trace.SoftirqRaise, &trace.Args{uint64(i)})
	}
	clk.ns.Store(2_500_000_000)
	tr.Emit(&trace.Header{CPU: 0, PID: 5, Comm: "insmod"}, trace.SoftirqRaise, &trace.Args{9})
	var b bytes.Buffer
	if err := tr.Report(&b); err != nil {
		t.Fatal(err)
	}
	want := "cpus=2\n" +
		"CPU:1 [1 EVENTS DROPPED]\n" +
		"          <idle>-0     [001]     2.000000: softirq_raise:        vec=1 [action=TIMER]\n" +
		"          insmod-5     [000]     2.500000: softirq_raise:        vec=9 [action=RCU]\n" +
		"          <idle>-0     [001]     3.000000: softirq_raise:        vec=2 [action=NET_TX]\n"
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestEqualTimestampsKeepEmissionOrderAcrossCPUs(t *testing.T) {
	tr, _ := newTracer(t, 3, 8)
	tr.EnableEvent(trace.SoftirqRaise)
	for _, cpu := range []int{2, 0, 1, 0} {
		tr.Emit(&trace.Header{CPU: cpu, PID: 1}, trace.SoftirqRaise, &trace.Args{uint64(cpu)})
	}
	recs, _ := tr.Snapshot()
	var cpus []uint16
	for _, r := range recs {
		cpus = append(cpus, r.CPU)
	}
	if want := []uint16{2, 0, 1, 0}; !equal(cpus, want) {
		t.Errorf("order by CPU %v, want emission order %v", cpus, want)
	}
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
