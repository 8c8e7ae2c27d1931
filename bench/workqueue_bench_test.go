package bench

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/alitto/pond/v2"
	"github.com/gammazero/workerpool"
	"github.com/panjf2000/ants/v2"
	"github.com/sourcegraph/conc/pool"
	k8swq "k8s.io/client-go/util/workqueue"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// The workqueue benchmarks put kdefer's queue_work next to the Go pools a
// user would pick instead (go-anchors.md, part B): a channel feeding
// GOMAXPROCS goroutines, alitto/pond v2, panjf2000/ants v2, the Kubernetes
// client-go workqueue, gammazero/workerpool, sourcegraph/conc and plain
// `go f()`. Every pool gets GOMAXPROCS workers; the task is trivial.

// wqItem is a work item embedded in a user struct.
type wqItem struct {
	work  workqueue.Work
	stamp int64
	lat   *latency
	done  *atomic.Int64
}

func wqItemFn(c *kernel.Ctx, w *workqueue.Work) {
	it := (*wqItem)(unsafe.Pointer(w))
	if it.lat != nil {
		it.lat.started(it.stamp)
	}
	it.done.Add(1)
}

// goItem is the Go pools' counterpart of wqItem: a struct per task with a
// prebuilt closure (no allocation per submission) that does what wqItemFn
// does, on its own memory.
type goItem struct {
	stamp int64
	lat   *latency
	done  *atomic.Int64
	run   func()
}

// goRing returns ringSize tasks counting their executions in done.
func goRing(done *atomic.Int64) []goItem {
	ring := make([]goItem, ringSize)
	for i := range ring {
		it := &ring[i]
		it.done = done
		it.run = func() {
			if it.lat != nil {
				it.lat.started(it.stamp)
			}
			it.done.Add(1)
		}
	}
	return ring
}

const ringSize = 4096

// bootWQ boots a real-time kernel with one CPU per core and attaches the
// benchmark's goroutine to it.
func bootWQ(b *testing.B) (*kernel.Kernel, *kernel.Ctx, func()) {
	k, err := kernel.Boot(kernel.Config{CPUs: runtime.GOMAXPROCS(0), HZ: 1000, Quiet: true})
	if err != nil {
		b.Fatal(err)
	}
	c, err := k.Attach(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return k, c, func() {
		kernel.Detach(c)
		k.Shutdown(context.Background())
	}
}

// kdeferWQ returns the workqueue of a kdefer variant: the per-CPU system
// workqueue or an unbound one with GOMAXPROCS max_active.
func kdeferWQ(b *testing.B, c *kernel.Ctx, mode string) *workqueue.Workqueue {
	if mode == "unbound" {
		wq, err := workqueue.AllocWorkqueue(c, "bench", workqueue.Unbound, runtime.GOMAXPROCS(0))
		if err != nil {
			b.Fatal(err)
		}
		return wq
	}
	return workqueue.System(c.Kernel())
}

// submitter is a Go pool under test: start makes a pool; submit queues one
// task; finish waits for everything submitted and releases the pool's
// goroutines. Each library's own way to wait is used where it has one.
type submitter struct {
	name  string
	start func() (submit func(f func()), finish func())
}

func submitters() []submitter {
	n := runtime.GOMAXPROCS(0)
	return []submitter{
		{"chan-pool", chanPool(n)},
		// A channel feeding one goroutine: what a per-CPU workqueue is,
		// one worker running at a time (concurrency management).
		{"chan-pool-1", chanPool(1)},
		{"pond", func() (func(func()), func()) {
			p := pond.NewPool(n)
			return func(f func()) { p.Go(f) }, p.StopAndWait
		}},
		{"ants", func() (func(func()), func()) {
			p, err := ants.NewPool(n)
			if err != nil {
				panic(err)
			}
			var wg sync.WaitGroup
			return func(f func()) {
					wg.Add(1)
					p.Submit(func() { f(); wg.Done() })
				}, func() {
					wg.Wait()
					p.ReleaseTimeout(10 * time.Second)
				}
		}},
		{"workerpool", func() (func(func()), func()) {
			p := workerpool.New(n)
			return p.Submit, p.StopWait
		}},
		{"conc", func() (func(func()), func()) {
			p := pool.New().WithMaxGoroutines(n)
			return p.Go, p.Wait
		}},
		{"go", func() (func(func()), func()) {
			var wg sync.WaitGroup
			return func(f func()) {
				wg.Add(1)
				go func() { f(); wg.Done() }()
			}, wg.Wait
		}},
	}
}

// chanPool is a channel (1024 slots) feeding n goroutines.
func chanPool(n int) func() (func(func()), func()) {
	return func() (func(func()), func()) {
		ch := make(chan func(), 1024)
		var wg, workers sync.WaitGroup
		for range n {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for f := range ch {
					f()
					wg.Done()
				}
			}()
		}
		return func(f func()) { wg.Add(1); ch <- f }, func() { wg.Wait(); close(ch); workers.Wait() }
	}
}

