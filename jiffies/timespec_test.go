package jiffies_test

import (
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"testing"

	"github.com/kdefer/kdefer/jiffies"
)

// A math/big model of timespec64_to_jiffies and friends, written from the C
// text of include/linux/jiffies.h and kernel/time/time.c for a 64-bit kernel.
// Every constant is rederived here from its #define; every place where C
// arithmetic wraps (u64, unsigned long, and the long tv_nsec + TICK_NSEC - 1
// and tv_usec * NSEC_PER_USEC) is an explicit wrap; everything else is
// exact.

var hzs = []jiffies.HZ{jiffies.HZ100, jiffies.HZ250, jiffies.HZ300, jiffies.HZ1000}

func bi(x int64) *big.Int        { return big.NewInt(x) }
func bu(x uint64) *big.Int       { return new(big.Int).SetUint64(x) }
func two(n uint) *big.Int        { return new(big.Int).Lsh(bi(1), n) }
func add(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }
func sub(a, b *big.Int) *big.Int { return new(big.Int).Sub(a, b) }
func mul(a, b *big.Int) *big.Int { return new(big.Int).Mul(a, b) }

// quo is C's truncating division.
func quo(a, b *big.Int) *big.Int { return new(big.Int).Quo(a, b) }

// rem is C's %, with the sign of the dividend.
func rem(a, b *big.Int) *big.Int { return new(big.Int).Rem(a, b) }

// u64 is the conversion to u64 / unsigned long: reduction modulo 2^64.
func u64(x *big.Int) *big.Int { return new(big.Int).Mod(x, two(64)) }

// s64 is two's-complement wrap to long.
func s64(x *big.Int) *big.Int {
	m := u64(x)
	if m.Cmp(two(63)) >= 0 {
		m.Sub(m, two(64))
	}
	return m
}

type model struct {
	tick                 *big.Int // TICK_NSEC = (NSEC_PER_SEC + HZ/2) / HZ
	sc                   uint     // SEC_JIFFIE_SC
	secConv, nsecConv    *big.Int // SEC_CONVERSION, NSEC_CONVERSION
	maxSec               *big.Int // MAX_SEC_IN_JIFFIES, 64-bit
	exactSecConvNum, den *big.Int // NSEC_PER_SEC << SC, TICK_NSEC (the exact ratio)
}

func newModel(hz jiffies.HZ) model {
	h := int64(hz)
	nsPerSec := bi(1e9)
	tick := quo(add(nsPerSec, bi(h/2)), bi(h))
	var shift uint
	switch {
	case h >= 96 && h < 192:
		shift = 7
	case h >= 192 && h < 384:
		shift = 8
	case h >= 384 && h < 768:
		shift = 9
	case h >= 768 && h < 1536:
		shift = 10
	}
	// #if !((((NSEC_PER_SEC << 2) / TICK_NSEC) << (SEC_JIFFIE_SC - 2)) & 0x80000000)
	sc := 31 - shift
	probe := new(big.Int).Lsh(quo(new(big.Int).Lsh(nsPerSec, 2), tick), sc-2)
	if new(big.Int).And(probe, bi(0x80000000)).Sign() == 0 {
		sc = 32 - shift
	}
	ceilDiv := func(a *big.Int) *big.Int { return quo(add(a, sub(tick, bi(1))), tick) }
	secConv := ceilDiv(new(big.Int).Lsh(nsPerSec, sc))
	nsecConv := ceilDiv(two(sc + 29))
	// MAX_JIFFY_OFFSET = (LONG_MAX >> 1) - 1
	maxJ := sub(new(big.Int).Rsh(bi(math.MaxInt64), 1), bi(1))
	nom := mul(new(big.Int).Rsh(maxJ, sc), tick)
	// SH_DIV(NOM, DEN, 1) - 1
	shDiv := add(new(big.Int).Lsh(quo(nom, nsPerSec), 1),
		quo(add(new(big.Int).Lsh(rem(nom, nsPerSec), 1), quo(nsPerSec, bi(2))), nsPerSec))
	return model{
		tick: tick, sc: sc, secConv: secConv, nsecConv: nsecConv,
		maxSec:          sub(shDiv, bi(1)),
		exactSecConvNum: new(big.Int).Lsh(nsPerSec, sc), den: tick,
	}
}

