package bench

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// BenchmarkQueueWorkSplit times the two halves of BenchmarkQueueWork's
// per-CPU row apart: the producer queueing a batch while the CPU's worker
// is held in a spinning item (no contention from the worker), then the
// worker running the batch with the producer idle.
func BenchmarkQueueWorkSplit(b *testing.B) {
	_, c, stop := bootWQ(b)
	defer stop()
	wq := workqueue.System(c.Kernel())
	const batch = 1000
	var done, target atomic.Int64
	var end struct {
		_ [64]byte
		atomic.Int64
		_ [64]byte
	}
	base := time.Now()
	fn := func(*kernel.Ctx, *workqueue.Work) {
		if done.Add(1) == target.Load() {
			end.Store(int64(time.Since(base)))
		}
	}
	ring := make([]wqItem, batch)
	for i := range ring {
		workqueue.Init(&ring[i].work, fn)
	}
	var hold, held atomic.Bool
	var blocker workqueue.Work
	workqueue.Init(&blocker, func(*kernel.Ctx, *workqueue.Work) {
		held.Store(true)
		for hold.Load() {
		}
		held.Store(false)
	})
	var prod, work time.Duration
	n := 0
	b.ResetTimer()
	for n < b.N {
		hold.Store(true)
		workqueue.QueueWork(c, wq, &blocker)
		for !held.Load() {
		}
		done.Store(0)
		end.Store(0)
		m := min(batch, b.N-n)
		target.Store(int64(m))
		t0 := time.Now()
		for i := range m {
			workqueue.QueueWork(c, wq, &ring[i].work)
		}
		t1 := time.Now()
		hold.Store(false)
		for end.Load() == 0 || held.Load() {
			runtime.Gosched()
		}
		prod += t1.Sub(t0)
		work += time.Duration(end.Load()) - t1.Sub(base)
		n += m
	}
	b.StopTimer()
	workqueue.FlushWork(c, &blocker)
	b.ReportMetric(float64(prod.Nanoseconds())/float64(b.N), "producer-ns/item")
	b.ReportMetric(float64(work.Nanoseconds())/float64(b.N), "worker-ns/item")
	b.ReportMetric(0, "ns/op")
}
