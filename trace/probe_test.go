package trace_test

import (
	"testing"

	"github.com/kdefer/kdefer/trace"
)

func TestProbeSeesEventsWithoutTheRings(t *testing.T) {
	tr, clk := newTracer(t, 2, 8)
	var got []trace.Record
	detach := tr.AttachProbe(trace.TimerStart, func(r *trace.Record) { got = append(got, *r) })
	if !tr.On(trace.TimerStart) {
		t.Fatal("an event with a probe is off")
	}
	if len(tr.Enabled()) != 0 {
		t.Errorf("Enabled() = %v, want no ring events", tr.Enabled())
	}
	clk.ns.Store(5000)
	tr.Emit(hdr(1), trace.TimerStart, &trace.Args{7})
	tr.Emit(hdr(1), trace.TimerCancel, &trace.Args{7})
	if len(got) != 1 || got[0].TS != 5000 || got[0].CPU != 1 || got[0].Args[0] != 7 || got[0].CommString() != "insmod" {
		t.Fatalf("probe saw %+v, want one stamped timer_start", got)
	}
	if recs, _ := tr.Snapshot(); len(recs) != 0 {
		t.Errorf("rings hold %d records; the event is not enabled there", len(recs))
	}
	detach()
	detach()
	if tr.On(trace.TimerStart) {
		t.Error("event still on after its only probe was detached")
	}
	tr.Emit(hdr(1), trace.TimerStart, &trace.Args{8})
	if len(got) != 1 {
		t.Errorf("detached probe called")
	}
}

func TestProbeAndRingSeeTheSameRecord(t *testing.T) {
	tr, _ := newTracer(t, 1, 8)
	tr.EnableEvent(trace.SoftirqRaise)
	var seen trace.Record
	n := 0
	detach := tr.AttachProbe(trace.SoftirqRaise, func(r *trace.Record) { seen = *r; n++ })
	defer detach()
	tr.Emit(hdr(0), trace.SoftirqRaise, &trace.Args{3})
	recs, _ := tr.Snapshot()
	if n != 1 || len(recs) != 1 || recs[0] != seen {
		t.Fatalf("probe saw %+v (%d calls), ring holds %+v", seen, n, recs)
	}
	tr.DisableEvent(trace.SoftirqRaise)
	if !tr.On(trace.SoftirqRaise) {
		t.Error("disabling the ring event turned off an event that has a probe")
	}
}

func TestProbesDetachIndependently(t *testing.T) {
	tr, _ := newTracer(t, 1, 8)
	var a, b int
	da := tr.AttachProbe(trace.TimerInit, func(*trace.Record) { a++ })
	db := tr.AttachProbe(trace.TimerInit, func(*trace.Record) { b++ })
	tr.Emit(hdr(0), trace.TimerInit, &trace.Args{})
	da()
	tr.Emit(hdr(0), trace.TimerInit, &trace.Args{})
	db()
	tr.Emit(hdr(0), trace.TimerInit, &trace.Args{})
	if a != 1 || b != 2 {
		t.Errorf("calls a=%d b=%d, want 1 and 2", a, b)
	}
}

func TestProbedEmitAllocatesNothing(t *testing.T) {
	tr, _ := newTracer(t, 1, 8)
	tr.EnableEvent(trace.TimerStart)
	var n int
	defer tr.AttachProbe(trace.TimerStart, func(*trace.Record) { n++ })()
	h, a := hdr(0), &trace.Args{1}
	if allocs := testing.AllocsPerRun(100, func() { tr.Emit(h, trace.TimerStart, a) }); allocs != 0 {
		t.Errorf("Emit with a probe allocates %v times", allocs)
	}
}
