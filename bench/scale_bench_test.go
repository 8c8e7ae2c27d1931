package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// BenchmarkArmCancelScaling arms and cancels timers from 1, 2, 4, 8 and 16
// goroutines, each running as code on its own CPU of a real-time kernel
// (its own per-CPU timer base), next to time.AfterFunc+Stop from as many
// goroutines. ns/op is wall time per operation over all goroutines, so
// throughput is 1e9/ns_op; it should grow with cores.
func BenchmarkArmCancelScaling(b *testing.B) {
	for _, g := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("kdefer/goroutines=%d", g), func(b *testing.B) {
			k, err := kernel.Boot(kernel.Config{CPUs: g, HZ: benchHZ, Quiet: true})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Shutdown(context.Background())
			tj := uint64(k.HZ()) * 30
			per := b.N/g + 1
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for w := 0; w < g; w++ {
				wg.Add(1)
				go func(cpu int) {
					defer wg.Done()
					c := k.IdleCtx(cpu)
					op := make([]timer.Timer, 256)
					for i := range op {
						timer.Setup(c, &op[i], noop, 0)
					}
					for i := 0; i < per; i++ {
						t := &op[i&255]
						timer.Mod(c, t, c.Jiffies()+tj)
						timer.Delete(t)
					}
				}(w)
			}
			wg.Wait()
		})
		b.Run(fmt.Sprintf("go/goroutines=%d", g), func(b *testing.B) {
			per := b.N/g + 1
			var wg sync.WaitGroup
			f := func() {}
			b.ReportAllocs()
			b.ResetTimer()
			for w := 0; w < g; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						time.AfterFunc(timeout30s, f).Stop()
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkMemoryPerPendingTimer reports the bytes allocated per pending
// timer: kdefer's Timer is a value embedded in the user's struct (here a
// slice of them); a Go timer is a separate allocation plus the pointer the
// user keeps.
func BenchmarkMemoryPerPendingTimer(b *testing.B) {
	const n = 100_000
	measure := func(b *testing.B, arm func() func()) {
		var total float64
		for i := 0; i < b.N; i++ {
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cleanup := arm()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			total += float64(m1.TotalAlloc-m0.TotalAlloc) / n
			cleanup()
		}
		b.ReportMetric(total/float64(b.N), "bytes/timer")
	}
	b.Run("kdefer/Timer", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		b.ReportMetric(float64(unsafe.Sizeof(timer.Timer{})), "sizeof")
		measure(b, func() func() {
			ts := make([]timer.Timer, n)
			for i := range ts {
				timer.Setup(c, &ts[i], noop, 0)
				timer.Mod(c, &ts[i], c.Jiffies()+uint64(k.HZ())*30)
			}
			return func() {
				for i := range ts {
					timer.Delete(&ts[i])
				}
				runtime.KeepAlive(ts)
			}
		})
	})
	b.Run("go/AfterFunc", func(b *testing.B) {
		measure(b, func() func() {
			ts := make([]*time.Timer, n)
			f := func() {}
			for i := range ts {
				ts[i] = time.AfterFunc(timeout30s, f)
			}
			return func() {
				for _, t := range ts {
					t.Stop()
				}
			}
		})
	})
}