// BenchmarkQueueWork: one goroutine submits b.N trivial tasks and waits for
// all of them to have run; ns/op is per task. Every implementation gets
// the same ring of 4096 distinct tasks, reused as b.N runs, each doing the
// same work on its own memory (wqItemFn, goItem.run). kdefer queues work
// items embedded in a user struct (a slot still pending is waited for, as
// a full channel makes its sender wait) on the per-CPU system workqueue —
// concurrency managed, so one worker runs the items the producer's CPU
// queues — and on an unbound workqueue with max_active GOMAXPROCS. The Go
// pools get the slot's prebuilt closure. The client-go workqueue has no
// workers: GOMAXPROCS loops of Get/Done drain it, running the task of the
// key they got.
func BenchmarkQueueWork(b *testing.B) {
	for _, mode := range []string{"percpu", "unbound"} {
		b.Run("kdefer/"+mode, func(b *testing.B) {
			_, c, stop := bootWQ(b)
			defer stop()
			wq := kdeferWQ(b, c, mode)
			var done atomic.Int64
			ring := make([]wqItem, ringSize)
			for i := range ring {
				workqueue.Init(&ring[i].work, wqItemFn)
				ring[i].done = &done
			}
			workqueue.QueueWork(c, wq, &ring[0].work) // start the pool's workers
			workqueue.FlushWork(c, &ring[0].work)
			done.Store(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := &ring[i&(ringSize-1)].work
				for !workqueue.QueueWork(c, wq, w) {
					// The ring is full: sleep until half of it has run,
					// as a sender sleeps on a full channel.
					workqueue.FlushWork(c, &ring[(i+ringSize/2-1)&(ringSize-1)].work)
				}
			}
			workqueue.FlushWorkqueue(c, wq)
			b.StopTimer()
			if done.Load() != int64(b.N) {
				b.Fatalf("%d of %d items ran", done.Load(), b.N)
			}
		})
	}
	for _, s := range submitters() {
		b.Run(s.name, func(b *testing.B) {
			submit, finish := s.start()
			var ran atomic.Int64
			ring := goRing(&ran)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				submit(ring[i&(ringSize-1)].run)
			}
			finish()
			b.StopTimer()
			if ran.Load() != int64(b.N) {
				b.Fatalf("%d of %d tasks ran", ran.Load(), b.N)
			}
		})
	}
	b.Run("floor/pending-1worker", func(b *testing.B) { benchPendingFloor(b, false) })
	b.Run("floor/locked-1worker", func(b *testing.B) { benchPendingFloor(b, true) })
	b.Run("client-go", func(b *testing.B) {
		q := k8swq.NewTyped[int]()
		var ran atomic.Int64
		ring := goRing(&ran)
		var workers sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for {
					i, shutdown := q.Get()
					if shutdown {
						return
					}
					ring[i&(ringSize-1)].run()
					q.Done(i)
				}
			}()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			q.Add(i) // distinct keys: no dedup
		}
		for ran.Load() < int64(b.N) {
			runtime.Gosched()
		}
		b.StopTimer()
		q.ShutDown()
		workers.Wait()
	})
}

// floorItem is a task with the one piece of state kdefer's hand-off
// cannot do without: a PENDING word that the producer sets and the worker
// clears, each with an atomic read-modify-write, on the task's own memory.
type floorItem struct {
	pending atomic.Uint32
	next    *floorItem
	run     func()
}

