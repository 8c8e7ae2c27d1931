package bench

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

const (
	nPending     = 1_000_000
	opsPerJiffy  = 1000
	timeout30s   = 30 * time.Second
	benchHZ      = 250
	randPoolSize = 1 << 16
	opPool       = 1024 // timers an arm-then-cancel benchmark cycles through
)

// virtKernel boots a one-CPU virtual-time kernel; the benchmark goroutine is
// its driver and uses swapper/0's context, as code running on CPU 0.
func virtKernel(b *testing.B, cpus int) (*kernel.Kernel, *kernel.Ctx) {
	b.Helper()
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: cpus, HZ: benchHZ, Quiet: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Shutdown(context.Background()) })
	return k, k.IdleCtx(0)
}

// realKernel boots a one-CPU real-time kernel; the benchmark goroutine uses
// swapper/0's context, as code running on CPU 0. The caller shuts it down
// before it returns (defer), so that the kernels of the b.N ramp-up (each
// with a CPU goroutine) do not pile up until the benchmark ends.
func realKernel(b *testing.B) *kernel.Kernel {
	b.Helper()
	k, err := kernel.Boot(kernel.Config{CPUs: 1, HZ: benchHZ, Quiet: true})
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// settle finishes the garbage collection that a benchmark's setup (a
// million timers) may have started, so that its write barriers and marking
// do not run inside the timed loop, then starts timing with allocation
// reporting.
func settle(b *testing.B) {
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
}

// randIdx is a precomputed pool of random timer indexes so that the
// benchmarks measure the timers, not the random number generator.
func randIdx(n int) []int32 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]int32, randPoolSize)
	for i := range out {
		out[i] = int32(r.IntN(n))
	}
	return out
}

func noop(*kernel.Ctx, *timer.Timer) {}

// BenchmarkRearmRandomOf1M: a server re-arming connection timeouts. One
// million timers pend with a 30 s timeout; each op re-arms a random one to
// now + 30 s; time advances one jiffy every 1000 ops.
func BenchmarkRearmRandomOf1M(b *testing.B) {
	b.Run("kdefer/mod_timer", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		tj := uint64(k.HZ()) * 30
		timers := make([]timer.Timer, nPending)
		for i := range timers {
			timer.Setup(c, &timers[i], noop, 0)
			timer.Mod(c, &timers[i], c.Jiffies()+tj)
		}
		idx := randIdx(nPending)
		tick := time.Duration(k.TickNsec())
		ctx := context.Background()
		settle(b)
		for i := 0; i < b.N; i++ {
			if i%opsPerJiffy == opsPerJiffy-1 {
				k.Run(ctx, tick)
			}
			timer.Mod(c, &timers[idx[i%randPoolSize]], c.Jiffies()+tj)
		}
		b.StopTimer()
		for i := range timers {
			timer.Delete(&timers[i])
		}
	})
	b.Run("go/Timer.Reset", func(b *testing.B) {
		timers := make([]*time.Timer, nPending)
		for i := range timers {
			timers[i] = time.AfterFunc(timeout30s, func() {})
		}
		idx := randIdx(nPending)
		settle(b)
		for i := 0; i < b.N; i++ {
			timers[idx[i%randPoolSize]].Reset(timeout30s)
		}
		b.StopTimer()
		for _, t := range timers {
			t.Stop()
		}
	})
}

// BenchmarkRearmHot re-arms one timer over and over.
func BenchmarkRearmHot(b *testing.B) {
	b.Run("kdefer/mod_timer", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		var t timer.Timer
		timer.Setup(c, &t, noop, 0)
		tj := uint64(k.HZ()) * 30
		ctx := context.Background()
		tick := time.Duration(k.TickNsec())
		settle(b)
		for i := 0; i < b.N; i++ {
			if i%opsPerJiffy == opsPerJiffy-1 {
				k.Run(ctx, tick)
			}
			timer.Mod(c, &t, c.Jiffies()+tj)
		}
		b.StopTimer()
		timer.Delete(&t)
	})
	// The same in real time, as a program would run it: every op reads
	// the clock for jiffies (c.Jiffies), and mod_timer's same-expiry
	// shortcut returns before reading it again.
	b.Run("kdefer/mod_timer-realtime", func(b *testing.B) {
		k := realKernel(b)
		defer k.Shutdown(context.Background())
		c := k.IdleCtx(0)
		var t timer.Timer
		timer.Setup(c, &t, noop, 0)
		tj := uint64(k.HZ()) * 30
		settle(b)
		for i := 0; i < b.N; i++ {
			timer.Mod(c, &t, c.Jiffies()+tj)
		}
		b.StopTimer()
		timer.Delete(&t)
	})
	b.Run("go/Timer.Reset", func(b *testing.B) {
		t := time.AfterFunc(timeout30s, func() {})
		settle(b)
		for i := 0; i < b.N; i++ {
			t.Reset(timeout30s)
		}
		b.StopTimer()
		t.Stop()
	})
}

