package jiffies

import (
	"math"
	"math/big"
	"testing"
)

// golden holds hand-computed results, to check the math/big model itself.
type golden struct {
	hz   HZ
	in   uint64
	want uint64
}

func TestMsecsToJiffiesRoundsUp(t *testing.T) {
	tests := []golden{
		{HZ100, 0, 0}, {HZ100, 1, 1}, {HZ100, 10, 1}, {HZ100, 11, 2}, {HZ100, 1000, 100},
		{HZ250, 0, 0}, {HZ250, 1, 1}, {HZ250, 4, 1}, {HZ250, 5, 2}, {HZ250, 10, 3}, {HZ250, 1000, 250},
		{HZ300, 0, 0}, {HZ300, 1, 1}, {HZ300, 3, 1}, {HZ300, 4, 2}, {HZ300, 10, 3}, {HZ300, 1000, 300},
		{HZ300, 0x7fffffff, 644245095},
		{HZ1000, 0, 0}, {HZ1000, 1, 1}, {HZ1000, 1000, 1000}, {HZ1000, 0x7fffffff, 0x7fffffff},
		{HZ250, 0x7fffffff, 536870912},
		{HZ100, 0x7fffffff, 214748365},
	}
	for _, tt := range tests {
		if got := tt.hz.MsecsToJiffies(uint32(tt.in)); got != tt.want {
			t.Errorf("HZ(%d).MsecsToJiffies(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
		if ref := refMsecsToJiffies(tt.hz, uint32(tt.in)); ref != tt.want {
			t.Errorf("model: refMsecsToJiffies(HZ=%d, %d) = %d, want %d", tt.hz, tt.in, ref, tt.want)
		}
	}
}

func TestMsecsToJiffiesNegativeIsInfinite(t *testing.T) {
	for _, hz := range allHZ() {
		for _, m := range []uint32{0x80000000, 0x80000001, 0xfffffffe, math.MaxUint32} {
			if got := hz.MsecsToJiffies(m); got != MaxJiffyOffset {
				t.Errorf("HZ(%d).MsecsToJiffies(%#x) = %d, want MaxJiffyOffset", hz, m, got)
			}
		}
	}
}

func TestUsecsToJiffiesRoundsUp(t *testing.T) {
	tests := []golden{
		{HZ100, 0, 0}, {HZ100, 1, 1}, {HZ100, 10000, 1}, {HZ100, 10001, 2},
		{HZ250, 0, 0}, {HZ250, 1, 1}, {HZ250, 4000, 1}, {HZ250, 4001, 2},
		{HZ300, 0, 0}, {HZ300, 1, 1}, {HZ300, 3333, 1}, {HZ300, 3334, 2}, {HZ300, 1000000, 300},
		{HZ1000, 0, 0}, {HZ1000, 1, 1}, {HZ1000, 1000, 1}, {HZ1000, 1001, 2},
	}
	for _, tt := range tests {
		if got := tt.hz.UsecsToJiffies(uint32(tt.in)); got != tt.want {
			t.Errorf("HZ(%d).UsecsToJiffies(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
		if ref := refUsecsToJiffies(tt.hz, uint32(tt.in)); ref != tt.want {
			t.Errorf("model: refUsecsToJiffies(HZ=%d, %d) = %d, want %d", tt.hz, tt.in, ref, tt.want)
		}
	}
}

// On 64-bit, usecs_to_jiffies clamps above jiffies_to_usecs(MAX_JIFFY_OFFSET),
// an unsigned int that has been truncated from a 64-bit product.
func TestUsecsToJiffiesClampsAtKernelThreshold(t *testing.T) {
	tests := []struct {
		hz        HZ
		threshold uint32
		atLimit   uint64
	}{
		{HZ100, 4294947296, 429495},
		{HZ250, 4294959296, 1073740},
		{HZ300, 1431649098, 429495},
		{HZ1000, 4294965296, 4294966},
	}
	for _, tt := range tests {
		if got := tt.hz.JiffiesToUsecs(MaxJiffyOffset); got != tt.threshold {
			t.Errorf("HZ(%d).JiffiesToUsecs(MaxJiffyOffset) = %d, want %d", tt.hz, got, tt.threshold)
		}
		if got := tt.hz.UsecsToJiffies(tt.threshold); got != tt.atLimit {
			t.Errorf("HZ(%d).UsecsToJiffies(%d) = %d, want %d", tt.hz, tt.threshold, got, tt.atLimit)
		}
		for _, u := range []uint32{tt.threshold + 1, math.MaxUint32} {
			if got := tt.hz.UsecsToJiffies(u); got != MaxJiffyOffset {
				t.Errorf("HZ(%d).UsecsToJiffies(%d) = %d, want MaxJiffyOffset", tt.hz, u, got)
			}
		}
	}
}

// timeconst.bc's multiply-and-shift is "correct in the signed integer range
// and off by at most one in the upper half of the unsigned range". At HZ=300
// it overestimates from m = 2147483650 (msecs) and u = 2605480000 (usecs);
// the kernel's guards ((int)m < 0, u > 1431649098) stop both before that, so
// the MUL32 paths always return the exact ceiling.
func TestMul32ApproximationIsOnlyUsedWhereExact(t *testing.T) {
	tc := HZ300.timeconst()
	raw := func(mul, adj uint64, shr uint, x uint64) uint64 { return (mul*x + adj) >> shr }
	exact := func(x, per uint64) uint64 { return (x*300 + per - 1) / per }

	if got, want := raw(tc.msecToHZMul32, tc.msecToHZAdj32, tc.msecToHZShr32, 2147483650), exact(2147483650, msecPerSec); got != want+1 {
		t.Errorf("raw MSEC_TO_HZ(2147483650) = %d, want exact+1 = %d (the documented approximation)", got, want+1)
	}
	if got, want := raw(tc.usecToHZMul32, tc.usecToHZAdj32, tc.usecToHZShr32, 2605480000), exact(2605480000, usecPerSec); got != want+1 {
		t.Errorf("raw USEC_TO_HZ(2605480000) = %d, want exact+1 = %d (the documented approximation)", got, want+1)
	}
	if HZ300.MsecsToJiffies(2147483650) != MaxJiffyOffset || HZ300.UsecsToJiffies(2605480000) != MaxJiffyOffset {
		t.Errorf("HZ=300 guards do not clamp the inexact inputs")
	}
	// A strided sweep of the reachable ranges, plus their ends.
	for m := uint64(0); m <= math.MaxInt32; m += 99991 {
		for _, x := range []uint64{m, math.MaxInt32 - m} {
			if got, want := HZ300.MsecsToJiffies(uint32(x)), exact(x, msecPerSec); got != want {
				t.Fatalf("HZ(300).MsecsToJiffies(%d) = %d, want %d", x, got, want)
			}
		}
	}
	for u := uint64(0); u <= 1431649098; u += 99991 {
		for _, x := range []uint64{u, 1431649098 - u} {
			if got, want := HZ300.UsecsToJiffies(uint32(x)), exact(x, usecPerSec); got != want {
				t.Fatalf("HZ(300).UsecsToJiffies(%d) = %d, want %d", x, got, want)
			}
		}
	}
}

func TestNsecsToJiffiesTruncates(t *testing.T) {
	tests := []golden{
		{HZ100, 9999999, 0}, {HZ100, 10000000, 1},
		{HZ250, 3999999, 0}, {HZ250, 4000000, 1}, {HZ250, 1e9, 250},
		{HZ300, 3333333, 0}, {HZ300, 3333334, 1}, {HZ300, 1e9, 300},
		{HZ1000, 999999, 0}, {HZ1000, 1000000, 1},
		{HZ1000, math.MaxUint64, math.MaxUint64 / 1000000},
	}
	for _, tt := range tests {
		if got := tt.hz.NsecsToJiffies(tt.in); got != tt.want {
			t.Errorf("HZ(%d).NsecsToJiffies(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
		if got := tt.hz.NsecsToJiffies64(tt.in); got != tt.want {
			t.Errorf("HZ(%d).NsecsToJiffies64(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
	}
	// Below the point where HZ=300's n*9 wraps, every HZ gives floor(n*HZ/1e9).
	for _, hz := range allHZ() {
		for _, n := range edgeU64() {
			if n > math.MaxUint64/9 {
				continue
			}
			want := new(big.Int).Quo(bigMul(bigU(n), bigU(uint64(hz))), bigU(nsecPerSec)).Uint64()
			if got := hz.NsecsToJiffies(n); got != want {
				t.Errorf("HZ(%d).NsecsToJiffies(%d) = %d, want floor(n*HZ/1e9) = %d", hz, n, got, want)
			}
		}
	}
}

// nsecs_to_jiffies64 at HZ=300 computes n*9 in 64 bits, which wraps after
// about 65 years of nanoseconds; the kernel returns the wrapped quotient.
func TestNsecsToJiffiesWrapsLikeKernelAtHZ300(t *testing.T) {
	n := uint64(math.MaxUint64/9 + 1)
	want := (n * 9) / 30000000 // wrapped product, as in C
	if got := HZ300.NsecsToJiffies64(n); got != want {
		t.Errorf("HZ(300).NsecsToJiffies64(%d) = %d, want wrapped %d", n, got, want)
	}
	if got := HZ300.NsecsToJiffies64(math.MaxUint64); got != 614891469123 {
		t.Errorf("HZ(300).NsecsToJiffies64(MaxUint64) = %d, want 614891469123", got)
	}
	if got := HZ300.NsecsToJiffies64(n - 1); got <= want {
		t.Errorf("HZ(300).NsecsToJiffies64(%d) = %d, want more than the wrapped value %d", n-1, got, want)
	}
}

func TestJiffiesToMsecsRoundsUp(t *testing.T) {
	tests := []golden{
		{HZ100, 1, 10}, {HZ250, 1, 4}, {HZ250, 2, 8}, {HZ1000, 1, 1},
		{HZ300, 1, 4}, {HZ300, 2, 7}, {HZ300, 3, 10}, {HZ300, 300, 1000},
		{HZ1000, 1 << 32, 0},                // unsigned int result truncates
		{HZ250, 1 << 30, 0},                 // 4*2^30 = 2^32
		{HZ300, MaxJiffyOffset, 2863311524}, // (j*10 + 2)/3, then truncated
		{HZ300, math.MaxUint64, 1431655762}, // j*10 wraps to 2^64-10
	}
	for _, tt := range tests {
		if got := tt.hz.JiffiesToMsecs(tt.in); uint64(got) != tt.want {
			t.Errorf("HZ(%d).JiffiesToMsecs(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
		if ref := refJiffiesToMsecs(tt.hz, tt.in); uint64(ref) != tt.want {
			t.Errorf("model: refJiffiesToMsecs(HZ=%d, %d) = %d, want %d", tt.hz, tt.in, ref, tt.want)
		}
	}
}

func TestJiffiesToUsecsTruncates(t *testing.T) {
	tests := []golden{
		{HZ100, 1, 10000}, {HZ250, 1, 4000}, {HZ1000, 1, 1000},
		{HZ300, 1, 3333}, {HZ300, 2, 6666}, {HZ300, 3, 10000},
		{HZ300, MaxJiffyOffset, 1431649098},
		{HZ250, MaxJiffyOffset, 4294959296},
	}
	for _, tt := range tests {
		if got := tt.hz.JiffiesToUsecs(tt.in); uint64(got) != tt.want {
			t.Errorf("HZ(%d).JiffiesToUsecs(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
		if ref := refJiffiesToUsecs(tt.hz, tt.in); uint64(ref) != tt.want {
			t.Errorf("model: refJiffiesToUsecs(HZ=%d, %d) = %d, want %d", tt.hz, tt.in, ref, tt.want)
		}
	}
}

func TestJiffiesToNsecsGoesThroughUsecs(t *testing.T) {
	tests := []golden{
		{HZ100, 1, 10000000}, {HZ250, 1, 4000000}, {HZ1000, 1, 1000000},
		{HZ300, 1, 3333000}, // microsecond resolution, not TICK_NSEC
		{HZ300, 3, 10000000},
		{HZ1000, 4294968, 704000}, // 4294968000 us truncates to 704 us
	}
	for _, tt := range tests {
		if got := tt.hz.JiffiesToNsecs(tt.in); got != tt.want {
			t.Errorf("HZ(%d).JiffiesToNsecs(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
	}
}

func TestSecsToJiffiesMultipliesByHZ(t *testing.T) {
	tests := []golden{
		{HZ100, 1, 100}, {HZ250, 1, 250}, {HZ300, 1, 300}, {HZ1000, 1, 1000},
		{HZ250, 300, 75000},
		{HZ250, math.MaxUint64, math.MaxUint64 - 249}, // wraps, no clamp
	}
	for _, tt := range tests {
		if got := tt.hz.SecsToJiffies(tt.in); got != tt.want {
			t.Errorf("HZ(%d).SecsToJiffies(%d) = %d, want %d", tt.hz, tt.in, got, tt.want)
		}
	}
}

// checkAgainstReference compares every conversion with the math/big model
// for one 32-bit and one 64-bit input.
func checkAgainstReference(t *testing.T, hz HZ, x32 uint32, x64 uint64) {
	t.Helper()
	if got, want := hz.MsecsToJiffies(x32), refMsecsToJiffies(hz, x32); got != want {
		t.Errorf("HZ(%d).MsecsToJiffies(%d) = %d, want %d", hz, x32, got, want)
	}
	if got, want := hz.UsecsToJiffies(x32), refUsecsToJiffies(hz, x32); got != want {
		t.Errorf("HZ(%d).UsecsToJiffies(%d) = %d, want %d", hz, x32, got, want)
	}
	if got, want := hz.NsecsToJiffies(x64), refNsecsToJiffies64(hz, x64); got != want {
		t.Errorf("HZ(%d).NsecsToJiffies(%d) = %d, want %d", hz, x64, got, want)
	}
	if got, want := hz.NsecsToJiffies64(x64), refNsecsToJiffies64(hz, x64); got != want {
		t.Errorf("HZ(%d).NsecsToJiffies64(%d) = %d, want %d", hz, x64, got, want)
	}
	if got, want := hz.JiffiesToMsecs(x64), refJiffiesToMsecs(hz, x64); got != want {
		t.Errorf("HZ(%d).JiffiesToMsecs(%d) = %d, want %d", hz, x64, got, want)
	}
	if got, want := hz.JiffiesToUsecs(x64), refJiffiesToUsecs(hz, x64); got != want {
		t.Errorf("HZ(%d).JiffiesToUsecs(%d) = %d, want %d", hz, x64, got, want)
	}
	if got, want := hz.JiffiesToNsecs(x64), refJiffiesToNsecs(hz, x64); got != want {
		t.Errorf("HZ(%d).JiffiesToNsecs(%d) = %d, want %d", hz, x64, got, want)
	}
	if got, want := hz.SecsToJiffies(x64), refSecsToJiffies(hz, x64); got != want {
		t.Errorf("HZ(%d).SecsToJiffies(%d) = %d, want %d", hz, x64, got, want)
	}
}

func TestConversionsMatchReferenceOnEdgeValues(t *testing.T) {
	for _, hz := range allHZ() {
		for _, x := range edgeU32() {
			checkAgainstReference(t, hz, x, uint64(x))
		}
		for _, x := range edgeU64() {
			checkAgainstReference(t, hz, uint32(x), x)
		}
		// The boot value of jiffies and the points around it.
		init := hz.InitialJiffies()
		for _, x := range []uint64{init - 1, init, init + 1} {
			checkAgainstReference(t, hz, uint32(x), x)
		}
	}
}

func TestConversionsMatchReferenceOnSweep(t *testing.T) {
	for _, hz := range allHZ() {
		for x := uint64(0); x <= math.MaxUint32; x += 1_000_003 {
			checkAgainstReference(t, hz, uint32(x), x)
		}
		for x := uint64(1); x != 0; x <<= 1 {
			for _, y := range []uint64{x - 1, x, x + 1, x * 3, x * 7} {
				checkAgainstReference(t, hz, uint32(y), y)
			}
		}
	}
}

func FuzzConversionsMatchReference(f *testing.F) {
	for _, x := range edgeU64() {
		f.Add(uint32(x), x)
	}
	f.Fuzz(func(t *testing.T, x32 uint32, x64 uint64) {
		for _, hz := range allHZ() {
			checkAgainstReference(t, hz, x32, x64)
		}
	})
}
