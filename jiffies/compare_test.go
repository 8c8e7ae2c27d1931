package jiffies

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLow32WrapsFiveMinutesAfterBoot(t *testing.T) {
	for _, hz := range allHZ() {
		boot := hz.InitialJiffies()
		fiveMin := hz.SecsToJiffies(300)
		if fiveMin != 300*uint64(hz) {
			t.Fatalf("HZ(%d): SecsToJiffies(300) = %d, want %d", hz, fiveMin, 300*uint64(hz))
		}
		before, at := boot+fiveMin-1, boot+fiveMin
		if uint32(before) != math.MaxUint32 || uint32(at) != 0 {
			t.Errorf("HZ(%d): low 32 bits %#x then %#x, want 0xffffffff then 0 exactly 300*HZ ticks after boot",
				hz, uint32(before), uint32(at))
		}
		if at != 1<<32 {
			t.Errorf("HZ(%d): 64-bit jiffies at the wrap = %#x, want 1<<32 (no 64-bit wrap)", hz, at)
		}
		if !TimeAfter(at, before) || !TimeBefore(before, at) || !TimeAfter(at, boot) {
			t.Errorf("HZ(%d): comparisons wrong across the 32-bit wrap", hz)
		}
		if got := at - boot; hz.JiffiesToMsecs(got) != 300000 {
			t.Errorf("HZ(%d): JiffiesToMsecs(%d) = %d, want 300000", hz, got, hz.JiffiesToMsecs(got))
		}
	}
}

// checkOrdered asserts every comparison for a strictly before b.
func checkOrdered(t *testing.T, a, b uint64) {
	t.Helper()
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"TimeAfter(b, a)", TimeAfter(b, a), true},
		{"TimeAfter(a, b)", TimeAfter(a, b), false},
		{"TimeBefore(a, b)", TimeBefore(a, b), true},
		{"TimeBefore(b, a)", TimeBefore(b, a), false},
		{"TimeAfterEq(b, a)", TimeAfterEq(b, a), true},
		{"TimeAfterEq(a, b)", TimeAfterEq(a, b), false},
		{"TimeBeforeEq(a, b)", TimeBeforeEq(a, b), true},
		{"TimeBeforeEq(b, a)", TimeBeforeEq(b, a), false},
		{"TimeAfterEq(a, a)", TimeAfterEq(a, a), true},
		{"TimeBeforeEq(a, a)", TimeBeforeEq(a, a), true},
		{"TimeAfter(a, a)", TimeAfter(a, a), false},
		{"TimeBefore(a, a)", TimeBefore(a, a), false},
		{"TimeInRange(a, a, b)", TimeInRange(a, a, b), true},
		{"TimeInRange(b, a, b)", TimeInRange(b, a, b), true},
		{"TimeInRange(a-1, a, b)", TimeInRange(a-1, a, b), false},
		{"TimeInRange(b+1, a, b)", TimeInRange(b+1, a, b), false},
		{"TimeInRangeOpen(a, a, b)", TimeInRangeOpen(a, a, b), true},
		{"TimeInRangeOpen(b, a, b)", TimeInRangeOpen(b, a, b), false},
		{"TimeInRangeOpen(b-1, a, b)", TimeInRangeOpen(b-1, a, b), true},
		{"TimeIsBeforeJiffies(now=b, a)", TimeIsBeforeJiffies(b, a), true},
		{"TimeIsBeforeJiffies(now=a, b)", TimeIsBeforeJiffies(a, b), false},
		{"TimeIsAfterJiffies(now=a, b)", TimeIsAfterJiffies(a, b), true},
		{"TimeIsAfterJiffies(now=b, a)", TimeIsAfterJiffies(b, a), false},
		{"TimeIsBeforeEqJiffies(now=a, a)", TimeIsBeforeEqJiffies(a, a), true},
		{"TimeIsBeforeEqJiffies(now=a, b)", TimeIsBeforeEqJiffies(a, b), false},
		{"TimeIsAfterEqJiffies(now=a, a)", TimeIsAfterEqJiffies(a, a), true},
		{"TimeIsAfterEqJiffies(now=b, a)", TimeIsAfterEqJiffies(b, a), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("a=%#x b=%#x: %s = %v, want %v", a, b, c.name, c.got, c.want)
		}
	}
}

func TestComparisonsSurvive32BitWrap(t *testing.T) {
	for _, hz := range allHZ() {
		boot := hz.InitialJiffies()
		checkOrdered(t, boot, boot+hz.SecsToJiffies(600)) // spans the low-32 wrap
	}
	checkOrdered(t, 0xFFFFFFF0, 0x1_0000_0010)
	checkOrdered(t, math.MaxUint32, math.MaxUint32+1)
}

func TestComparisonsSurvive64BitWrap(t *testing.T) {
	a, b := uint64(math.MaxUint64-5), uint64(10) // b = a + 16, wrapped
	if b > a {
		t.Fatal("test setup: want b < a as plain integers")
	}
	checkOrdered(t, a, b)
	checkOrdered(t, math.MaxUint64, 0)
	checkOrdered(t, math.MaxInt64, math.MaxInt64+1) // signed overflow point
	if !TimeInRange(math.MaxUint64, a, b) || !TimeInRange(0, a, b) {
		t.Error("TimeInRange wrong for a range spanning the 64-bit wrap")
	}
}

// The comparisons are right for any two points less than 2^63 apart; at
// exactly 2^63 each is "after" the other, and beyond that the order flips.
func TestComparisonsHoldUpToHalfTheRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		a := r.Uint64()
		d := r.Uint64N(math.MaxInt64) + 1 // 1 .. 2^63-1
		checkOrdered(t, a, a+d)
	}
	a := uint64(12345)
	if !TimeAfter(a+1<<63, a) || !TimeAfter(a, a+1<<63) {
		t.Error("at a distance of 2^63 both points should compare as after the other")
	}
	if TimeAfter(a+1<<63+1, a) || !TimeBefore(a+1<<63+1, a) {
		t.Error("beyond 2^63 the order should flip")
	}
}
