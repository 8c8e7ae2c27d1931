package bench

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkCoreRoundTrip is the machine's cost of a cache-line round trip
// between two cores: two goroutines on their own OS threads take turns
// writing one counter each and spinning on the other's. ns/op is one round
// trip. It is no library's figure: it says how a run's latency rows should
// be read. A hand-off whose task starts on another core than its producer
// (kdefer's polling kworker, a pool worker spinning on another processor)
// pays a few one-way transfers, a hand-off that runs its task on the
// producer's processor (a channel receiver the sender readies) pays none.
// On a virtual machine the figure depends on where the host runs the
// virtual CPUs, and can change from one minute to the next.
func BenchmarkCoreRoundTrip(b *testing.B) {
	var ping, pong struct {
		v atomic.Int64
		_ [56]byte
	}
	roundTrips(b, &ping.v, &pong.v)
}

// BenchmarkCoreRoundTripOneLine is BenchmarkCoreRoundTrip with both
// counters on one cache line, so that one line moves back and forth: the
// cheapest exchange between two cores. BENCHMARKS.md calls it the one-line
// ping-pong and uses it to tell the machine's two states apart.
func BenchmarkCoreRoundTripOneLine(b *testing.B) {
	var line struct{ ping, pong atomic.Int64 }
	roundTrips(b, &line.ping, &line.pong)
}

// roundTrips runs b.N round trips: this goroutine stores i in ping and
// spins until another, on its own OS thread, has answered i in pong.
func roundTrips(b *testing.B, ping, pong *atomic.Int64) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs two processors")
	}
	n := int64(b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := int64(1); i <= n; i++ {
			for ping.Load() != i {
			}
			pong.Store(i)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	for i := int64(1); i <= n; i++ {
		ping.Store(i)
		for pong.Load() != i {
		}
	}
	b.StopTimer()
	<-done
}