// toJiffies is __timespec64_to_jiffies(u64 sec, long nsec).
func (m model) toJiffies(sec *big.Int, nsec *big.Int) uint64 {
	sec = u64(sec)
	nsec = s64(add(nsec, sub(m.tick, bi(1))))
	if sec.Cmp(m.maxSec) >= 0 {
		sec = m.maxSec
		nsec = bi(0)
	}
	secPart := u64(mul(sec, m.secConv))
	nsecPart := new(big.Int).Rsh(u64(mul(u64(nsec), m.nsecConv)), 29)
	return new(big.Int).Rsh(u64(add(secPart, nsecPart)), m.sc).Uint64()
}

func (m model) timespec64ToJiffies(ts jiffies.Timespec64) uint64 {
	return m.toJiffies(bi(ts.Sec), bi(ts.Nsec))
}

// timevalToJiffies is the 5.5 timeval_to_jiffies:
// __timespec_to_jiffies(tv_sec, tv_usec * NSEC_PER_USEC).
func (m model) timevalToJiffies(tv jiffies.Timeval) uint64 {
	return m.toJiffies(bi(tv.Sec), s64(mul(bi(tv.Usec), bi(1000))))
}

// jiffiesToTimespec64: div_u64_rem((u64)j * TICK_NSEC, NSEC_PER_SEC, &rem).
func (m model) jiffiesToTimespec64(j uint64) jiffies.Timespec64 {
	n := u64(mul(bu(j), m.tick))
	return jiffies.Timespec64{Sec: quo(n, bi(1e9)).Int64(), Nsec: rem(n, bi(1e9)).Int64()}
}

// timespecEdges returns the edge-case inputs for one HZ.
func timespecEdges(hz jiffies.HZ, m model) []jiffies.Timespec64 {
	tick := hz.TickNsec()
	maxSec := m.maxSec.Int64()
	out := []jiffies.Timespec64{
		{0, 0}, {0, 1}, {0, tick - 1}, {0, tick}, {0, tick + 1}, {0, 2*tick - 1},
		{0, 2 * tick}, {0, 999999999}, {1, 0}, {1, 1}, {1, tick - 1}, {1, tick},
		{59, 999999999}, {3600, 500000000}, {86400 * 365, 123456789},
		{1 << 31, 0}, {1 << 32, 999999999}, {4607, 0}, {4608, 1},
		{maxSec - 2, 999999999}, {maxSec - 1, 0}, {maxSec - 1, 999999999},
		{maxSec, 0}, {maxSec, 999999999}, {maxSec + 1, 0},
		{math.MaxInt64, 0}, {math.MaxInt64, 999999999},
		// Out of range, wrapped exactly as the kernel's u64/long arithmetic.
		{-1, 0}, {math.MinInt64, 0}, {0, -1}, {0, -tick}, {0, -tick + 1},
		{0, 1e9}, {0, 1 << 40}, {0, math.MaxInt64}, {0, math.MaxInt64 - tick + 2},
		{0, math.MinInt64}, {5, -3},
	}
	for k := int64(0); k*tick <= 1e9+tick; k += 7 {
		for d := int64(-1); d <= 1; d++ {
			out = append(out, jiffies.Timespec64{Sec: k % 3, Nsec: k*tick + d})
		}
	}
	return out
}

