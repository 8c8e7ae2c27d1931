package timer

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"

	"github.com/kdefer/kdefer/jiffies"
)

// allHZ are the kernel's Kconfig HZ choices.
var allHZ = []jiffies.HZ{jiffies.HZ100, jiffies.HZ250, jiffies.HZ300, jiffies.HZ1000}

// Reference numbers, typed in from docs (kernel-semantics.md §1.1) rather
// than derived from the package constants, so the tests below compare two
// independent sources.
var (
	// refLevelStart[n] is LVL_START(n+1): the first delta on level n+1.
	refLevelStart = [...]uint64{63, 504, 4032, 32256, 258048, 2064384, 16515072, 132120576, 1056964608}
	refCutoff     = map[uint]uint64{8: 132120576, 9: 1056964608}
	refTimeoutMax = map[uint]uint64{8: 130023424, 9: 1040187392}
)

func refDepth(hz jiffies.HZ) uint {
	if hz > 100 {
		return 9
	}
	return 8
}

// placement kinds of refPlacement.
const (
	kindNormal = iota // queued on the level its delta selects
	kindPast          // expiry already passed: level-0 bucket of clk
	kindCapped        // delta beyond the cutoff: clamped to WHEEL_TIMEOUT_MAX
)

// refPlacement is the firing-jiffy formula of kernel-semantics.md §1.3,
// written out independently of calcWheelIndex: the level, bucket index
// and the jiffy at which a timer queued at expires on a wheel with base
// clock clk fires.
func refPlacement(depth uint, clk, expires uint64) (level int, idx uint, fire uint64, kind int) {
	delta := expires - clk
	if int64(delta) < 0 {
		return 0, uint(clk % 64), clk, kindPast
	}
	level = int(depth) - 1
	for i := 0; i < int(depth)-1; i++ {
		if delta < refLevelStart[i] {
			level = i
			break
		}
	}
	kind = kindNormal
	e := expires
	if level == int(depth)-1 && delta >= refCutoff[depth] {
		e = clk + refTimeoutMax[depth]
		kind = kindCapped
	}
	gran := uint64(1)
	for i := 0; i < level; i++ {
		gran *= 8
	}
	q := e/gran + 1
	return level, uint(level)*64 + uint(q%64), q * gran, kind
}

func TestLevelTableRegeneratedFromConstants(t *testing.T) {
	// kernel-semantics.md §1.1, "delta range selecting this level (code
	// thresholds)", plus the cutoff lines.
	const want = `depth 9 (HZ > 100): WHEEL_SIZE=576 CUTOFF=1056964608 MAX=1040187392
level 0 offs 0 gran 1: deltas 0..62
level 1 offs 64 gran 8: deltas 63..503
level 2 offs 128 gran 64: deltas 504..4031
level 3 offs 192 gran 512: deltas 4032..32255
level 4 offs 256 gran 4096: deltas 32256..258047
level 5 offs 320 gran 32768: deltas 258048..2064383
level 6 offs 384 gran 262144: deltas 2064384..16515071
level 7 offs 448 gran 2097152: deltas 16515072..132120575
level 8 offs 512 gran 16777216: deltas 132120576..1056964607, beyond: capped
depth 8 (HZ <= 100): WHEEL_SIZE=512 CUTOFF=132120576 MAX=130023424
level 0 offs 0 gran 1: deltas 0..62
level 1 offs 64 gran 8: deltas 63..503
level 2 offs 128 gran 64: deltas 504..4031
level 3 offs 192 gran 512: deltas 4032..32255
level 4 offs 256 gran 4096: deltas 32256..258047
level 5 offs 320 gran 32768: deltas 258048..2064383
level 6 offs 384 gran 262144: deltas 2064384..16515071
level 7 offs 448 gran 2097152: deltas 16515072..132120575, beyond: capped
`
	var sb strings.Builder
	for _, hz := range []jiffies.HZ{1000, 100} {
		depth := lvlDepth(hz)
		cond := "HZ > 100"
		if hz <= 100 {
			cond = "HZ <= 100"
		}
		fmt.Fprintf(&sb, "depth %d (%s): WHEEL_SIZE=%d CUTOFF=%d MAX=%d\n",
			depth, cond, lvlSize*depth, wheelTimeoutCutoff(depth), wheelTimeoutMax(depth))
		for lvl := uint(0); lvl < depth; lvl++ {
			lo := uint64(0)
			if lvl > 0 {
				lo = lvlStart(lvl)
			}
			fmt.Fprintf(&sb, "level %d offs %d gran %d: deltas %d..%d", lvl, lvlOffs(lvl), lvlGran(lvl), lo, lvlStart(lvl+1)-1)
			if lvl == depth-1 {
				sb.WriteString(", beyond: capped")
			}
			sb.WriteString("\n")
		}
	}
	if got := sb.String(); got != want {
		t.Errorf("level table:\n%s\nwant:\n%s", got, want)
	}
	if wheelSize != 576 {
		t.Errorf("WHEEL_SIZE = %d, want 576", wheelSize)
	}
	if timerNextMaxDelta != 1073741823 {
		t.Errorf("TIMER_NEXT_MAX_DELTA = %d", timerNextMaxDelta)
	}
}

