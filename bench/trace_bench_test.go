package bench

import (
	"context"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

// BenchmarkTracepoint: one tracepoint at a kernel call site, written as
// kdefer's own are (the enable test in line, the record out of line).
// Targets: disabled < 2 ns/op; enabled 0 allocs/op. Enabled, the cost is
// the CPU ring's lock, the clock read (an atomic load in virtual time, the
// monotonic clock in real time) and a 112-byte copy; the ring wraps, so
// the benchmark measures the steady overwriting state.
func BenchmarkTracepoint(b *testing.B) {
	b.Run("disabled", func(b *testing.B) {
		_, c := virtKernel(b, 1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c.Kernel().Tracer().On(trace.SoftirqRaise) {
				kernel.Trace(c, trace.SoftirqRaise, &trace.Args{1})
			}
		}
	})
	b.Run("enabled", func(b *testing.B) {
		k, c := virtKernel(b, 1)
		k.Tracer().EnableEvent(trace.SoftirqRaise)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c.Kernel().Tracer().On(trace.SoftirqRaise) {
				kernel.Trace(c, trace.SoftirqRaise, &trace.Args{1})
			}
		}
	})
	b.Run("enabled-realtime", func(b *testing.B) {
		k, err := kernel.Boot(kernel.Config{CPUs: 1, HZ: benchHZ, Quiet: true, TraceEvents: "softirq_raise"})
		if err != nil {
			b.Fatal(err)
		}
		defer k.Shutdown(context.Background())
		c := k.IdleCtx(0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c.Kernel().Tracer().On(trace.SoftirqRaise) {
				kernel.Trace(c, trace.SoftirqRaise, &trace.Args{1})
			}
		}
	})
}

// BenchmarkArmCancelTraced: mod_timer to a new expiry then timer_delete,
// with the timer events off and on (each op then records timer_start and
// timer_cancel): the cost of tracing on a real call path.
func BenchmarkArmCancelTraced(b *testing.B) {
	for _, tc := range []struct {
		name   string
		events string
	}{{"off", ""}, {"on", "timer_start,timer_cancel"}} {
		b.Run(tc.name, func(b *testing.B) {
			k, c := virtKernel(b, 1)
			if tc.events != "" {
				if err := k.Tracer().Enable(tc.events); err != nil {
					b.Fatal(err)
				}
			}
			var t timer.Timer
			timer.Setup(c, &t, noop, 0)
			tj := uint64(k.HZ()) * 30
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				timer.Mod(c, &t, c.Jiffies()+tj)
				timer.Delete(&t)
			}
		})
	}
}
