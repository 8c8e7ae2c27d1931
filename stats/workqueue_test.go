package stats_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/workqueue"
)

func nap(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 10) }
func nop(c *kernel.Ctx, w *workqueue.Work) {}

// wqRun: on an ordered workqueue "ord", a sleeps (msleep(10) at HZ=250
// wakes at the fourth tick: 16 ms) and b, queued behind it, starts 16 ms
// after its queueing, and e, queued behind them,
// is cancelled; on "events", c runs at once and a delayed item d is
// queued by its timer (flushed: at once). It returns the kernel and the
// snapshot after the run.
func wqRun(t *testing.T, cfg kernel.Config) (*kernel.Kernel, stats.Snapshot) {
	t.Helper()
	k := ktest.Boot(t, cfg)
	stats.Enable(k)
	var a, b, c, e workqueue.Work
	var d workqueue.DelayedWork
	workqueue.Init(&a, nap)
	workqueue.Init(&b, nop)
	workqueue.Init(&c, nop)
	workqueue.Init(&e, nop)
	workqueue.InitDelayed(&d, nop)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		ord, err := workqueue.AllocOrderedWorkqueue(ctx, "ord", 0)
		if err != nil {
			t.Fatal(err)
		}
		workqueue.QueueWork(ctx, ord, &a)
		workqueue.QueueWork(ctx, ord, &b)
		workqueue.ScheduleWork(ctx, &c)
		workqueue.ScheduleDelayedWork(ctx, &d, 5)
		// e waits behind a on ord; cancelled, it never runs.
		workqueue.QueueWork(ctx, ord, &e)
		workqueue.CancelWork(ctx, &e)
		workqueue.FlushWorkqueue(ctx, ord)
		workqueue.FlushDelayedWork(ctx, &d)
		workqueue.DestroyWorkqueue(ctx, ord)
	})
	ktest.Run(t, k, 100_000_000)
	return k, stats.Read(k)
}

func wqOf(s stats.Snapshot, name string) stats.WorkqueueStats {
	for _, w := range s.Workqueues {
		if w.Name == name {
			return w
		}
	}
	return stats.WorkqueueStats{}
}

func TestWorkqueueCountersAfterAKnownRun(t *testing.T) {
	_, s := wqRun(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true})
	if len(s.Workqueues) != 2 || s.Workqueues[0].Name != "events" || s.Workqueues[1].Name != "ord" {
		t.Fatalf("workqueues %+v, want events and ord, by name", s.Workqueues)
	}
	ev, ord := wqOf(s, "events"), wqOf(s, "ord")
	if ev.Queued != 2 || ev.Started != 2 || ev.Executed != 2 || ev.Running != 0 || ev.InFlight != 0 {
		t.Errorf("events: %+v, want c and d queued and executed", ev)
	}
	// e was cancelled while queued: no record says so, so it stays in
	// flight (see WorkqueueStats.InFlight).
	if ord.Queued != 3 || ord.Started != 2 || ord.Executed != 2 || ord.Running != 0 || ord.InFlight != 1 {
		t.Errorf("ord: %+v, want a, b, e queued, a and b executed, e in flight", ord)
	}
	// Queue-to-start: a and c at once, b after a's 16 ms sleep, d when
	// its timer queued it (at once).
	h := ord.Latency
	if h.Count != 2 || h.Sum != 0.016 || h.Max != 0.016 || h.Counts[0] != 1 || h.Counts[14] != 1 {
		t.Errorf("ord latency %+v, want 0 and 16 ms (bucket ≤ 16.384 ms)", h)
	}
	if ev.Latency.Count != 2 || ev.Latency.Max != 0 {
		t.Errorf("events latency %+v, want two at once", ev.Latency)
	}
}