// TestSlackOfUpperLevelsIsAtMostEightSixtyThirds checks the "12.5%" claim:
// on level n >= 1 a timer is late by at most LVL_GRAN(n), and its delta is
// at least LVL_START(n) = 63/8 of that.
func TestSlackOfUpperLevelsIsAtMostEightSixtyThirds(t *testing.T) {
	for lvl := uint(1); lvl < lvlDepthMax; lvl++ {
		if g, s := lvlGran(lvl), lvlStart(lvl); g*63 != s*8 {
			t.Errorf("level %d: gran %d / start %d != 8/63", lvl, g, s)
		}
	}
}

// kernelCommentTable is the "granularity and range levels" comment at the
// top of kernel/time/timer.c: level, offset, granularity (ms), range
// start and end (ms).
var kernelCommentTable = map[jiffies.HZ][][5]uint64{
	1000: {
		{0, 0, 1, 0, 63}, {1, 64, 8, 64, 511}, {2, 128, 64, 512, 4095},
		{3, 192, 512, 4096, 32767}, {4, 256, 4096, 32768, 262143},
		{5, 320, 32768, 262144, 2097151}, {6, 384, 262144, 2097152, 16777215},
		{7, 448, 2097152, 16777216, 134217727}, {8, 512, 16777216, 134217728, 1073741822},
	},
	300: {
		{0, 0, 3, 0, 210}, {1, 64, 26, 213, 1703}, {2, 128, 213, 1706, 13650},
		{3, 192, 1706, 13653, 109223}, {4, 256, 13653, 109226, 873810},
		{5, 320, 109226, 873813, 6990503}, {6, 384, 873813, 6990506, 55924050},
		{7, 448, 6990506, 55924053, 447392423}, {8, 512, 55924053, 447392426, 3579139406},
	},
	250: {
		{0, 0, 4, 0, 255}, {1, 64, 32, 256, 2047}, {2, 128, 256, 2048, 16383},
		{3, 192, 2048, 16384, 131071}, {4, 256, 16384, 131072, 1048575},
		{5, 320, 131072, 1048576, 8388607}, {6, 384, 1048576, 8388608, 67108863},
		{7, 448, 8388608, 67108864, 536870911}, {8, 512, 67108864, 536870912, 4294967288},
	},
	100: {
		{0, 0, 10, 0, 630}, {1, 64, 80, 640, 5110}, {2, 128, 640, 5120, 40950},
		{3, 192, 5120, 40960, 327670}, {4, 256, 40960, 327680, 2621430},
		{5, 320, 327680, 2621440, 20971510}, {6, 384, 2621440, 20971520, 167772150},
		{7, 448, 20971520, 167772160, 1342177270},
	},
}

// TestKernelCommentTableRegeneratedForEachHZ regenerates the timer.c
// comment table from our constants. Offsets, granularities and range
// starts (the capacity of the level below, 64 * 8^(n-1) jiffies) match
// exactly; the comment's range ends are hand-rounded and match our
// 64 * 8^n - 1 jiffies within one jiffy. The code thresholds (63, 504, ...)
// are checked by TestLevelTableRegeneratedFromConstants.
func TestKernelCommentTableRegeneratedForEachHZ(t *testing.T) {
	for _, hz := range allHZ {
		rows := kernelCommentTable[hz]
		depth := lvlDepth(hz)
		if uint(len(rows)) != depth {
			t.Fatalf("HZ=%d: %d rows, depth %d", hz, len(rows), depth)
		}
		ms := func(j uint64) uint64 { return j * 1000 / uint64(hz) }
		jiffyMS := (1000 + uint64(hz) - 1) / uint64(hz)
		for lvl := uint(0); lvl < depth; lvl++ {
			r := rows[lvl]
			start := uint64(0)
			if lvl > 0 {
				start = lvlSize * lvlGran(lvl-1)
			}
			end := lvlSize*lvlGran(lvl) - 1
			got := [4]uint64{uint64(lvlOffs(lvl)), ms(lvlGran(lvl)), ms(start), ms(end)}
			if r[0] != uint64(lvl) || got[0] != r[1] || got[1] != r[2] || got[2] != r[3] {
				t.Errorf("HZ=%d level %d: got offs/gran/start %v, kernel %v", hz, lvl, got[:3], r[1:4])
			}
			if d := int64(got[3]) - int64(r[4]); d > int64(jiffyMS) || -d > int64(jiffyMS) {
				t.Errorf("HZ=%d level %d: range end %d ms, kernel comment %d ms", hz, lvl, got[3], r[4])
			}
		}
	}
}

