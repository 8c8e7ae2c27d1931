package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
)

// ring is how many works (kdefer) or channel slots (Go) are in flight at
// most: the producer reuses a work once it has run.
const ring = 256

// BenchmarkKthreadQueueWork measures kthread_queue_work throughput in real
// time: a user task queues b.N works,
// round-robin over a ring of 256 embedded works, to a kthread_worker whose
// thread runs each (a counter increment); ns/op is the time per work queued
// and run, the end flush included. Next to it, the Go alternative: a
// goroutine draining a buffered channel (capacity 256) of the same items
// and calling each one's function. A work still pending when its turn
// comes round again (the worker is 256 behind) makes the producer yield
// until it can be queued, as a full channel blocks the Go producer.
func BenchmarkKthreadQueueWork(b *testing.B) {
	b.Run("kdefer", func(b *testing.B) {
		k, err := kernel.Boot(kernel.Config{CPUs: 2, Quiet: true})
		if err != nil {
			b.Fatal(err)
		}
		defer k.Shutdown(context.Background())
		var ran atomic.Int64
		var works [ring]kthread.Work
		for i := range works {
			kthread.InitWork(&works[i], func(*kernel.Ctx, *kthread.Work) { ran.Add(1) })
		}
		n := b.N
		var w *kthread.Worker
		producer, err := k.CreateTask(kernel.TaskOpts{Comm: "producer", CPU: 0}, func(c *kernel.Ctx) int {
			for i := 0; i < n; i++ {
				for !kthread.QueueWork(c, w, &works[i%ring]) {
					kernel.CondResched(c) // the worker is a whole ring behind
				}
			}
			kthread.FlushWorker(c, w)
			return 0
		})
		if err != nil {
			b.Fatal(err)
		}
		setup, _ := k.Spawn("setup", func(c *kernel.Ctx) int {
			w, err = kthread.RunWorker(c, 0, "bench")
			return 0
		})
		<-setup.Exited()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		k.WakeUpProcess(producer)
		<-producer.Exited()
		b.StopTimer()
		if ran.Load() != int64(b.N) {
			b.Fatalf("ran %d works, queued %d", ran.Load(), b.N)
		}
	})
	b.Run("go-channel", func(b *testing.B) {
		type item struct{ fn func(*item) }
		var ran atomic.Int64
		var items [ring]item
		for i := range items {
			items[i].fn = func(*item) { ran.Add(1) }
		}
		ch := make(chan *item, ring)
		done := make(chan struct{})
		go func() {
			for it := range ch {
				it.fn(it)
			}
			close(done)
		}()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ch <- &items[i%ring]
		}
		close(ch)
		<-done
		b.StopTimer()
		if ran.Load() != int64(b.N) {
			b.Fatalf("ran %d items, sent %d", ran.Load(), b.N)
		}
	})
}

// BenchmarkKthreadQueueWorkPath measures the queue path alone: queueing a
// work to a worker without a thread (kthread_init_worker only, so nothing
// runs it and there is no wakeup) and taking it off again with
// kthread_cancel_work_sync, which finds it pending. It must allocate
// nothing.
func BenchmarkKthreadQueueWorkPath(b *testing.B) {
	k, err := kernel.Boot(kernel.Config{CPUs: 1, Quiet: true})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Shutdown(context.Background())
	c, err := k.Attach(context.Background(), "producer")
	if err != nil {
		b.Fatal(err)
	}
	defer kernel.Detach(c)
	var w kthread.Worker // no thread: kthread_init_worker only
	kthread.InitWorker(&w)
	var work kthread.Work
	kthread.InitWork(&work, func(*kernel.Ctx, *kthread.Work) {})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !kthread.QueueWork(c, &w, &work) || !kthread.CancelWorkSync(c, &work) {
			b.Fatal("queue/cancel failed")
		}
	}
}