func TestTimespec64ToJiffiesMatchesTheKernelFormulaOnEdgeValues(t *testing.T) {
	for _, hz := range hzs {
		m := newModel(hz)
		for _, ts := range timespecEdges(hz, m) {
			if got, want := hz.Timespec64ToJiffies(ts), m.timespec64ToJiffies(ts); got != want {
				t.Errorf("HZ=%d Timespec64ToJiffies(%+v) = %d, kernel formula %d", hz, ts, got, want)
			}
			if got, want := hz.TimespecToJiffies(ts), m.timespec64ToJiffies(ts); got != want {
				t.Errorf("HZ=%d TimespecToJiffies(%+v) = %d, kernel formula %d", hz, ts, got, want)
			}
		}
	}
}

func TestTimespec64ToJiffiesMatchesTheKernelFormulaOnRandomValues(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, hz := range hzs {
		m := newModel(hz)
		for range 20000 {
			ts := jiffies.Timespec64{Sec: int64(r.Uint64()), Nsec: int64(r.Uint64())}
			switch r.Intn(3) {
			case 0:
				ts.Sec, ts.Nsec = r.Int63n(m.maxSec.Int64()+2), r.Int63n(1e9)
			case 1:
				ts.Sec, ts.Nsec = r.Int63n(1000), r.Int63n(1e9)
			}
			if got, want := hz.Timespec64ToJiffies(ts), m.timespec64ToJiffies(ts); got != want {
				t.Fatalf("HZ=%d Timespec64ToJiffies(%+v) = %d, kernel formula %d", hz, ts, got, want)
			}
		}
	}
}

func TestTimespecConstantsAreThoseOfJiffiesH(t *testing.T) {
	// Hand-checked values of the derived macros; the model above derives
	// them from the #defines, so this pins the model as well.
	want := map[jiffies.HZ]struct {
		sc                        uint
		secConv, nsecConv, maxSec int64
	}{
		jiffies.HZ100:  {25, 3355443200, 1801439851, 2748779068},
		jiffies.HZ250:  {24, 4194304000, 2251799814, 2199023255},
		jiffies.HZ300:  {23, 2516582652, 1351080024, 3665038392},
		jiffies.HZ1000: {22, 4194304000, 2251799814, 2199023255},
	}
	for _, hz := range hzs {
		m, w := newModel(hz), want[hz]
		if m.sc != w.sc || m.secConv.Int64() != w.secConv || m.nsecConv.Int64() != w.nsecConv || m.maxSec.Int64() != w.maxSec {
			t.Errorf("HZ=%d: SEC_JIFFIE_SC=%d SEC_CONVERSION=%v NSEC_CONVERSION=%v MAX_SEC_IN_JIFFIES=%v, want %+v",
				hz, m.sc, m.secConv, m.nsecConv, m.maxSec, w)
		}
	}
}

func TestTimespec64ToJiffiesClampsAtMaxSecInJiffies(t *testing.T) {
	want := map[jiffies.HZ]uint64{
		jiffies.HZ100:  274877906800,  // 2748779068 s * 100
		jiffies.HZ250:  549755813750,  // 2199023255 s * 250
		jiffies.HZ300:  1099511627700, // 3665038392 s * 300.00003
		jiffies.HZ1000: 2199023255000, // 2199023255 s * 1000
	}
	for _, hz := range hzs {
		m := newModel(hz)
		maxSec := m.maxSec.Int64()
		clamp := hz.Timespec64ToJiffies(jiffies.Timespec64{Sec: maxSec})
		if clamp != want[hz] {
			t.Errorf("HZ=%d: clamp value %d, want %d", hz, clamp, want[hz])
		}
		for _, ts := range []jiffies.Timespec64{
			{maxSec, 999999999}, {maxSec + 1, 0}, {math.MaxInt64, 5}, {-1, 999999999},
		} {
			if got := hz.Timespec64ToJiffies(ts); got != clamp {
				t.Errorf("HZ=%d %+v: %d jiffies, want the clamp %d (Nsec ignored)", hz, ts, got, clamp)
			}
		}
		// One ns below the clamp the exact ceiling is the clamp value; at
		// HZ=300 SEC_CONVERSION's excess adds a jiffy on top, so there
		// the clamped value is smaller than the one just below it.
		wantBelow := clamp
		if hz == jiffies.HZ300 {
			wantBelow = clamp + 1
		}
		if below := hz.Timespec64ToJiffies(jiffies.Timespec64{Sec: maxSec - 1, Nsec: 999999999}); below != wantBelow {
			t.Errorf("HZ=%d: one ns below the clamp gives %d, want %d", hz, below, wantBelow)
		}
		if below := hz.Timespec64ToJiffies(jiffies.Timespec64{Sec: maxSec - 1}); below >= clamp {
			t.Errorf("HZ=%d: one second below the clamp gives %d, not below the clamp %d", hz, below, clamp)
		}
		if clamp >= jiffies.MaxJiffyOffset>>20 {
			t.Errorf("HZ=%d: clamp %d is not far below MAX_JIFFY_OFFSET", hz, clamp)
		}
	}
}