// runsAt is the jiffy whose timer softirq runs a bucket expiring at fire
// for a timer armed from process context at jiffies armJ: fire itself,
// or the next tick if the bucket was already due (an expiry in the
// past): by the time process context sees jiffies armJ, that jiffy's
// tick has run.
func runsAt(fire, armJ uint64) uint64 {
	if jiffies.TimeAfter(fire, armJ) {
		return fire
	}
	return armJ + 1
}

// TestWorkedExamplesOfFiringJiffy is the worked-example table of
// kernel-semantics.md §1.3 (clk = 1000000, depth 9), armed at jiffies
// clk: the past expiries queue in clk's own bucket and run on the next
// tick, clk+1 ("a timer armed for jiffies or earlier fires on the next
// tick").
func TestWorkedExamplesOfFiringJiffy(t *testing.T) {
	const clk = 1000000
	tests := []struct {
		expires uint64
		level   string
		idx     uint
		fire    uint64
	}{
		{clk - 5, "past", 0, clk},
		{clk - 1, "past", 0, clk},
		{clk + 0, "0", 1, clk + 1},
		{clk + 1, "0", 2, clk + 2},
		{clk + 62, "0", 63, clk + 63},
		{clk + 63, "1", 80, clk + 64},
		{clk + 64, "1", 81, clk + 72},
		{clk + 100, "1", 85, clk + 104},
		{clk + 504, "2", 145, clk + 512},
		{clk + 1000, "2", 153, clk + 1024},
		{clk + 4032, "3", 234, clk + 4544},
		{clk + 100000, "4", 269, clk + 101824},
		{clk + 1<<40, "8 (capped)", 575, 1056964608},
	}
	for _, hz := range []jiffies.HZ{250, 300, 1000} {
		var w wheel
		w.reset(hz, clk)
		timers := make([]Timer, len(tests))
		var fired []uint64
		for i, tt := range tests {
			idx, be := w.calcWheelIndex(tt.expires, clk)
			if idx != tt.idx || be != tt.fire {
				t.Errorf("HZ=%d expires=clk%+d: idx %d fire %d, want level %s idx %d fire %d",
					hz, int64(tt.expires-clk), idx, be, tt.level, tt.idx, tt.fire)
			}
			timers[i].function = func(*kernel.Ctx, *Timer) {}
			if ret := w.mod(&timers[i], tt.expires, false, false, clk); ret != 0 {
				t.Fatalf("mod of an inactive timer returned %d", ret)
			}
		}
		fired = fired[:0]
		firedAt := make(map[*Timer]uint64)
		for _, tt := range tests {
			j := runsAt(tt.fire, clk)
			w.run(j, func(tm *Timer) { firedAt[tm] = j; fired = append(fired, j) })
		}
		for i, tt := range tests {
			if got, ok := firedAt[&timers[i]]; !ok || got != runsAt(tt.fire, clk) {
				t.Errorf("HZ=%d expires=clk%+d fired at %d (%t), want %d", hz, int64(tt.expires-clk), got, ok, runsAt(tt.fire, clk))
			}
		}
	}
}

// deltaSamples returns interesting deltas for depth: every level boundary
// and its neighbours, the cutoff, negative and near-2^63 values, and
// random ones on every scale.
func deltaSamples(rng *rand.Rand, depth uint, n int) []int64 {
	var out []int64
	for _, s := range refLevelStart[:depth] {
		for d := int64(-2); d <= 2; d++ {
			out = append(out, int64(s)+d)
		}
	}
	for _, d := range []int64{0, 1, -1, -2, -63, -1 << 40, 1 << 40, 1<<63 - 1, -1 << 63,
		int64(refTimeoutMax[depth]), int64(refTimeoutMax[depth]) + 1} {
		out = append(out, d)
	}
	for len(out) < n {
		switch rng.IntN(4) {
		case 0:
			out = append(out, rng.Int64N(200)-100)
		case 1:
			out = append(out, rng.Int64N(1<<rng.IntN(32)))
		case 2:
			out = append(out, rng.Int64N(1<<rng.IntN(62)+1))
		default:
			out = append(out, -rng.Int64N(1<<rng.IntN(62)+1))
		}
	}
	return out
}

// clkSamples returns base clocks to test from: zero, 32-bit
// INITIAL_JIFFIES-style values, values just below the 64-bit wrap, and
// random ones.
func clkSamples(rng *rand.Rand, hz jiffies.HZ) []uint64 {
	out := []uint64{0, 1000000, hz.InitialJiffies(), 1<<64 - 1, 1<<64 - 64, 1<<64 - 1000, 1<<64 - 1<<31, 1 << 63, 1<<63 - 1}
	for i := 0; i < 40; i++ {
		out = append(out, rng.Uint64(), rng.Uint64()>>rng.IntN(64))
	}
	return out
}

