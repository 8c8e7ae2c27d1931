package bench

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/tasklet"
)

// BenchmarkTaskletScheduleToCallback: a producer defers work to softirq
// context and waits for it to run, over and over: ns/op is the round trip
// (tasklet_schedule → TASKLET_SOFTIRQ in ksoftirqd → callback), and the
// p50-ns / p99-ns metrics are the schedule-to-callback latencies. The Go
// alternative is a goroutine woken through a channel. Real time, 2 CPUs;
// the producer is an attached goroutine on CPU 0 or 1.
func BenchmarkTaskletScheduleToCallback(b *testing.B) {
	b.Run("kdefer/tasklet_schedule", func(b *testing.B) {
		k, err := kernel.Boot(kernel.Config{CPUs: 2, HZ: benchHZ, Quiet: true})
		if err != nil {
			b.Fatal(err)
		}
		defer k.Shutdown(context.Background())
		c, err := k.Attach(context.Background(), "producer")
		if err != nil {
			b.Fatal(err)
		}
		defer kernel.Detach(c)
		var ran atomic.Int64
		var at atomic.Int64
		tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) {
			at.Store(c.Kernel().Now())
			ran.Add(1)
		})
		lat := make([]int64, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := int64(1); i <= int64(b.N); i++ {
			t0 := k.Now()
			tasklet.Schedule(c, tl)
			for ran.Load() != i {
			}
			lat = append(lat, at.Load()-t0)
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
	b.Run("go/channel", func(b *testing.B) {
		ch := make(chan int64, 1)
		var ran atomic.Int64
		var at atomic.Int64
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			for range ch {
				at.Store(int64(time.Since(start)))
				ran.Add(1)
			}
		}()
		lat := make([]int64, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := int64(1); i <= int64(b.N); i++ {
			t0 := int64(time.Since(start))
			ch <- i
			for ran.Load() != i {
			}
			lat = append(lat, at.Load()-t0)
		}
		b.StopTimer()
		close(ch)
		<-done
		reportLatency(b, lat)
	})
}

// BenchmarkTaskletScheduleThroughput: schedules from process context of a
// tasklet that is already scheduled (the SCHED test-and-set, nothing else)
// and, every 64, one that runs: the cost a driver's interrupt path pays per
// event, against a non-blocking send to a buffered channel drained by a
// goroutine.
func BenchmarkTaskletScheduleThroughput(b *testing.B) {
	b.Run("kdefer/tasklet_schedule", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		tasklet.InitKernel(k)
		n := 0
		tl := tasklet.Declare(func(*kernel.Ctx, *tasklet.Tasklet) { n++ })
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i&63 == 0 {
				kernel.LocalBHDisable(c)
			}
			tasklet.Schedule(c, tl)
			if i&63 == 63 {
				kernel.LocalBHEnable(c) // runs it, once
			}
		}
		kernel.LocalBHEnable(c)
	})
	b.Run("go/buffered-channel", func(b *testing.B) {
		ch := make(chan struct{}, 64)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		b.StopTimer()
		close(ch)
		<-done
	})
}

func reportLatency(b *testing.B, lat []int64) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}