// BenchmarkArmCancelWith1MPending: the timeout pattern — arm a timer for an
// operation, cancel it when the operation completes — with one million
// other timers pending.
func BenchmarkArmCancelWith1MPending(b *testing.B) {
	b.Run("kdefer/mod_timer+timer_delete", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		tj := uint64(k.HZ()) * 30
		timers := make([]timer.Timer, nPending)
		for i := range timers {
			timer.Setup(c, &timers[i], noop, 0)
			timer.Mod(c, &timers[i], c.Jiffies()+tj)
		}
		op := make([]timer.Timer, opPool)
		for i := range op {
			timer.Setup(c, &op[i], noop, 0)
		}
		ctx := context.Background()
		tick := time.Duration(k.TickNsec())
		settle(b)
		for i := 0; i < b.N; i++ {
			if i%opsPerJiffy == opsPerJiffy-1 {
				k.Run(ctx, tick)
			}
			t := &op[i&(opPool-1)]
			timer.Mod(c, t, c.Jiffies()+tj)
			timer.Delete(t)
		}
		b.StopTimer()
		for i := range timers {
			timer.Delete(&timers[i])
		}
	})
	// The same in real time, as a program would run it: every op reads
	// the clock once (c.Jiffies); mod_timer forwards the base with that
	// value instead of reading the clock again.
	b.Run("kdefer/mod_timer+timer_delete-realtime", func(b *testing.B) {
		k := realKernel(b)
		defer k.Shutdown(context.Background())
		c := k.IdleCtx(0)
		tj := uint64(k.HZ()) * 30
		timers := make([]timer.Timer, nPending)
		for i := range timers {
			timer.Setup(c, &timers[i], noop, 0)
			timer.Mod(c, &timers[i], c.Jiffies()+tj)
		}
		op := make([]timer.Timer, opPool)
		for i := range op {
			timer.Setup(c, &op[i], noop, 0)
		}
		settle(b)
		for i := 0; i < b.N; i++ {
			t := &op[i&(opPool-1)]
			timer.Mod(c, t, c.Jiffies()+tj)
			timer.Delete(t)
		}
		b.StopTimer()
		for i := range timers {
			timer.Delete(&timers[i])
		}
	})
	// The floor of the kernel's locking protocol in Go: mod_timer and
	// timer_delete each take and release the timer's base lock, so an
	// arm-then-cancel pair costs at least two uncontended lock round trips
	// (four locked read-modify-write instructions) before any wheel work.
	b.Run("floor/two-lock-round-trips", func(b *testing.B) {
		var mu sync.Mutex
		n := 0
		settle(b)
		for i := 0; i < b.N; i++ {
			mu.Lock()
			n++
			mu.Unlock()
			mu.Lock()
			n--
			mu.Unlock()
		}
		if n != 0 {
			b.Fatal("unbalanced")
		}
	})
	b.Run("go/AfterFunc+Stop", func(b *testing.B) {
		timers := make([]*time.Timer, nPending)
		for i := range timers {
			timers[i] = time.AfterFunc(timeout30s, func() {})
		}
		f := func() {}
		settle(b)
		for i := 0; i < b.N; i++ {
			time.AfterFunc(timeout30s, f).Stop()
		}
		b.StopTimer()
		for _, t := range timers {
			t.Stop()
		}
	})
}

// BenchmarkExpire1MSameJiffy fires one million timers due on the same
// jiffy; the metric is timers fired per second.
func BenchmarkExpire1MSameJiffy(b *testing.B) {
	b.Run("kdefer/timer_softirq", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		timers := make([]timer.Timer, nPending)
		fired := 0
		fn := func(*kernel.Ctx, *timer.Timer) { fired++ }
		for i := range timers {
			timer.Setup(c, &timers[i], fn, 0)
		}
		ctx := context.Background()
		settle(b)
		var elapsed time.Duration
		for n := 0; n < b.N; n++ {
			b.StopTimer()
			exp := c.Jiffies() + 10
			for i := range timers {
				timer.Mod(c, &timers[i], exp)
			}
			fired = 0
			b.StartTimer()
			t0 := time.Now()
			k.Run(ctx, 20*time.Duration(k.TickNsec()))
			elapsed += time.Since(t0)
			if fired != nPending {
				b.Fatalf("fired %d", fired)
			}
		}
		b.ReportMetric(float64(nPending)*float64(b.N)/elapsed.Seconds(), "timers/s")
	})
	b.Run("go/AfterFunc", func(b *testing.B) {
		var elapsed time.Duration
		for n := 0; n < b.N; n++ {
			var wg sync.WaitGroup
			wg.Add(nPending)
			f := func() { wg.Done() }
			// Arm every timer for the same instant, far enough ahead that
			// arming all of them is over before the first one is due.
			at := time.Now().Add(3 * time.Second)
			ts := make([]*time.Timer, nPending)
			for i := range ts {
				ts[i] = time.AfterFunc(time.Until(at), f)
			}
			if time.Now().After(at) {
				b.Fatal("arming took longer than the lead time")
			}
			runtime.GC()
			wg.Wait()
			elapsed += time.Since(at) // from the due time until the last one ran
		}
		b.ReportMetric(float64(nPending)*float64(b.N)/elapsed.Seconds(), "timers/s")
	})
}