// TestFiringJiffyMatchesKernelFormula queues timers at many (clk, expires)
// pairs, checks the bucket against the §1.3 formula, then runs the wheel
// to each predicted jiffy and checks that exactly the predicted timers
// fire there, highest level first and LIFO within a bucket, and none a
// jiffy earlier.
func TestFiringJiffyMatchesKernelFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, hz := range allHZ {
		depth := refDepth(hz)
		for _, clk := range clkSamples(rng, hz) {
			deltas := deltaSamples(rng, depth, 96)
			var w wheel
			w.reset(hz, clk)
			type want struct {
				level int
				fire  uint64
				seq   int
			}
			wants := make(map[*Timer]want)
			timers := make([]Timer, len(deltas))
			for i, d := range deltas {
				expires := clk + uint64(d)
				level, idx, fire, _ := refPlacement(depth, clk, expires)
				gotIdx, gotFire := w.calcWheelIndex(expires, clk)
				if gotIdx != idx || gotFire != fire {
					t.Fatalf("HZ=%d clk=%d delta=%d: calcWheelIndex = (%d, %d), formula (%d, %d)",
						hz, clk, d, gotIdx, gotFire, idx, fire)
				}
				tm := &timers[i]
				tm.function = func(*kernel.Ctx, *Timer) {}
				w.mod(tm, expires, false, false, clk)
				if tm.wheelIdx() != idx {
					t.Fatalf("queued in idx %d, want %d", tm.wheelIdx(), idx)
				}
				wants[tm] = want{level, fire, i}
			}
			if err := w.verify(); err != nil {
				t.Fatal(err)
			}
			// Distinct firing jiffies in time order from clk.
			var fires []uint64
			seen := map[uint64]bool{}
			for _, wt := range wants {
				if !seen[wt.fire] {
					seen[wt.fire] = true
					fires = append(fires, wt.fire)
				}
			}
			sort.Slice(fires, func(i, j int) bool { return fires[i]-clk < fires[j]-clk })

			// The past expiries (bucket clk) run with the next tick's
			// buckets, before them.
			for gi := 0; gi < len(fires); {
				f := fires[gi]
				j := runsAt(f, clk)
				group := []uint64{f}
				for gi++; gi < len(fires) && runsAt(fires[gi], clk) == j; gi++ {
					group = append(group, fires[gi])
				}
				if next := w.nextExpiryJiffies(); next != f {
					t.Fatalf("HZ=%d clk=%d: next expiry %d, want %d", hz, clk, next, f)
				}
				var got []*Timer
				record := func(tm *Timer) { got = append(got, tm) }
				w.run(j-1, record)
				if len(got) != 0 {
					t.Fatalf("HZ=%d clk=%d: %d timers fired at %d, one jiffy before %d", hz, clk, len(got), j-1, j)
				}
				w.run(j, record)
				var exp []*Timer
				for tm, wt := range wants {
					if runsAt(wt.fire, clk) == j {
						exp = append(exp, tm)
					}
				}
				// Bucket by bucket; highest level first, then last
				// queued first.
				sort.Slice(exp, func(i, j int) bool {
					a, b := wants[exp[i]], wants[exp[j]]
					if a.fire != b.fire {
						return a.fire-clk < b.fire-clk
					}
					if a.level != b.level {
						return a.level > b.level
					}
					return a.seq > b.seq
				})
				if fmt.Sprint(got) != fmt.Sprint(exp) {
					t.Fatalf("HZ=%d clk=%d: at %d fired %d timers %v, want %d %v", hz, clk, j, len(got), got, len(exp), exp)
				}
				if last := group[len(group)-1]; w.clk != last+1 {
					t.Fatalf("after expiring bucket %d at %d clk is %d, want %d", last, j, w.clk, last+1)
				}
				if err := w.verify(); err != nil {
					t.Fatal(err)
				}
			}
			if w.timersPending || w.nextExpiryJiffies() != w.clk+timerNextMaxDelta {
				t.Fatalf("wheel not empty after all timers fired: %s", w.describe())
			}
		}
	}
}

// TestFiringJiffyMatchesKernelFormulaTickByTick runs the wheel one jiffy at
// a time, as a periodic tick does, over deltas up to level 3.
func TestFiringJiffyMatchesKernelFormulaTickByTick(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, hz := range allHZ {
		depth := refDepth(hz)
		for _, clk := range []uint64{1000000, hz.InitialJiffies(), 1<<64 - 3000, rng.Uint64()} {
			var w wheel
			w.reset(hz, clk)
			timers := make([]Timer, 200)
			want := make(map[*Timer]uint64)
			got := make(map[*Timer]uint64)
			last := clk
			for i := range timers {
				expires := clk + uint64(rng.Int64N(6000)-20)
				_, _, fire, _ := refPlacement(depth, clk, expires)
				fire = runsAt(fire, clk)
				timers[i].function = func(*kernel.Ctx, *Timer) {}
				w.mod(&timers[i], expires, false, false, clk)
				want[&timers[i]] = fire
				if fire-clk > last-clk {
					last = fire
				}
			}
			for j := clk; j != last+1; j++ {
				w.run(j, func(tm *Timer) {
					if _, dup := got[tm]; dup {
						t.Fatalf("timer fired twice")
					}
					got[tm] = j
				})
			}
			for tm, f := range want {
				if got[tm] != f {
					t.Fatalf("HZ=%d clk=%d: timer fired at %d, want %d", hz, clk, got[tm], f)
				}
			}
		}
	}
}

