package bench

import (
	"context"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/workqueue"
)

// ticker is a timer that re-arms itself one jiffy ahead until it has run
// left times: each run is one TIMER softirq with its callback, the
// workload of a periodic module.
type ticker struct {
	t    timer.Timer
	left int
}

func (tk *ticker) fire(c *kernel.Ctx, t *timer.Timer) {
	if tk.left--; tk.left > 0 {
		timer.Mod(c, t, c.Jiffies()+1)
	}
}

// runTicks boots a virtual 1-CPU kernel, lets setup configure its
// tracing, and runs n periods of a ticker, calling between (if setup
// returns one) every 256 periods; it returns the records the tracer took.
func runTicks(b *testing.B, n int, setup func(k *kernel.Kernel) (between func())) uint64 {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: benchHZ, Quiet: true, TraceBufferRecords: 1 << 12})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Shutdown(context.Background())
	var between func()
	if setup != nil {
		between = setup(k)
	}
	tk := &ticker{left: n}
	if _, err := k.RunTask(context.Background(), "arm", func(c *kernel.Ctx) int {
		timer.Setup(c, &tk.t, tk.fire, 0)
		timer.Mod(c, &tk.t, c.Jiffies()+1)
		return 0
	}); err != nil {
		b.Fatal(err)
	}
	for tk.left > 0 {
		if err := k.Run(context.Background(), 256*time.Second/benchHZ); err != nil {
			b.Fatal(err)
		}
		if between != nil {
			between()
		}
	}
	var written uint64
	for _, s := range k.Tracer().Stats() {
		written += s.Written
	}
	return written
}

// BenchmarkTracingCost: one period of a self-re-arming timer in a
// virtual kernel (tick, TIMER softirq, callback, re-arm), with tracing
// off, with every event recorded into the rings, with the stats probes
// attached, and with every event recorded and drained into a trace file
// (to io.Discard, every 256 periods). events/op is the number of records a period takes
// when every event is on: the difference of ns/op over it is the cost of
// one event.
func BenchmarkTracingCost(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(k *kernel.Kernel) func()
	}{
		{"off", nil},
		{"all-events", func(k *kernel.Kernel) func() { k.Tracer().Enable("all"); return k.Tracer().Clear }},
		{"stats-probes", func(k *kernel.Kernel) func() { stats.Enable(k); return nil }},
		{"all-events-recorded", func(k *kernel.Kernel) func() {
			k.Tracer().Enable("all")
			rec, err := trace.NewRecorder(io.Discard, k.Tracer(), trace.FileHeader{})
			if err != nil {
				b.Fatal(err)
			}
			return func() { rec.Drain() }
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			written := runTicks(b, b.N, tc.setup)
			if written > 0 {
				b.ReportMetric(float64(written)/float64(b.N), "events/op")
			}
		})
	}
}

// BenchmarkRecorderDrain: draining full rings into a trace file, per
// record (the cost a recording adds beside the tracepoints themselves).
func BenchmarkRecorderDrain(b *testing.B) {
	tr, err := trace.New(trace.Options{CPUs: 2, BufferRecords: 1 << 12, Clock: func() int64 { return 1 }})
	if err != nil {
		b.Fatal(err)
	}
	tr.EnableEvent(trace.TimerStart)
	rec, err := trace.NewRecorder(io.Discard, tr, trace.FileHeader{})
	if err != nil {
		b.Fatal(err)
	}
	h := &trace.Header{CPU: 0, PID: 1, Comm: "bench"}
	a := &trace.Args{1, trace.FuncPC(noop), 100, 104, 90, 0}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.CPU = i & 1
		tr.Emit(h, trace.TimerStart, a)
		if i%1024 == 1023 {
			rec.Drain()
		}
	}
	rec.Close()
}