// ceilJiffies is the exact number of TICK_NSEC jiffies a duration needs.
func ceilJiffies(m model, ts jiffies.Timespec64) *big.Int {
	ns := add(mul(bi(ts.Sec), bi(1e9)), bi(ts.Nsec))
	return quo(add(ns, sub(m.tick, bi(1))), m.tick)
}

func TestTimespec64ToJiffiesNeverRoundsBelowTheExactDuration(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, hz := range hzs {
		m := newModel(hz)
		tick := hz.TickNsec()
		// The excess allowed by the kernel's rounded-up SEC_CONVERSION:
		// Sec * (SEC_CONVERSION - exact) / 2^SC jiffies, plus one for the
		// shifted-off bits. It is zero at HZ=100, 250 and 1000.
		surplus := sub(mul(m.secConv, m.den), m.exactSecConvNum) // in units of 1/(TICK_NSEC<<SC)
		check := func(ts jiffies.Timespec64) {
			got := bu(hz.Timespec64ToJiffies(ts))
			exact := ceilJiffies(m, ts)
			if got.Cmp(exact) < 0 {
				t.Fatalf("HZ=%d %+v: %v jiffies, fewer than the exact %v", hz, ts, got, exact)
			}
			slack := add(quo(mul(bi(ts.Sec), surplus), new(big.Int).Lsh(m.den, m.sc)), bi(1))
			if surplus.Sign() == 0 {
				slack = bi(0) // exact multipliers: the result is the ceiling
			}
			if d := sub(got, exact); d.Cmp(slack) > 0 {
				t.Fatalf("HZ=%d %+v: %v jiffies, %v above the exact %v (allowed %v)", hz, ts, got, d, exact, slack)
			}
		}
		for k := int64(0); k*tick < 1e9; k++ {
			for d := int64(-1); d <= 1; d++ {
				if n := k*tick + d; n >= 0 && n < 1e9 {
					check(jiffies.Timespec64{Sec: 0, Nsec: n})
					check(jiffies.Timespec64{Sec: 7, Nsec: n})
				}
			}
		}
		for range 25000 {
			check(jiffies.Timespec64{Sec: r.Int63n(m.maxSec.Int64()), Nsec: r.Int63n(1e9)})
			check(jiffies.Timespec64{Sec: r.Int63n(100), Nsec: r.Int63n(1e9)})
			// Whole numbers of jiffies, and one ns either side: the
			// ceiling's boundaries, where an excess shows first.
			ts := hz.JiffiesToTimespec64(uint64(r.Int63n(m.maxSec.Int64() * int64(hz))))
			check(ts)
			if ts.Nsec > 0 && ts.Nsec < 999999999 {
				check(jiffies.Timespec64{Sec: ts.Sec, Nsec: ts.Nsec - 1})
				check(jiffies.Timespec64{Sec: ts.Sec, Nsec: ts.Nsec + 1})
			}
		}
	}
}