func TestPastExpiryFiresOnTheNextTick(t *testing.T) {
	var w wheel
	w.reset(250, 5000)
	var tm Timer
	tm.function = func(*kernel.Ctx, *Timer) {}
	w.mod(&tm, 4000, false, false, 5000)
	if idx := tm.wheelIdx(); idx != 5000%64 {
		t.Fatalf("past timer in bucket %d, want %d", idx, 5000%64)
	}
	fired := 0
	// Armed at jiffies 5000, whose tick has run: the next tick runs it.
	w.run(5000, func(*Timer) { fired++ })
	if fired != 0 {
		t.Fatal("past timer armed at jiffies 5000 fired in the softirq of 5000")
	}
	if next, _ := w.idle(5000); next != 5001 {
		t.Fatalf("idle CPU wakes at %d, want 5001", next)
	}
	w.run(5001, func(*Timer) { fired++ })
	if fired != 1 {
		t.Fatalf("fired %d at the next tick, want 1", fired)
	}
	// Re-armed for "now" from its callback: clk is jiffies+1 while
	// timers run, so it lands on the next tick, not this one.
	tm.function = func(*kernel.Ctx, *Timer) {
		fired++
		if fired == 2 {
			w.mod(&tm, 5002, false, false, 5002)
		}
	}
	call := func(t *Timer) { t.function(nil, t) }
	w.mod(&tm, 5001, false, false, 5001)
	w.run(5002, call)
	w.run(5002, call)
	if fired != 2 || !tm.pending() {
		t.Fatalf("fired %d (pending %t): re-armed for now from its callback fired in the same jiffy", fired, tm.pending())
	}
	w.run(5003, call)
	if fired != 3 {
		t.Fatal("timer re-armed for now did not fire on the next tick")
	}
}

func TestCallbackRunsUnlinkedAndMayRearm(t *testing.T) {
	var w wheel
	w.reset(1000, 100)
	var tm Timer
	var at []uint64
	jiffies := uint64(100)
	tm.function = func(_ *kernel.Ctx, t2 *Timer) {
		if t2.pending() {
			t.Error("timer pending inside its callback")
		}
		if w.runningTimer != t2 {
			t.Error("runningTimer is not the expiring timer")
		}
		at = append(at, jiffies)
		if len(at) < 3 {
			if ret := w.mod(t2, jiffies+10, false, false, jiffies); ret != 0 {
				t.Errorf("re-arm in callback returned %d, want 0", ret)
			}
		}
		// A nested run does nothing (kernel ≥ v6.9).
		w.run(jiffies+1000, func(*Timer) { t.Error("nested run expired a timer") })
	}
	w.mod(&tm, 105, false, false, jiffies)
	for ; jiffies < 200; jiffies++ {
		w.run(jiffies, func(t2 *Timer) { t2.function(nil, t2) })
		if w.runningTimer != nil {
			t.Fatal("runningTimer left set after run")
		}
	}
	// 105 -> fires 106; re-armed at 106 with clk 107 for 116 -> fires 117;
	// then 127 -> 128.
	if fmt.Sprint(at) != "[106 117 128]" {
		t.Fatalf("fired at %v", at)
	}
}

// TestModOfTimerCollectedInSameRunKeepsItInTheBatch documents a kernel
// corner case we reproduce on purpose: a callback that modifies a timer
// which the same run has already collected (same bucket, not yet
// expired) to an expiry that maps to the same bucket index takes the
// "same bucket" shortcut. The timer stays in the batch and fires now,
// before its new expires.
func TestModOfTimerCollectedInSameRunKeepsItInTheBatch(t *testing.T) {
	const clk = 1000000
	var w wheel
	w.reset(1000, clk)
	var a, b Timer
	var order []string
	b.function = func(*kernel.Ctx, *Timer) { order = append(order, "b") }
	a.function = func(*kernel.Ctx, *Timer) {
		order = append(order, "a")
		// clk is now 1000007: delta 62 is level 0, idx (1000069+1)&63 = 6,
		// the index b is queued under.
		if ret := w.mod(&b, 1000006+63, false, false, 1000006); ret != 1 {
			t.Errorf("mod of collected b returned %d, want 1", ret)
		}
	}
	w.mod(&b, clk+5, false, false, clk)
	w.mod(&a, clk+5, false, false, clk) // LIFO: a runs first
	w.run(1000006, func(tm *Timer) { tm.function(nil, tm) })
	if fmt.Sprint(order) != "[a b]" || b.expires != 1000069 || b.pending() {
		t.Fatalf("order %v, b.expires %d, b pending %t", order, b.expires, b.pending())
	}

	// Deleting a collected timer instead stops it from running.
	order = nil
	a.function = func(*kernel.Ctx, *Timer) {
		order = append(order, "a")
		if ret := w.detach(&b, true); ret != 1 {
			t.Errorf("delete of collected b returned %d, want 1", ret)
		}
	}
	w.mod(&b, 1000010, false, false, 1000006)
	w.mod(&a, 1000010, false, false, 1000006)
	w.run(1000011, func(tm *Timer) { tm.function(nil, tm) })
	if fmt.Sprint(order) != "[a]" {
		t.Fatalf("order %v", order)
	}
	if err := w.verify(); err != nil {
		t.Fatal(err)
	}
}