// TestRecordingMemoryIsBoundedByTheRings records ten minutes of kernel
// time of a module that fires a timer every jiffy (150 000 periods at
// HZ=250, about a million records) in virtual time, draining as a real
// recording does, and checks that the Go heap in use stays within the
// rings plus a fixed allowance: a recording's memory does not grow with
// its length. Virtual time produces the records of ten real minutes in
// about a second; the records, not the clock, are what take memory.
func TestRecordingMemoryIsBoundedByTheRings(t *testing.T) {
	if testing.Short() {
		t.Skip("records a million events")
	}
	const ring = 1 << 14
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: benchHZ, Quiet: true, TraceEvents: "all", TraceBufferRecords: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown(context.Background())
	rec, err := trace.NewRecorder(io.Discard, k.Tracer(), trace.FileHeader{})
	if err != nil {
		t.Fatal(err)
	}
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	tk := &ticker{left: 10 * 60 * benchHZ}
	if _, err := k.RunTask(context.Background(), "arm", func(c *kernel.Ctx) int {
		timer.Setup(c, &tk.t, tk.fire, 0)
		timer.Mod(c, &tk.t, c.Jiffies()+1)
		return 0
	}); err != nil {
		t.Fatal(err)
	}
	var peak uint64
	for tk.left > 0 {
		if err := k.Run(context.Background(), 2*time.Second); err != nil { // 500 periods, ~3500 records
			t.Fatal(err)
		}
		if _, err := rec.Drain(); err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	rec.Close()
	if lost := rec.Lost(); lost[0] != 0 {
		t.Errorf("%d records lost", lost[0])
	}
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("%d records; heap in use grew by at most %d KiB over %d KiB at the start", rec.Records(), grew>>10, base.HeapInuse>>10)
	if rec.Records() < 1_000_000 {
		t.Errorf("only %d records", rec.Records())
	}
	if grew > 8<<20 {
		t.Errorf("heap in use grew by %d MiB while recording", grew>>20)
	}
}

// BenchmarkWorkqueueStatsCost: BenchmarkQueueWork's kdefer/percpu loop
// (one goroutine queues b.N trivial items embedded in a ring of 4096 on the
// per-CPU system workqueue and waits for them) with the workqueue
// tracepoints off, with empty probes attached to the three events of an
// item (queue_work, execute_start, execute_end: the cost of the
// tracepoints themselves), and with the stats probes, which also follow
// each item from its queueing to its execution.
func BenchmarkWorkqueueStatsCost(b *testing.B) {
	for _, mode := range []string{"off", "empty-probes", "stats-probes"} {
		on := mode == "stats-probes"
		b.Run(mode, func(b *testing.B) {
			k, c, stop := bootWQ(b)
			defer stop()
			wq := workqueue.System(k)
			var done atomic.Int64
			ring := make([]wqItem, ringSize)
			for i := range ring {
				workqueue.Init(&ring[i].work, wqItemFn)
				ring[i].done = &done
			}
			workqueue.QueueWork(c, wq, &ring[0].work)
			workqueue.FlushWork(c, &ring[0].work)
			done.Store(0)
			switch mode {
			case "empty-probes":
				for _, e := range []trace.Event{trace.WorkqueueQueueWork, trace.WorkqueueExecuteStart, trace.WorkqueueExecuteEnd} {
					k.Tracer().AttachProbe(e, func(*trace.Record) {})
				}
			case "stats-probes":
				stats.Enable(k)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := &ring[i&(ringSize-1)].work
				for !workqueue.QueueWork(c, wq, w) {
					workqueue.FlushWork(c, &ring[(i+ringSize/2-1)&(ringSize-1)].work)
				}
			}
			workqueue.FlushWorkqueue(c, wq)
			b.StopTimer()
			if done.Load() != int64(b.N) {
				b.Fatalf("%d of %d items ran", done.Load(), b.N)
			}
			if on {
				var ex uint64
				for _, w := range stats.Read(k).Workqueues {
					ex += w.Executed
				}
				if ex != uint64(b.N) {
					b.Fatalf("stats counted %d of %d executions", ex, b.N)
				}
			}
		})
	}
}
