package kernel

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestJiffyBoundaryIsTheFirstCounterValueOfTheNextJiffy: the counter value
// at which a context's remembered jiffy ends (Ctx.tscNext) is exactly the
// first one that the TSC-to-jiffies conversion maps to the next jiffy, for
// rates from 100 MHz to 20 GHz at every HZ, so Ctx.Jiffies returns what
// the full conversion would at every counter value.
func TestJiffyBoundaryIsTheFirstCounterValueOfTheNextJiffy(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tickNs := range []int64{10_000_000, 4_000_000, 3_333_333, 1_000_000} {
		for range 200 {
			mult := uint64(1<<32/20) + rng.Uint64N(10<<32) // ns per tick, 32.32
			var rc realClock
			rc.tsc, rc.mult, rc.tsc0 = true, mult, rng.Uint64()
			rc.multJ, _ = bits.Div64(mult>>32, mult<<32, uint64(tickNs))
			k := &Kernel{initialJ: 4294967296 - 300, clock: rc}
			c := &Ctx{k: k}
			jof := func(tsc uint64) uint64 {
				d := tsc - rc.tsc0
				if int64(d) <= 0 {
					return k.initialJ
				}
				e, _ := bits.Mul64(d, rc.multJ)
				return k.initialJ + e
			}
			tsc := rc.tsc0 + rng.Uint64N(1<<50)
			j := c.readJiffiesTSC(tsc)
			if j != jof(tsc) {
				t.Fatalf("jiffies %d at counter %d, want %d", j, tsc, jof(tsc))
			}
			if c.tscNext == 0 {
				t.Fatalf("no boundary remembered at counter %d", tsc)
			}
			if jof(c.tscNext-1) != j || jof(c.tscNext) != j+1 {
				t.Fatalf("tick %d ns, mult %d: boundary %d maps to %d (one before: %d), want %d then %d",
					tickNs, mult, c.tscNext, jof(c.tscNext), jof(c.tscNext-1), j+1, j)
			}
		}
	}
}