func TestTimespec64ToJiffiesAtHZ300OvershootsOnlyThroughSecConversion(t *testing.T) {
	hz := jiffies.HZ300
	m := newModel(hz)
	// A whole number of jiffies round-trips exactly up to 1470 jiffies
	// (4.9 s); from 1471 on SEC_CONVERSION's excess adds one.
	for j := uint64(0); j < 1471; j++ {
		if got := hz.Timespec64ToJiffies(hz.JiffiesToTimespec64(j)); got != j {
			t.Fatalf("%d jiffies -> %+v -> %d", j, hz.JiffiesToTimespec64(j), got)
		}
	}
	if got := hz.Timespec64ToJiffies(hz.JiffiesToTimespec64(1471)); got != 1472 {
		t.Fatalf("1471 jiffies -> %+v -> %d, want 1472", hz.JiffiesToTimespec64(1471), got)
	}
	// The excess reaches 149 jiffies one ns below the clamp, and 150 for
	// the last whole number of jiffies before it.
	ts := jiffies.Timespec64{Sec: m.maxSec.Int64() - 1, Nsec: 999999999}
	got, exact := hz.Timespec64ToJiffies(ts), ceilJiffies(m, ts).Uint64()
	if got < exact || got-exact != 149 {
		t.Fatalf("%+v: %d jiffies, exact %d: excess %d, want 149", ts, got, exact, got-exact)
	}
	last := uint64(m.maxSec.Int64()*1e9-1) / uint64(hz.TickNsec())
	ts = hz.JiffiesToTimespec64(last)
	if got := hz.Timespec64ToJiffies(ts); got != last+150 {
		t.Fatalf("%d jiffies -> %+v -> %d, want %d", last, ts, got, last+150)
	}
}

func TestJiffiesToTimespec64MatchesTheKernelFormula(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, hz := range hzs {
		m := newModel(hz)
		js := []uint64{0, 1, 2, uint64(hz) - 1, uint64(hz), uint64(hz) + 1, 1000, 3 * uint64(hz),
			hz.InitialJiffies(), jiffies.MaxJiffyOffset, math.MaxUint64,
			math.MaxUint64 / uint64(hz.TickNsec()), math.MaxUint64/uint64(hz.TickNsec()) + 1}
		for range 10000 {
			js = append(js, r.Uint64(), r.Uint64()>>20)
		}
		for _, j := range js {
			want := m.jiffiesToTimespec64(j)
			if got := hz.JiffiesToTimespec64(j); got != want {
				t.Fatalf("HZ=%d JiffiesToTimespec64(%d) = %+v, kernel formula %+v", hz, j, got, want)
			}
			if got := hz.JiffiesToTimespec(j); got != want {
				t.Fatalf("HZ=%d JiffiesToTimespec(%d) = %+v, kernel formula %+v", hz, j, got, want)
			}
			wantTV := jiffies.Timeval{Sec: want.Sec, Usec: want.Nsec / 1000}
			if got := hz.JiffiesToTimeval(j); got != wantTV {
				t.Fatalf("HZ=%d JiffiesToTimeval(%d) = %+v, kernel formula %+v", hz, j, got, wantTV)
			}
		}
	}
}

func TestJiffiesToTimespec64IsNormalizedAndUsesTickNsec(t *testing.T) {
	for _, hz := range hzs {
		for j := uint64(0); j < 5*uint64(hz); j++ {
			ts := hz.JiffiesToTimespec64(j)
			if ts.Nsec < 0 || ts.Nsec >= 1e9 || ts.Sec*1e9+ts.Nsec != int64(j)*hz.TickNsec() {
				t.Fatalf("HZ=%d j=%d: %+v, want %d ns normalized", hz, j, ts, int64(j)*hz.TickNsec())
			}
		}
	}
	// HZ=300: a jiffy is 3333333 ns, so 300 jiffies fall 100 ns short of 1 s.
	if got := jiffies.HZ300.JiffiesToTimespec64(300); got != (jiffies.Timespec64{Sec: 0, Nsec: 999999900}) {
		t.Fatalf("HZ=300: 300 jiffies = %+v, want {0 999999900}", got)
	}
}

