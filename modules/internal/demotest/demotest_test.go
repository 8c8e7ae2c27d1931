package demotest

import (
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// The worked examples of kernel-semantics §1.3 (clk = 1000000, depth 9).
func TestWheelFireAtMatchesTheReferenceTable(t *testing.T) {
	const clk = 1000000
	for _, tc := range []struct{ expires, want uint64 }{
		{clk - 5, clk},
		{clk - 1, clk},
		{clk, clk + 1},
		{clk + 1, clk + 2},
		{clk + 62, clk + 63},
		{clk + 63, clk + 64},
		{clk + 64, clk + 72},
		{clk + 100, clk + 104},
		{clk + 504, clk + 512},
		{clk + 1000, clk + 1024},
		{clk + 4032, clk + 4544},
		{clk + 100000, clk + 101824},
		{clk + 1<<40, 1056964608},
	} {
		if got := WheelFireAt(1000, clk, tc.expires); got != tc.want {
			t.Errorf("WheelFireAt(clk%+d) = clk%+d, want clk%+d", int64(tc.expires-clk), int64(got-clk), int64(tc.want-clk))
		}
	}
}