func TestModShortcutsLeaveTheWheelAlone(t *testing.T) {
	const clk = 1000000
	var w wheel
	w.reset(1000, clk)
	var tm Timer
	tm.function = func(*kernel.Ctx, *Timer) {}
	if ret := w.mod(&tm, clk+100, false, false, clk); ret != 0 {
		t.Fatalf("first mod = %d", ret)
	}
	// Same expiry: nothing at all happens, not even forwarding the clock.
	if ret := w.mod(&tm, clk+100, false, false, clk+50); ret != 1 || w.clk != clk {
		t.Fatalf("same-expiry mod = %d, clk %d", ret, w.clk)
	}
	// Same bucket after forwarding: only expires changes.
	first := w.vectors[85]
	if ret := w.mod(&tm, clk+103, false, false, clk); ret != 1 || tm.expires != clk+103 || w.vectors[85] != first || tm.wheelIdx() != 85 {
		t.Fatalf("same-bucket mod = %d, expires %d, idx %d", ret, tm.expires, tm.wheelIdx())
	}
	// timer_reduce never moves a timer later.
	if ret := w.mod(&tm, clk+5000, false, true, clk); ret != 1 || tm.expires != clk+103 {
		t.Fatalf("reduce later = %d, expires %d", ret, tm.expires)
	}
	if ret := w.mod(&tm, clk+10, false, true, clk); ret != 1 || tm.expires != clk+10 || tm.wheelIdx() != 11 {
		t.Fatalf("reduce earlier = %d, expires %d idx %d", ret, tm.expires, tm.wheelIdx())
	}
	// mod_timer_pending does not arm an inactive timer.
	w.detach(&tm, true)
	if ret := w.mod(&tm, clk+10, true, false, clk); ret != 0 || tm.pending() {
		t.Fatalf("mod_pending of inactive = %d, pending %t", ret, tm.pending())
	}
	// A shut-down timer (nil function) is never armed.
	tm.function = nil
	if ret := w.mod(&tm, clk+10, false, false, clk); ret != 0 || tm.pending() {
		t.Fatalf("mod of shut-down timer = %d, pending %t", ret, tm.pending())
	}
	if err := w.verify(); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteEmptyingBucketMarksNextExpiryForRecalc(t *testing.T) {
	const clk = 1000000
	var w wheel
	w.reset(1000, clk)
	var a, b Timer
	a.function, b.function = func(*kernel.Ctx, *Timer) {}, func(*kernel.Ctx, *Timer) {}
	w.mod(&a, clk+10, false, false, clk)
	w.mod(&b, clk+1000, false, false, clk)
	if w.nextExpiry != clk+11 {
		t.Fatalf("next expiry %d", w.nextExpiry)
	}
	// Emptying a bucket that is not the first one also sets recalc, as
	// in the kernel's detach_if_pending.
	w.detach(&b, true)
	if !w.nextExpiryRecalc {
		t.Fatal("recalc not set after emptying a later bucket")
	}
	if next := w.nextExpiryJiffies(); next != clk+11 || w.nextExpiryRecalc {
		t.Fatalf("next %d recalc %t", next, w.nextExpiryRecalc)
	}
	w.detach(&a, true)
	if next := w.nextExpiryJiffies(); next != clk+timerNextMaxDelta || w.timersPending {
		t.Fatalf("empty wheel: next %d pending %t", next, w.timersPending)
	}
	if w.detach(&a, true) != 0 {
		t.Fatal("second delete returned 1")
	}
}

func TestForwardFollowsJiffiesButStopsAtNextExpiry(t *testing.T) {
	var w wheel
	w.reset(1000, 1000)
	w.forward(900) // never backwards
	if w.clk != 1000 {
		t.Fatalf("clk %d", w.clk)
	}
	w.forward(5000)
	if w.clk != 5000 {
		t.Fatalf("clk %d", w.clk)
	}
	var tm Timer
	tm.function = func(*kernel.Ctx, *Timer) {}
	w.mod(&tm, 5010, false, false, 5000) // fires 5011
	w.forward(6000)
	if w.clk != 5011 {
		t.Fatalf("clk %d, want next expiry 5011", w.clk)
	}
}

func TestArmRearmDeleteAndExpireAllocateNothing(t *testing.T) {
	var w wheel
	w.reset(1000, 1000000)
	var a, b Timer
	a.function, b.function = func(*kernel.Ctx, *Timer) {}, func(*kernel.Ctx, *Timer) {}
	j := uint64(1000000)
	w.mod(&b, j+3, false, false, j) // a neighbour in some buckets
	allocs := testing.AllocsPerRun(1000, func() {
		w.mod(&a, j+100, false, false, j)  // arm or re-arm
		w.mod(&a, j+5000, false, false, j) // move to another level
		w.mod(&a, j+5001, false, false, j) // same bucket shortcut
		w.mod(&a, j+5001, false, false, j) // same expiry shortcut
		w.mod(&a, j+3, false, true, j)     // reduce into b's bucket
		w.mod(&a, j+9, true, false, j)     // mod_pending
		w.detach(&a, true)
		w.detach(&a, true)
	})
	if allocs != 0 {
		t.Errorf("arm/re-arm/delete: %v allocs per run, want 0", allocs)
	}
	expire := func(tm *Timer) { tm.function(nil, tm) }
	allocs = testing.AllocsPerRun(1000, func() {
		w.mod(&a, j+1, false, false, j)
		w.mod(&b, j+200, false, false, j)
		j += 300
		w.run(j, expire)
		w.nextExpiryJiffies()
	})
	if allocs != 0 {
		t.Errorf("run: %v allocs per run, want 0", allocs)
	}
}

func TestDumpListsTimersByLevelAndBucket(t *testing.T) {
	const clk = 1000000
	var w wheel
	w.reset(1000, clk)
	timers := make([]Timer, 4)
	for i, d := range []uint64{100, 5, 100, 1000} {
		timers[i].function = dumpTestCallback
		w.mod(&timers[i], clk+d, false, false, clk)
	}
	timers[3].function = nil
	want := `wheel hz=1000 depth=9 clk=1000000 next_expiry=1000006 recalc=false timers_pending=true
level 0 bucket 6 (idx 6): expires=1000005 fires=1000006 fn=timer.dumpTestCallback
level 1 bucket 21 (idx 85): expires=1000100 fires=1000104 fn=timer.dumpTestCallback
level 1 bucket 21 (idx 85): expires=1000100 fires=1000104 fn=timer.dumpTestCallback
level 2 bucket 25 (idx 153): expires=1001000 fires=1001024 fn=<nil>
`
	if got := w.describe(); got != want {
		t.Errorf("dump:\n%s\nwant:\n%s", got, want)
	}
}

func dumpTestCallback(*kernel.Ctx, *Timer) {}

func TestResetPanicsWithPendingTimers(t *testing.T) {
	var w wheel
	w.reset(100, 0)
	if w.depth != 8 || w.cutoff != 132120576 || w.timeoutMax != 130023424 {
		t.Fatalf("HZ=100 geometry: %+v", w.depth)
	}
	var tm Timer
	tm.function = func(*kernel.Ctx, *Timer) {}
	w.mod(&tm, 10, false, false, 0)
	defer func() {
		if recover() == nil {
			t.Fatal("reset with a pending timer did not panic")
		}
	}()
	w.reset(1000, 0)
}

// TestTimerQueuedBeyondStaleEmptyNextExpiryIsFoundAtRecalc documents a
// kernel corner case the model checker found: an empty wheel keeps
// next_expiry = (clk at its last recalculation) + TIMER_NEXT_MAX_DELTA
// while arming forwards clk. Once clk is close to that value, a timer
// whose bucket lies beyond it does not move next_expiry, so enqueue leaves
// timers_pending false although a timer is queued. The run at next_expiry
// recalculates and finds it; it still fires exactly at its bucket.
func TestTimerQueuedBeyondStaleEmptyNextExpiryIsFoundAtRecalc(t *testing.T) {
	var w wheel
	w.reset(1000, 0)
	stale := uint64(timerNextMaxDelta)
	j := stale - 1000
	var tm Timer
	tm.function = func(*kernel.Ctx, *Timer) {}
	w.mod(&tm, j+5000, false, false, j) // level 3
	_, bucket := w.calcWheelIndex(j+5000, j)
	if w.clk != j || bucket <= stale {
		t.Fatalf("setup: clk %d bucket %d", w.clk, bucket)
	}
	if w.timersPending || w.nextExpiryJiffies() != stale {
		t.Fatalf("timers_pending %t next_expiry %d, want false and the stale %d", w.timersPending, w.nextExpiry, stale)
	}
	if err := w.verify(); err != nil {
		t.Fatal(err)
	}
	fired := uint64(0)
	expire := func(*Timer) { fired = w.clk - 1 }
	w.run(stale, expire) // nothing due; recalculates
	if !w.timersPending || w.nextExpiry != bucket || fired != 0 {
		t.Fatalf("after run at stale next_expiry: pending %t next %d fired %d", w.timersPending, w.nextExpiry, fired)
	}
	w.run(bucket-1, expire)
	w.run(bucket, expire)
	if fired != bucket {
		t.Fatalf("fired at %d, want %d", fired, bucket)
	}
}

// TestArmMatchesTheWheelsOwnSteps: the arm path's written-out wheel work
// (arm) queues every timer in the bucket, with the bucket expiry, clock,
// next expiry, run floor and kick that the wheel's own steps choose
// (forward + add for an inactive timer, mod's same-bucket shortcut,
// detach and enqueue for a pending one), for deltas on every level, past
// and capped, at every HZ.
func TestArmMatchesTheWheelsOwnSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	noop := func(*kernel.Ctx, *Timer) {}
	for _, hz := range allHZ {
		depth := refDepth(hz)
		for _, clk := range clkSamples(rng, hz) {
			nd := 120
			if raceEnabled {
				nd = 30 // see race_on_test.go
			}
			deltas := deltaSamples(rng, depth, nd)
			for i, d := range deltas {
				for _, lag := range []uint64{0, 1, 70, 5000} {
					for _, pending := range []bool{false, true} {
						var a, b wheel
						a.reset(hz, clk)
						b.reset(hz, clk)
						// Something else pending, so next expiry and forward matter.
						pa, pb := Timer{function: noop}, Timer{function: noop}
						a.mod(&pa, clk+300, false, false, clk)
						b.mod(&pb, clk+300, false, false, clk)
						ta, tb := Timer{function: noop}, Timer{function: noop}
						if pending {
							first := clk + uint64(deltas[(i+1)%len(deltas)])
							a.mod(&ta, first, false, false, clk)
							b.mod(&tb, first, false, false, clk)
						}
						now := clk + lag
						expires := now + uint64(d)
						if pending && ta.expires == expires {
							continue // the caller's same-expiry shortcut
						}
						kickA := a.arm(&ta, expires, now)
						var kickB bool
						if pending {
							_, kickB = b.modKick(&tb, expires, false, false, now)
						} else {
							b.forward(now)
							tb.expires = expires
							kickB = b.add(&tb, now)
						}
						if ta.wheelIdx() != tb.wheelIdx() || ta.expires != tb.expires || kickA != kickB || a.clk != b.clk ||
							a.nextExpiry != b.nextExpiry || a.nextExpiryRecalc != b.nextExpiryRecalc || a.timersPending != b.timersPending ||
							a.runFloorSet != b.runFloorSet || a.runFloor != b.runFloor || a.pendingMap != b.pendingMap {
							t.Fatalf("HZ=%d clk=%d pending=%t now=clk+%d delta=%d: arm idx %d kick %t %s; the wheel's steps idx %d kick %t %s",
								hz, clk, pending, lag, d, ta.wheelIdx(), kickA, a.describe(), tb.wheelIdx(), kickB, b.describe())
						}
						if err := a.verify(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
}

// TestATimerQueuedDueByATaskDuringACatchUpRunWaitsForTheNextTick: a run
// that catches up on a late tick (clk behind now) drops the lock for each
// callback; a task of the same CPU that arms a timer already due meanwhile
// (a real-time task's goroutine runs beside its CPU's softirq) sets the run
// floor to the next tick and holds the run there (timerBase.raiseFloor sets
// floorHolds), so the timer does not fire in the jiffy it was armed in, as
// in the kernel, where that task could only have run after the softirq. An
// arm from another CPU, or from the run's own callbacks, does not hold the
// run: the kernel's run in progress picks such a timer up.
func TestATimerQueuedDueByATaskDuringACatchUpRunWaitsForTheNextTick(t *testing.T) {
	for _, holds := range []bool{true, false} {
		const clk, now = 1000, 1003
		var w wheel
		w.reset(1000, clk)
		var a, b Timer
		fired := map[*Timer]uint64{}
		a.function, b.function = func(*kernel.Ctx, *Timer) {}, func(*kernel.Ctx, *Timer) {}
		w.mod(&a, clk, false, false, clk) // due at clk+1, run late at now
		expire := func(tm *Timer) {
			fired[tm] = now
			if tm == &a {
				// The task arms b for a jiffy long past, with the
				// jiffies it read: now.
				w.arm(&b, now-5, now)
				if w.runFloorSet {
					w.floorHolds = holds
				}
			}
		}
		w.run(now, expire)
		if _, ok := fired[&a]; !ok {
			t.Fatalf("holds=%v: the late timer did not run", holds)
		}
		_, ranB := fired[&b]
		if holds && ranB {
			t.Errorf("a task's timer queued due during the run fired in the jiffy it was armed in (%d)", now)
		}
		if !holds && !ranB {
			t.Errorf("a timer queued due by another CPU during the run did not fire in it, as the kernel's would")
		}
		if holds {
			w.run(now, expire) // the same jiffy's softirq again: still held
			if _, ok := fired[&b]; ok {
				t.Errorf("held timer fired in the same jiffy on a second run")
			}
			w.run(now+1, func(tm *Timer) { fired[tm] = now + 1 })
			if got, ok := fired[&b]; !ok || got != now+1 {
				t.Errorf("held timer: fired %v at %d, want at the next tick %d", ok, got, now+1)
			}
		}
	}
}