func TestAWorkItemQueuedAgainAfterACancelLeavesFlight(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	stats.Enable(k)
	var a, e workqueue.Work
	workqueue.Init(&a, nap)
	workqueue.Init(&e, nop)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		ord, err := workqueue.AllocOrderedWorkqueue(ctx, "ord", 0)
		if err != nil {
			t.Fatal(err)
		}
		workqueue.QueueWork(ctx, ord, &a)
		workqueue.QueueWork(ctx, ord, &e)
		workqueue.CancelWork(ctx, &e)
		workqueue.QueueWork(ctx, ord, &e) // the earlier queueing never ran
		workqueue.FlushWorkqueue(ctx, ord)
		workqueue.DestroyWorkqueue(ctx, ord)
	})
	ktest.Run(t, k, 0)
	if ord := wqOf(stats.Read(k), "ord"); ord.Queued != 3 || ord.Executed != 2 || ord.InFlight != 0 || ord.Latency.Count != 2 {
		t.Errorf("ord: %+v, want 3 queued, 2 executed, none in flight", ord)
	}
}

func TestWorkqueueNamesBeyondTheBoundCountTogether(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	stats.Enable(k)
	n := stats.MaxWorkqueues + 6
	works := make([]workqueue.Work, n)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		for i := range works {
			wq, err := workqueue.AllocWorkqueue(ctx, fmt.Sprintf("wq%03d", i), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			workqueue.Init(&works[i], nop)
			workqueue.QueueWork(ctx, wq, &works[i])
			workqueue.DestroyWorkqueue(ctx, wq)
		}
	})
	ktest.Run(t, k, 0)
	s := stats.Read(k)
	if len(s.Workqueues) != stats.MaxWorkqueues+1 {
		t.Fatalf("%d workqueues counted apart, want %d and %s", len(s.Workqueues), stats.MaxWorkqueues, stats.OtherWorkqueues)
	}
	other := s.Workqueues[0] // "(" sorts before "w"
	if other.Name != stats.OtherWorkqueues || other.Queued != 6 || other.Executed != 6 {
		t.Errorf("the rest: %+v, want 6 queued and executed", other)
	}
	if last := s.Workqueues[len(s.Workqueues)-1]; last.Name != fmt.Sprintf("wq%03d", stats.MaxWorkqueues-1) || last.Executed != 1 {
		t.Errorf("last named: %+v", last)
	}
}

func TestDisableResetsTheWorkqueueGauges(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	stats.Enable(k)
	var a workqueue.Work
	workqueue.Init(&a, nop)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		ord, _ := workqueue.AllocOrderedWorkqueue(ctx, "ord", 0)
		workqueue.QueueWork(ctx, ord, &a)
		workqueue.CancelWork(ctx, &a)
		workqueue.DestroyWorkqueue(ctx, ord)
	})
	ktest.Run(t, k, 0)
	if ord := wqOf(stats.Read(k), "ord"); ord.InFlight != 1 {
		t.Fatalf("before Disable: %+v", ord)
	}
	stats.Disable(k)
	if ord := wqOf(stats.Read(k), "ord"); ord.InFlight != 0 || ord.Queued != 1 {
		t.Errorf("after Disable: %+v, want the gauge reset and the count kept", ord)
	}
}

// A Replay of a recording counts the workqueues as the live probes did.
func TestReplayCountsTheWorkqueuesAsTheProbesDid(t *testing.T) {
	k, live := wqRun(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true, TraceEvents: "workqueue"})
	recs, _ := k.Tracer().Snapshot()
	trace.SortRecords(recs)
	p, err := stats.NewReplay(2, jiffies.HZ250)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		p.Add(&recs[i])
	}
	if got := p.Snapshot(live.Now).Workqueues; len(got) != 2 || got[0].Name[0] != '#' {
		t.Errorf("without the string table: %+v, want workqueues named by id", got)
	}
	p.SetStrings(k.Tracer().String)
	got := p.Snapshot(live.Now).Workqueues
	if !reflect.DeepEqual(got, live.Workqueues) {
		t.Errorf("replay %+v\nlive %+v", got, live.Workqueues)
	}
}