// benchPendingFloor is the floor of kdefer's per-CPU row: the same ring of
// tasks handed from the producer to one worker goroutine with only what
// queue_work and the worker must do to every item — PENDING set (a
// test-and-set), a push on a lock-free chain (a CAS), PENDING cleared (a
// swap) before the task runs — and nothing else: no pool lock, no flush
// colors, no max_active, no busy list, no kernel. When the ring is full the
// producer waits for the slot half a ring ahead, as the kdefer row does;
// an idle worker polls its chain, yielding the processor.
//
// With locked, the worker also takes and drops a mutex (the pool lock)
// around each item's start, as the kernel's worker_thread does: it holds
// pool->lock except while a work function runs, so that each item costs
// it a lock and an unlock besides PENDING's swap. That row is the floor of
// any worker that keeps the kernel's locking, whatever else it leaves out.
func benchPendingFloor(b *testing.B, locked bool) {
	var ran atomic.Int64
	tasks := goRing(&ran)
	ring := make([]floorItem, ringSize)
	for i := range ring {
		ring[i].run = tasks[i].run
	}
	var head atomic.Pointer[floorItem]
	var stop atomic.Bool
	var mu sync.Mutex
	var worker sync.WaitGroup
	worker.Add(1)
	go func() {
		defer worker.Done()
		for {
			h := head.Swap(nil)
			if h == nil {
				if stop.Load() {
					return
				}
				runtime.Gosched()
				continue
			}
			var fifo *floorItem
			for h != nil {
				next := h.next
				h.next = fifo
				fifo, h = h, next
			}
			for x := fifo; x != nil; {
				next := x.next
				x.next = nil
				if locked {
					mu.Lock()
					x.pending.Swap(0)
					mu.Unlock()
				} else {
					x.pending.Swap(0)
				}
				x.run()
				x = next
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := &ring[i&(ringSize-1)]
		for x.pending.Swap(1) != 0 {
			for y := &ring[(i+ringSize/2-1)&(ringSize-1)]; y.pending.Load() != 0; {
				runtime.Gosched()
			}
		}
		for {
			h := head.Load()
			x.next = h
			if head.CompareAndSwap(h, x) {
				break
			}
		}
	}
	for ran.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	stop.Store(true)
	worker.Wait()
}

// latency records queue-to-start latencies (exact samples, sorted for
// p50/p99), on Go's monotonic clock for every library.
type latency struct {
	base    time.Time
	samples []int64
	n       atomic.Int64
}

func newLatency(n int) *latency { return &latency{base: time.Now(), samples: make([]int64, n)} }

func (l *latency) now() int64 { return int64(time.Since(l.base)) }

// started records the latency of a task that has just started. The clock
// is read first: the sample's slot comes from a counter on the line of
// l.base, which the producer reads for its stamps, so that taking the slot
// first would add a cache-line transfer between cores to the latency of
// every pool whose tasks start on another processor than their producer's.
func (l *latency) started(stamp int64) {
	now := l.now()
	i := l.n.Add(1) - 1
	if int(i) < len(l.samples) {
		l.samples[i] = now - stamp
	}
}

func (l *latency) report(b *testing.B) {
	b.StopTimer()
	n := min(int(l.n.Load()), len(l.samples))
	if n == 0 {
		return
	}
	v := slices.Clone(l.samples[:n])
	slices.Sort(v)
	b.ReportMetric(float64(v[n/2]), "p50-ns")
	b.ReportMetric(float64(v[min(n*99/100, n-1)]), "p99-ns")
	b.ReportMetric(0, "ns/op") // the time per op is not the figure here
}

// BenchmarkQueueToStart measures the latency from queueing a trivial task
// to the start of its execution, one task at a time (the producer waits
// until the task has started before it queues the next): what an idle or
// lightly loaded pool adds to a request. p50-ns and p99-ns are the figures.
func BenchmarkQueueToStart(b *testing.B) {
	for _, mode := range []string{"percpu", "unbound"} {
		b.Run("kdefer/"+mode, func(b *testing.B) {
			_, c, stop := bootWQ(b)
			defer stop()
			wq := kdeferWQ(b, c, mode)
			lat := newLatency(b.N)
			var done atomic.Int64
			var it wqItem
			workqueue.Init(&it.work, wqItemFn)
			it.done = &done
			workqueue.QueueWork(c, wq, &it.work)
			workqueue.FlushWork(c, &it.work)
			it.lat = lat
			done.Store(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				it.stamp = lat.now()
				workqueue.QueueWork(c, wq, &it.work)
				for done.Load() <= int64(i) {
					runtime.Gosched()
				}
			}
			b.StopTimer()
			lat.report(b)
		})
	}
	b.Run("floor/poll-1worker", benchPollFloorLatency)
	for _, s := range submitters() {
		b.Run(s.name, func(b *testing.B) {
			submit, finish := s.start()
			lat := newLatency(b.N)
			var stamp int64
			var done atomic.Int64
			f := func() { lat.started(stamp); done.Add(1) }
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				stamp = lat.now()
				submit(f)
				for done.Load() <= int64(i) {
					runtime.Gosched()
				}
			}
			finish()
			b.StopTimer()
			lat.report(b)
		})
	}
}

// benchPollFloorLatency is the floor of kdefer's per-CPU latency row when
// its idle worker polls (see workqueue/handoff.go): one task handed to a
// worker goroutine that never stops polling, with only what queue_work and
// the worker must do — PENDING set with a test-and-set, a push on a
// lock-free chain, the chain taken with a swap, PENDING cleared with a swap
// before the task runs — and nothing else (no pool lock, no accounting, no
// kernel, no timeout on the poll). Its p50 and p99 are what a hand-off
// between two cores costs this machine; the channel pool's task starts on
// its producer's processor instead (the Go scheduler runs the woken
// receiver when the producer yields).
func benchPollFloorLatency(b *testing.B) {
	lat := newLatency(b.N)
	var done atomic.Int64
	var stamp int64
	var x floorItem
	x.run = func() { lat.started(stamp); done.Add(1) }
	var head atomic.Pointer[floorItem]
	var stop atomic.Bool
	var worker sync.WaitGroup
	worker.Add(1)
	go func() {
		defer worker.Done()
		for !stop.Load() {
			if head.Load() == nil {
				continue
			}
			for h := head.Swap(nil); h != nil; {
				next := h.next
				h.next = nil
				h.pending.Swap(0)
				h.run()
				h = next
			}
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stamp = lat.now()
		if x.pending.Swap(1) == 0 {
			for {
				h := head.Load()
				x.next = h
				if head.CompareAndSwap(h, &x) {
					break
				}
			}
		}
		for done.Load() <= int64(i) {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	stop.Store(true)
	worker.Wait()
	lat.report(b)
}

// delayMin and delayMax bound the delays of the delayed-work benchmarks:
// 10 to 20 minutes, so that nothing fires during a run.
const (
	delayMin = 10 * time.Minute
	delayMax = 20 * time.Minute
)

// BenchmarkDelayedWork arms delayed tasks 10–20 minutes out, with up to
// 65536 of them pending: kdefer's mod_delayed_work on embedded items (the
// first round arms idle items, later rounds move a pending item's timer),
// client-go's DelayingQueue.AddAfter (which can neither cancel nor move an
// entry: each op adds one), and a time.AfterFunc that would submit to a
// pool (the previous timer of the slot is stopped, so that as many stay
// pending).
func BenchmarkDelayedWork(b *testing.B) {
	const pending = 1 << 16
	b.Run("kdefer/mod_delayed_work", func(b *testing.B) {
		k, c, stop := bootWQ(b)
		defer stop()
		wq := workqueue.System(k)
		ring := make([]workqueue.DelayedWork, pending)
		for i := range ring {
			workqueue.InitDelayed(&ring[i], func(*kernel.Ctx, *workqueue.Work) {})
		}
		hz := uint64(k.HZ())
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d := uint64(delayMin.Seconds())*hz + rng.Uint64N(uint64((delayMax-delayMin).Seconds())*hz)
			workqueue.ModDelayedWork(c, wq, &ring[i&(pending-1)], d)
		}
		b.StopTimer()
		for i := range ring {
			workqueue.CancelDelayedWork(c, &ring[i])
		}
	})
	b.Run("client-go/AddAfter", func(b *testing.B) {
		q := k8swq.NewTypedDelayingQueue[int]()
		defer q.ShutDown()
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			q.AddAfter(i&(pending-1), delayMin+time.Duration(rng.Int64N(int64(delayMax-delayMin))))
		}
	})
	b.Run("AfterFunc+pool", func(b *testing.B) {
		p := pond.NewPool(runtime.GOMAXPROCS(0))
		defer p.StopAndWait()
		ring := make([]*time.Timer, pending)
		task := func() {}
		submit := func() { p.Go(task) }
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			slot := &ring[i&(pending-1)]
			if *slot != nil {
				(*slot).Stop()
			}
			*slot = time.AfterFunc(delayMin+time.Duration(rng.Int64N(int64(delayMax-delayMin))), submit)
		}
		b.StopTimer()
		for _, t := range ring {
			if t != nil {
				t.Stop()
			}
		}
	})
}

// BenchmarkQueueWorkPath measures __queue_work alone, with no worker
// involved: an item is queued on a frozen freezable workqueue (so it waits
// on the inactive list and nothing is woken) and taken off again with
// cancel_work, which finds it pending. "off" runs with the workqueue
// tracepoints disabled, where each costs one load and a branch; "traced"
// with them enabled (queue_work records one event per op). Both must
// allocate nothing.
func BenchmarkQueueWorkPath(b *testing.B) {
	for _, tc := range []struct{ name, events string }{{"off", ""}, {"traced", "workqueue"}} {
		b.Run(tc.name, func(b *testing.B) {
			k, err := kernel.Boot(kernel.Config{CPUs: 1, Quiet: true, TraceEvents: tc.events})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Shutdown(context.Background())
			c, err := k.Attach(context.Background(), "producer")
			if err != nil {
				b.Fatal(err)
			}
			defer kernel.Detach(c)
			wq := workqueue.SystemFreezable(k)
			workqueue.FreezeWorkqueuesBegin(k)
			defer workqueue.ThawWorkqueues(k)
			var w workqueue.Work
			workqueue.Init(&w, func(*kernel.Ctx, *workqueue.Work) {})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !workqueue.QueueWork(c, wq, &w) || !workqueue.CancelWork(c, &w) {
					b.Fatal("queue/cancel failed")
				}
			}
		})
	}
}
