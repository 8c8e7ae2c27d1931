package trace_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/trace"
)

func tick() {}

// fill emits a few records of every kind a file must resolve: a pointer,
// a function (Sym) and an interned string (Str).
func fill(tr *trace.Tracer, clk *clock) {
	tr.EnableEvent(trace.TimerStart)
	tr.EnableEvent(trace.IRQHandlerEntry)
	tr.EnableEvent(trace.SoftirqRaise)
	clk.ns.Store(1_000_000)
	tr.Emit(hdr(0), trace.TimerStart, &trace.Args{0x1000, trace.FuncPC(tick), 4294967546, 4294967546, 4294967296, 0})
	clk.ns.Store(2_000_000)
	tr.Emit(&trace.Header{CPU: 1, Flags: trace.FlagHardirq}, trace.IRQHandlerEntry, &trace.Args{16, tr.Intern("eth0")})
	tr.Emit(hdr(1), trace.SoftirqRaise, &trace.Args{1})
}

func record(t *testing.T, tr *trace.Tracer, drains ...func()) []byte {
	t.Helper()
	var buf bytes.Buffer
	rec, err := trace.NewRecorder(&buf, tr, trace.FileHeader{HZ: 250, Command: []string{"run", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drains {
		d()
		if _, err := rec.Drain(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFileReportIsTheTracersReport(t *testing.T) {
	tr, clk := newTracer(t, 2, 64)
	fill(tr, clk)
	var want bytes.Buffer
	tr.Report(&want)
	data := record(t, tr)
	f, err := trace.ReadFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := f.Report(&got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("file report:\n%s\ntracer report:\n%s", got.String(), want.String())
	}
	if !strings.Contains(got.String(), "function=tick") || !strings.Contains(got.String(), "name=eth0") {
		t.Errorf("symbols or strings not resolved:\n%s", got.String())
	}
	if f.Header.CPUs != 2 || f.Header.HZ != 250 || f.Trailer.Records != 3 || len(f.Header.Events) != int(trace.NumEvents) {
		t.Errorf("header %+v trailer %+v", f.Header, f.Trailer)
	}
	if recs, _ := tr.Snapshot(); len(recs) != 0 {
		t.Errorf("recording left %d records unread in the rings", len(recs))
	}
}

func TestFileNamesFunctionsWithoutTheRecordingProcess(t *testing.T) {
	tr, clk := newTracer(t, 1, 64)
	tr.EnableEvent(trace.TimerStart)
	clk.ns.Store(1)
	tr.Emit(hdr(0), trace.TimerStart, &trace.Args{1, trace.FuncPC(tick)})
	f, err := trace.ReadFile(bytes.NewReader(record(t, tr)))
	if err != nil {
		t.Fatal(err)
	}
	// Another process has other PCs: the file's own table must be used.
	if got := f.Symbol(f.Records[0].Args[1]); got != "tick" {
		t.Errorf("Symbol = %q, want tick", got)
	}
}

func TestLostRecordsAreCountedAndShownBeforeTheNextRecordOfTheirCPU(t *testing.T) {
	tr, clk := newTracer(t, 2, 4)
	tr.EnableEvent(trace.SoftirqRaise)
	emit := func(cpu, n int) func() {
		return func() {
			for i := 0; i < n; i++ {
				clk.ns.Add(1000)
				tr.Emit(hdr(cpu), trace.SoftirqRaise, &trace.Args{uint64(i % 10)})
			}
		}
	}
	data := record(t, tr, emit(0, 3), emit(0, 10), emit(1, 2))
	f, err := trace.ReadFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Lost(); got[0] != 6 || got[1] != 0 {
		t.Errorf("Lost() = %v, want [6 0]", got)
	}
	if f.Trailer.Lost[0] != 6 || f.Trailer.Records != 9 {
		t.Errorf("trailer %+v", f.Trailer)
	}
	var out bytes.Buffer
	f.Report(&out)
	lines := strings.Split(out.String(), "\n")
	// cpus=2, 3 records, the drop, then the 4 survivors of the burst.
	if lines[4] != "CPU:0 [6 EVENTS DROPPED]" {
		t.Errorf("line 5 = %q, want the drop before the burst's survivors:\n%s", lines[4], out.String())
	}
}

func TestTruncatedFileReadsUpToItsLastWholeChunk(t *testing.T) {
	tr, clk := newTracer(t, 2, 64)
	fill(tr, clk)
	data := record(t, tr)
	f, err := trace.ReadFile(bytes.NewReader(data[:len(data)-3]))
	if !errors.Is(err, trace.ErrTruncated) {
		t.Fatalf("err = %v, want ErrTruncated", err)
	}
	if f == nil || len(f.Records) != 3 {
		t.Fatalf("truncated file gave %v", f)
	}
	if _, err := trace.ReadFile(strings.NewReader("hello, world")); !errors.Is(err, trace.ErrNotTraceFile) {
		t.Errorf("err = %v, want ErrNotTraceFile", err)
	}
}

func TestEventsUnknownToThisBuildPrintAsUnknown(t *testing.T) {
	tr, clk := newTracer(t, 1, 64)
	tr.EnableEvent(trace.SoftirqRaise)
	clk.ns.Store(1)
	tr.Emit(hdr(0), trace.SoftirqRaise, &trace.Args{1})
	data := record(t, tr)
	// Rename the event in the header (same length) as a later build might have it.
	data = bytes.Replace(data, []byte(`"irq:softirq_raise"`), []byte(`"irq:softirq_raize"`), -1)
	f, err := trace.ReadFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if f.Records[0].Event < trace.NumEvents {
		t.Fatalf("renamed event read as %v", f.Records[0].Event)
	}
	var out bytes.Buffer
	f.Report(&out)
	if !strings.Contains(out.String(), "[unknown event") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestFormatFileListsFieldsAndPrintFmt(t *testing.T) {
	want := "name: irq_handler_entry\nformat:\n\tfield:int irq;\n\tfield:__data_loc char[] name;\n\nprint fmt: \"irq=%d name=%s\"\n"
	if got := trace.FormatFile(trace.IRQHandlerEntry); got != want {
		t.Errorf("FormatFile =\n%s\nwant\n%s", got, want)
	}
	if got := trace.FormatFile(trace.SchedWakeup); !strings.Contains(got, "\tfield:char comm[16];\n") {
		t.Errorf("FormatFile(sched_wakeup) =\n%s", got)
	}
}