func TestTimevalToJiffiesIsTheTimespecConversionOfUsecTimes1000(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for _, hz := range hzs {
		m := newModel(hz)
		tickUs := hz.TickNsec() / 1000
		tvs := []jiffies.Timeval{
			{0, 0}, {0, 1}, {0, tickUs - 1}, {0, tickUs}, {0, tickUs + 1}, {0, 999999},
			{1, 0}, {1, 999999}, {m.maxSec.Int64(), 999999}, {m.maxSec.Int64() - 1, 999999},
			{-1, 0}, {0, -1}, {0, math.MaxInt64}, {0, math.MaxInt64 / 1000}, {0, math.MinInt64},
		}
		for range 10000 {
			tvs = append(tvs, jiffies.Timeval{Sec: r.Int63n(1 << 33), Usec: r.Int63n(1e6)},
				jiffies.Timeval{Sec: int64(r.Uint64()), Usec: int64(r.Uint64())})
		}
		for _, tv := range tvs {
			want := m.timevalToJiffies(tv)
			if got := hz.TimevalToJiffies(tv); got != want {
				t.Fatalf("HZ=%d TimevalToJiffies(%+v) = %d, kernel formula %d", hz, tv, got, want)
			}
			if tv.Usec >= 0 && tv.Usec < 1e6 {
				ts := jiffies.Timespec64{Sec: tv.Sec, Nsec: tv.Usec * 1000}
				if got := hz.Timespec64ToJiffies(ts); got != want {
					t.Fatalf("HZ=%d %+v: timespec conversion %d, timeval %d", hz, tv, got, want)
				}
			}
		}
	}
}

func TestJiffiesRoundTripThroughTimespecIsExactBelowTheClamp(t *testing.T) {
	for _, hz := range hzs {
		for _, j := range []uint64{0, 1, 2, 3, 299, 300, 301, 12345, 1 << 20, 1 << 30, 1 << 36} {
			if hz == jiffies.HZ300 && j > 1470 {
				continue // SEC_CONVERSION's excess shows from 1471 jiffies on
			}
			if got := hz.Timespec64ToJiffies(hz.JiffiesToTimespec64(j)); got != j {
				t.Errorf("HZ=%d: %d jiffies -> %+v -> %d", hz, j, hz.JiffiesToTimespec64(j), got)
			}
			if got := hz.TimevalToJiffies(hz.JiffiesToTimeval(j)); got != j {
				t.Errorf("HZ=%d: %d jiffies -> %+v -> %d", hz, j, hz.JiffiesToTimeval(j), got)
			}
		}
	}
}

func TestTimespecConversionsPanicOnInvalidHZ(t *testing.T) {
	for name, f := range map[string]func(jiffies.HZ){
		"Timespec64ToJiffies": func(h jiffies.HZ) { h.Timespec64ToJiffies(jiffies.Timespec64{}) },
		"JiffiesToTimespec64": func(h jiffies.HZ) { h.JiffiesToTimespec64(1) },
		"TimevalToJiffies":    func(h jiffies.HZ) { h.TimevalToJiffies(jiffies.Timeval{}) },
		"JiffiesToTimeval":    func(h jiffies.HZ) { h.JiffiesToTimeval(1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with HZ=123 did not panic", name)
				}
			}()
			f(123)
		}()
	}
}

// Converting a select(2)-style timeout: 10.5 ms is 2.625 ticks at HZ=250,
// rounded up to 3; 3 ticks back are 12 ms.
func ExampleHZ_Timespec64ToJiffies() {
	hz := jiffies.HZ250
	j := hz.Timespec64ToJiffies(jiffies.Timespec64{Sec: 0, Nsec: 10500000})
	fmt.Println(j, hz.JiffiesToTimespec64(j))
	fmt.Println(hz.TimevalToJiffies(jiffies.Timeval{Sec: 1, Usec: 1}), hz.JiffiesToTimeval(251))
	// Output:
	// 3 {0 12000000}
	// 251 {1 4000}
}
