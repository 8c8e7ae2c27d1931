package jiffies

import (
	"math/rand/v2"
	"testing"
)

func TestRoundJiffiesRoundsToWholeSecond(t *testing.T) {
	tests := []struct {
		name       string
		hz         HZ
		now, j     uint64
		cpu        int
		round, up  uint64
		rel, relUp uint64 // RoundJiffies{,Up}Relative(now, j-now, cpu)
	}{
		{"exact second stays, up moves on", HZ250, 0, 1000, 0, 1000, 1250, 1000, 1250},
		{"just inside the quarter rounds down", HZ250, 0, 1061, 0, 1000, 1250, 1000, 1250},
		{"at the quarter rounds up", HZ250, 0, 1062, 0, 1250, 1250, 1250, 1250},
		{"just before the second rounds up", HZ250, 0, 1249, 0, 1250, 1250, 1250, 1250},
		{"HZ=300 quarter is 75", HZ300, 0, 674, 0, 600, 900, 600, 900},
		{"HZ=300 at the quarter", HZ300, 0, 675, 0, 900, 900, 900, 900},
		{"HZ=100 quarter is 25", HZ100, 0, 124, 0, 100, 200, 100, 200},
		{"HZ=1000 quarter is 250", HZ1000, 0, 1250, 0, 2000, 2000, 2000, 2000},
		{"cpu 2 skews by 6 and may land before j", HZ250, 0, 1000, 2, 994, 1244, 994, 1244},
		{"cpu 2 rounds up to skewed second", HZ250, 0, 1100, 2, 1244, 1244, 1244, 1244},
		{"rounded time not after now keeps j", HZ250, 1000, 1010, 0, 1010, 1250, 1010, 1250},
		{"rounded time equal to now keeps j", HZ250, 1000, 1000, 0, 1000, 1250, 1000, 1250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hz := tt.hz
			if got := hz.RoundJiffies(tt.now, tt.j, tt.cpu); got != tt.round {
				t.Errorf("RoundJiffies(now=%d, %d, cpu=%d) = %d, want %d", tt.now, tt.j, tt.cpu, got, tt.round)
			}
			if got := hz.RoundJiffiesUp(tt.now, tt.j, tt.cpu); got != tt.up {
				t.Errorf("RoundJiffiesUp(now=%d, %d, cpu=%d) = %d, want %d", tt.now, tt.j, tt.cpu, got, tt.up)
			}
			rel := tt.j - tt.now
			if got := hz.RoundJiffiesRelative(tt.now, rel, tt.cpu); got != tt.rel-tt.now {
				t.Errorf("RoundJiffiesRelative(now=%d, %d, cpu=%d) = %d, want %d", tt.now, rel, tt.cpu, got, tt.rel-tt.now)
			}
			if got := hz.RoundJiffiesUpRelative(tt.now, rel, tt.cpu); got != tt.relUp-tt.now {
				t.Errorf("RoundJiffiesUpRelative(now=%d, %d, cpu=%d) = %d, want %d", tt.now, rel, tt.cpu, got, tt.relUp-tt.now)
			}
		})
	}
}

// Over random inputs: a changed result is a skewed whole second in the
// future, at most HZ/4-1 ticks early or HZ ticks late; the up variants are
// never early; the relative variants are the absolute ones shifted by now.
func TestRoundJiffiesStaysWithinOneSecond(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, hz := range allHZ() {
		h := int64(hz)
		for range 5000 {
			now := hz.InitialJiffies() + r.Uint64N(1<<40)
			j := now + r.Uint64N(uint64(20*h))
			cpu := r.IntN(256)
			skew := uint64(3 * cpu)

			for _, up := range []bool{false, true} {
				var got, rel uint64
				if up {
					got, rel = hz.RoundJiffiesUp(now, j, cpu), hz.RoundJiffiesUpRelative(now, j-now, cpu)
				} else {
					got, rel = hz.RoundJiffies(now, j, cpu), hz.RoundJiffiesRelative(now, j-now, cpu)
				}
				if rel != got-now {
					t.Fatalf("HZ=%d up=%v now=%d j=%d cpu=%d: relative = %d, want %d", hz, up, now, j, cpu, rel, got-now)
				}
				if got == j {
					continue
				}
				d := int64(got - j)
				lo := -(h/4 - 1)
				if up {
					lo = 1
				}
				if (got+skew)%uint64(hz) != 0 || !TimeIsAfterJiffies(now, got) || d < lo || d > h {
					t.Fatalf("HZ=%d up=%v now=%d j=%d cpu=%d: got %d (moved %d)", hz, up, now, j, cpu, got, d)
				}
			}
		}
	}
}

func TestRoundJiffiesUpNeverRoundsDown(t *testing.T) {
	for _, hz := range allHZ() {
		for j := uint64(1); j < 3*uint64(hz); j++ {
			for _, cpu := range []int{0, 1, 7} {
				if got := hz.RoundJiffiesUp(0, j, cpu); TimeBefore(got, j) {
					t.Fatalf("HZ(%d).RoundJiffiesUp(0, %d, %d) = %d, before j", hz, j, cpu, got)
				}
			}
		}
	}
}