// TestWorkqueueProbesUnderConcurrentQueueingCountEveryExecution: real
// time, -race: goroutines attached to a 2-CPU kernel queue their items
// again and again (each after its last run finished) on two workqueues,
// while another reads snapshots; every queueing is counted once, executed
// once, and nothing is left running or in flight. It asserts no timing.
func TestWorkqueueProbesUnderConcurrentQueueingCountEveryExecution(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	stats.Enable(k)
	const goroutines, items, rounds = 4, 16, 40
	main, err := k.Attach(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Detach(main)
	unb, err := workqueue.AllocWorkqueue(main, "unb", workqueue.Unbound, 0)
	if err != nil {
		t.Fatal(err)
	}
	wqs := []*workqueue.Workqueue{workqueue.System(k), unb}
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
				_ = stats.Read(k)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := k.Attach(context.Background(), fmt.Sprint("q", g))
			if err != nil {
				t.Error(err)
				return
			}
			defer kernel.Detach(c)
			ws := make([]workqueue.Work, items)
			for i := range ws {
				workqueue.Init(&ws[i], nop)
			}
			for r := range rounds {
				for i := range ws {
					workqueue.QueueWork(c, wqs[(g+i+r)%2], &ws[i])
				}
				for i := range ws {
					workqueue.FlushWork(c, &ws[i])
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	workqueue.DestroyWorkqueue(main, unb)
	s := stats.Read(k)
	var queued, executed uint64
	for _, w := range s.Workqueues {
		queued += w.Queued
		executed += w.Executed
		if w.Running != 0 || w.InFlight != 0 || w.Started != w.Executed || w.Latency.Count != w.Started {
			t.Errorf("%s: %+v, want nothing running or in flight", w.Name, w)
		}
	}
	if want := uint64(goroutines * items * rounds); queued != want || executed != want {
		t.Errorf("queued %d, executed %d; want %d each", queued, executed, want)
	}
}

// replayOf counts hand-made workqueue records of one item (work 0x40 on
// workqueue "w", string id 1): q queues it, s and e start and end it.
func replayOf(t *testing.T, seq string) stats.WorkqueueStats {
	t.Helper()
	p, err := stats.NewReplay(1, jiffies.HZ250)
	if err != nil {
		t.Fatal(err)
	}
	p.SetStrings(func(uint64) string { return "w" })
	ev := map[rune]trace.Event{'q': trace.WorkqueueQueueWork, 's': trace.WorkqueueExecuteStart, 'e': trace.WorkqueueExecuteEnd}
	for i, c := range seq {
		r := trace.Record{TS: int64(i) * 1000, Seq: uint64(i + 1), Event: ev[c], Args: trace.Args{0x40, 0, 1}}
		p.Add(&r)
	}
	return wqOf(p.Snapshot(int64(len(seq))*1000), "w")
}

// The worker clears PENDING before it records execute_start: a queueing
// from another CPU in between is recorded before the start of the earlier
// one (qqse, then the second execution se). Every execution is counted
// (the second without a latency), and nothing stays in flight; a true
// cancel (qqse alone) leaves nothing in flight either.
func TestARequeueRecordedBeforeTheStartItRacedWithIsNotLost(t *testing.T) {
	for _, tc := range []struct {
		seq                         string
		queued, executed, latencies uint64
	}{
		{"qqsese", 2, 2, 1},     // the race
		{"qqseqsese", 3, 3, 2},  // the race twice in a row
		{"qqse", 2, 1, 1},       // q, cancel, q, its run
		{"qsqe", 2, 1, 1},       // queued again while it runs; the second still pending
		{"qsqese", 2, 2, 2},     // … and run
		{"se", 0, 0, 0},         // queued before counting began
		{"qqsesese", 2, 2, 1},   // a stray start of nothing is not counted twice
		{"qseqqsese", 3, 3, 2},  // a race after a plain run
		{"qqseqqses", 4, 2, 2},  // the race twice, the second revival running
		{"qqsesqese", 3, 3, 2},  // the race, queued again while running, run
		{"qqsesqeqse", 4, 3, 2}, // the race, then a cancel
		{"qqseseqse", 3, 3, 2},  // the race, then a plain run later
	} {
		w := replayOf(t, tc.seq)
		running := int64(0)
		if strings.HasSuffix(tc.seq, "s") {
			running = 1
		}
		pending := int64(0)
		if tc.seq == "qsqe" {
			pending = 1
		}
		if w.Queued != tc.queued || w.Executed != tc.executed || w.Latency.Count != tc.latencies ||
			w.Running != running || w.InFlight != running+pending {
			t.Errorf("%s: %+v, want %d queued, %d executed, %d latencies, %d running, %d in flight",
				tc.seq, w, tc.queued, tc.executed, tc.latencies, running, running+pending)
		}
	}
}
