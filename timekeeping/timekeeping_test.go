package timekeeping_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timekeeping"
)

// boot boots a virtual kernel for a test and shuts it down at the end.
func boot(t *testing.T, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	cfg.Virtual = true
	return ktest.Boot(t, cfg)
}

func run(t *testing.T, k *kernel.Kernel, d time.Duration) {
	t.Helper()
	ktest.Run(t, k, d)
}

// y2k is the virtual realtime clock at boot, 2000-01-01T00:00:00Z.
const y2k = 946684800

func ts(sec, nsec int64) jiffies.Timespec64 { return jiffies.Timespec64{Sec: sec, Nsec: nsec} }

func TestGetCyclesIsAOneGigahertzCounterOfCLOCK_MONOTONIC(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	c := k.IdleCtx(0) // reads the clock between runs
	c0 := timekeeping.GetCycles(c)
	if c0 != uint64(k.Now()) {
		t.Fatalf("at boot: %d cycles, CLOCK_MONOTONIC %d ns", c0, k.Now())
	}
	run(t, k, 1234567*time.Nanosecond)
	if d := timekeeping.GetCycles(c) - c0; d != 1234567 {
		t.Fatalf("1234567 ns later the TSC advanced %d cycles, want 1234567", d)
	}
	// Frozen between runs: virtual time does not move on its own.
	if a, b := timekeeping.GetCycles(c), timekeeping.GetCycles(c); a != b || a != uint64(k.Now()) {
		t.Fatalf("two reads %d, %d; CLOCK_MONOTONIC %d", a, b, k.Now())
	}
}

func TestKtimeGetRealTs64StartsAt2000AndAdvancesWithTheClock(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	c := k.IdleCtx(0) // reads the clock between runs
	if got := timekeeping.KtimeGetRealTs64(c); got != ts(y2k, 0) {
		t.Fatalf("at boot: %+v, want {%d 0} (2000-01-01T00:00:00Z)", got, y2k)
	}
	run(t, k, 1500*time.Millisecond+7)
	if got := timekeeping.KtimeGetRealTs64(c); got != ts(y2k+1, 500000007) {
		t.Fatalf("after 1.500000007 s: %+v, want {%d 500000007}", got, y2k+1)
	}
	run(t, k, 499999993)
	if got := timekeeping.KtimeGetRealTs64(c); got != ts(y2k+2, 0) {
		t.Fatalf("after 2 s: %+v, want {%d 0}", got, y2k+2)
	}
	if ns := timekeeping.KtimeGetRealNs(c); timekeeping.KtimeGetRealTs64(c) != ts(ns/1e9, ns%1e9) {
		t.Fatalf("KtimeGetRealTs64 %+v disagrees with KtimeGetRealNs %d", timekeeping.KtimeGetRealTs64(c), ns)
	}
}

func TestCoarseRealtimeIsTheWallClockAtTheLastJiffy(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		k := boot(t, kernel.Config{CPUs: 1, HZ: hz, Quiet: true})
		c := k.IdleCtx(0) // reads the clock between runs
		tick := k.TickNsec()
		check := func(when string) {
			t.Helper()
			now := k.Now()
			fine, coarse := timekeeping.KtimeGetRealTs64(c), timekeeping.KtimeGetCoarseRealTs64(c)
			want := k.RealtimeOffset() + now/tick*tick
			if coarse != ts(want/1e9, want%1e9) {
				t.Fatalf("HZ=%d %s (now %d ns): coarse %+v, want %d ns", hz, when, now, coarse, want)
			}
			ticks := int64(k.Jiffies() - k.InitialJiffies())
			if got := coarse.Sec*1e9 + coarse.Nsec; got != k.RealtimeOffset()+ticks*tick {
				t.Fatalf("HZ=%d %s: coarse %d ns, want boot realtime + %d jiffies", hz, when, got, ticks)
			}
			d := (fine.Sec-coarse.Sec)*1e9 + fine.Nsec - coarse.Nsec
			if d < 0 || d >= tick {
				t.Fatalf("HZ=%d %s: fine %+v - coarse %+v = %d ns, want [0, %d)", hz, when, fine, coarse, d, tick)
			}
			if timekeeping.CurrentKernelTime(c) != coarse {
				t.Fatalf("HZ=%d %s: CurrentKernelTime %+v, coarse %+v", hz, when, timekeeping.CurrentKernelTime(c), coarse)
			}
		}
		check("at boot")
		steps := []int64{1, tick - 2, 1, 1, tick - 1, 3 * tick / 2, tick / 2, 7, 999999999, int64(5 * time.Minute), 12345}
		for i, step := range steps {
			run(t, k, time.Duration(step))
			check(fmt.Sprintf("after step %d", i))
		}
	}
}

func TestCoarseRealtimeStandsStillWithinAJiffyAndJumpsByTickNsec(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, HZ: 300, Quiet: true})
	c := k.IdleCtx(0)    // reads the clock between runs
	tick := k.TickNsec() // 3333333
	run(t, k, time.Duration(5*tick+1))
	a := timekeeping.KtimeGetCoarseRealTs64(c)
	if a != ts(y2k, 5*tick) {
		t.Fatalf("coarse %+v, want {%d %d}", a, y2k, 5*tick)
	}
	run(t, k, time.Duration(tick-2)) // 6*tick - 1: still in jiffy 5
	if b := timekeeping.KtimeGetCoarseRealTs64(c); b != a {
		t.Fatalf("within the same jiffy coarse moved from %+v to %+v", a, b)
	}
	if fine := timekeeping.KtimeGetRealTs64(c); fine != ts(y2k, 6*tick-1) {
		t.Fatalf("fine %+v, want {%d %d}", fine, y2k, 6*tick-1)
	}
	run(t, k, 1) // 6*tick: the next jiffy
	if co := timekeeping.KtimeGetCoarseRealTs64(c); co != ts(y2k, 6*tick) || co != timekeeping.KtimeGetRealTs64(c) {
		t.Fatalf("on the jiffy boundary coarse %+v, fine %+v, want both {%d %d}", co, timekeeping.KtimeGetRealTs64(c), y2k, 6*tick)
	}
	// 300 jiffies at HZ=300 are 100 ns short of a second.
	run(t, k, time.Duration(294*tick))
	if co := timekeeping.KtimeGetCoarseRealTs64(c); co != ts(y2k, 999999900) {
		t.Fatalf("after 300 jiffies coarse %+v, want {%d 999999900}", co, y2k)
	}
}

func TestCoarseRealtimeCountsJiffiesFromBootNotFromTheEpoch(t *testing.T) {
	base := time.Date(2024, 2, 29, 12, 0, 0, 123456789, time.UTC)
	k := boot(t, kernel.Config{CPUs: 1, HZ: 100, Quiet: true, RealtimeBase: base})
	c := k.IdleCtx(0)              // reads the clock between runs
	run(t, k, 25*time.Millisecond) // 2.5 ticks at HZ=100
	want := base.Add(20 * time.Millisecond)
	if got := timekeeping.KtimeGetCoarseRealTs64(c); got != ts(want.Unix(), int64(want.Nanosecond())) {
		t.Fatalf("coarse %+v, want %v (boot + 2 jiffies)", got, want)
	}
	fine := base.Add(25 * time.Millisecond)
	if got := timekeeping.KtimeGetRealTs64(c); got != ts(fine.Unix(), int64(fine.Nanosecond())) {
		t.Fatalf("fine %+v, want %v", got, fine)
	}
}

func TestDoGettimeofdayTruncatesToMicroseconds(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	c := k.IdleCtx(0) // reads the clock between runs
	for _, tc := range []struct {
		step time.Duration
		want jiffies.Timeval
	}{
		{0, jiffies.Timeval{Sec: y2k, Usec: 0}},
		{999, jiffies.Timeval{Sec: y2k, Usec: 0}},
		{1, jiffies.Timeval{Sec: y2k, Usec: 1}},
		{1998, jiffies.Timeval{Sec: y2k, Usec: 2}},
		{time.Second - 2999, jiffies.Timeval{Sec: y2k, Usec: 999999}}, // 999999999 ns
		{1, jiffies.Timeval{Sec: y2k + 1, Usec: 0}},
		{999, jiffies.Timeval{Sec: y2k + 1, Usec: 0}},
		{1, jiffies.Timeval{Sec: y2k + 1, Usec: 1}},
	} {
		if tc.step > 0 {
			run(t, k, tc.step)
		}
		fine := timekeeping.KtimeGetRealTs64(c)
		if got := timekeeping.DoGettimeofday(c); got != tc.want || got.Usec != fine.Nsec/1000 || got.Sec != fine.Sec {
			t.Fatalf("at %+v: DoGettimeofday %+v, want %+v", fine, got, tc.want)
		}
	}
}

func TestWallClockBefore1970KeepsNanosecondsNonNegative(t *testing.T) {
	base := time.Unix(-1, 500) // 1969-12-31T23:59:59.0000005Z
	k := boot(t, kernel.Config{CPUs: 1, HZ: 1000, Quiet: true, RealtimeBase: base})
	c := k.IdleCtx(0) // reads the clock between runs
	if got := timekeeping.KtimeGetRealTs64(c); got != ts(-1, 500) {
		t.Fatalf("fine %+v, want {-1 500} (ns_to_timespec64 of -999999500)", got)
	}
	if got := timekeeping.DoGettimeofday(c); got != (jiffies.Timeval{Sec: -1, Usec: 0}) {
		t.Fatalf("timeval %+v, want {-1 0}", got)
	}
	run(t, k, 1500*time.Microsecond)
	if got := timekeeping.KtimeGetCoarseRealTs64(c); got != ts(-1, 1000500) {
		t.Fatalf("coarse %+v, want {-1 1000500}", got)
	}
	run(t, k, time.Second)
	if got := timekeeping.KtimeGetRealTs64(c); got != ts(0, 1500500) {
		t.Fatalf("fine %+v, want {0 1500500}", got)
	}
}

func TestMktime64AgreesWithTheGregorianCalendar(t *testing.T) {
	days := []uint32{0, 1, 2, 15, 27, 28, 29, 30, 31}
	for year := uint32(1); year <= 2500; year++ {
		for mon := uint32(0); mon <= 14; mon++ { // 0, 13 and 14 normalize like time.Date
			for _, day := range days {
				got := timekeeping.Mktime64(year, mon, day, 0, 0, 0)
				want := time.Date(int(year), time.Month(mon), int(day), 0, 0, 0, 0, time.UTC).Unix()
				if got != want {
					t.Fatalf("Mktime64(%d, %d, %d) = %d, time.Date says %d", year, mon, day, got, want)
				}
			}
		}
	}
	for _, c := range [][6]uint32{
		{1970, 1, 1, 0, 0, 0}, {1969, 12, 31, 23, 59, 59}, {1980, 12, 31, 23, 59, 59},
		{2000, 2, 29, 12, 30, 45}, {1900, 2, 29, 0, 0, 0}, {2100, 2, 29, 0, 0, 0},
		{2400, 2, 29, 0, 0, 0}, {2024, 2, 29, 23, 59, 59}, {2038, 1, 19, 3, 14, 8},
		{2106, 2, 7, 6, 28, 16}, {1582, 10, 15, 0, 0, 0}, {9999, 12, 31, 23, 59, 59},
		{2000, 1, 1, 25, 61, 61}, {2000, 3, 1, 0, 0, 1000000}, {2000, 3, 1, 0, 70000, 0},
		{1000000, 6, 15, 12, 0, 0}, {11767033, 3, 1, 0, 0, 0},
	} {
		got := timekeeping.Mktime64(c[0], c[1], c[2], c[3], c[4], c[5])
		want := time.Date(int(c[0]), time.Month(c[1]), int(c[2]), int(c[3]), int(c[4]), int(c[5]), 0, time.UTC).Unix()
		if got != want {
			t.Errorf("Mktime64%v = %d, time.Date says %d", c, got, want)
		}
	}
}

func TestMktime64HandlesEveryHourMinuteAndSecondOfADay(t *testing.T) {
	for hour := uint32(0); hour <= 24; hour++ {
		for min := uint32(0); min <= 60; min++ {
			for sec := uint32(0); sec <= 60; sec++ {
				got := timekeeping.Mktime64(2016, 12, 31, hour, min, sec)
				want := time.Date(2016, 12, 31, int(hour), int(min), int(sec), 0, time.UTC).Unix()
				if got != want {
					t.Fatalf("Mktime64(2016, 12, 31, %d, %d, %d) = %d, want %d", hour, min, sec, got, want)
				}
			}
		}
	}
}

func TestMktime64DocumentedQuirks(t *testing.T) {
	mk := timekeeping.Mktime64
	// 24:00:00 is midnight at the end of the day (ISO 8601).
	if mk(1999, 12, 31, 24, 0, 0) != mk(2000, 1, 1, 0, 0, 0) {
		t.Error("24:00 is not the next midnight")
	}
	// A leap second is treated as the following second.
	if mk(2016, 12, 31, 23, 59, 60) != mk(2017, 1, 1, 0, 0, 0) {
		t.Error("23:59:60 is not the next second")
	}
	// The 1..12 -> 11, 12, 1..10 shift: January and February belong to the
	// previous March-based year, so the leap day is the last day of it.
	if mk(2000, 3, 1, 0, 0, 0)-mk(2000, 2, 28, 0, 0, 0) != 2*86400 {
		t.Error("2000 has no Feb 29")
	}
	if mk(1900, 3, 1, 0, 0, 0)-mk(1900, 2, 28, 0, 0, 0) != 86400 {
		t.Error("1900 has a Feb 29")
	}
	// Month 0 is December of the previous year, months 13 and 14 January and
	// February of the next; month 15 is no longer March: 367*13/12 = 397
	// days puts it two days late.
	if mk(2000, 0, 1, 0, 0, 0) != mk(1999, 12, 1, 0, 0, 0) {
		t.Error("month 0 is not December of the previous year")
	}
	if mk(2000, 13, 1, 0, 0, 0) != mk(2001, 1, 1, 0, 0, 0) || mk(2000, 14, 1, 0, 0, 0) != mk(2001, 2, 1, 0, 0, 0) {
		t.Error("months 13 and 14 are not Jan and Feb of the next year")
	}
	if got, want := mk(2001, 15, 1, 0, 0, 0), time.Date(2002, 3, 3, 0, 0, 0, 0, time.UTC).Unix(); got != want {
		t.Errorf("month 15 of 2001: %d, want 2002-03-03 %d", got, want)
	}
	// Year 0 in January wraps to year 0xFFFFFFFF in unsigned int.
	if got := mk(0, 1, 1, 0, 0, 0); got != 461011162003200 {
		t.Errorf("Mktime64(0, 1, 1) = %d, want 461011162003200 (year wrapped to 2^32-1)", got)
	}
	if got, want := mk(0, 3, 1, 0, 0, 0), time.Date(0, 3, 1, 0, 0, 0, 0, time.UTC).Unix(); got != want {
		t.Errorf("Mktime64(0, 3, 1) = %d, want %d", got, want)
	}
	// year*365 is unsigned int: it wraps from year 11767034 on, losing
	// exactly 2^32 days.
	got := mk(11767034, 3, 1, 0, 0, 0)
	want := time.Date(11767034, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	if want-got != (1<<32)*86400 {
		t.Errorf("year 11767034: %d, Gregorian %d: difference %d, want 2^32 days", got, want, want-got)
	}
}

func TestMktimeIsMktime64AsUnsignedLong(t *testing.T) {
	if got := timekeeping.Mktime(1980, 12, 31, 23, 59, 59); got != 347155199 {
		t.Fatalf("Mktime(1980-12-31 23:59:59) = %d, want 347155199", got)
	}
	if got := timekeeping.Mktime(1969, 12, 31, 23, 59, 59); got != math.MaxUint64 {
		t.Fatalf("Mktime(1969-12-31 23:59:59) = %d, want (unsigned long)-1", got)
	}
	if got := timekeeping.Mktime(2106, 2, 7, 6, 28, 16); got != 1<<32 {
		t.Fatalf("Mktime(2106-02-07 06:28:16) = %d, want 2^32 (no 32-bit wrap on 64-bit)", got)
	}
}

// The wall clock of a virtual kernel, read the LDD3 ways.
func ExampleDoGettimeofday() {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: 250, Quiet: true})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer func() {
		if err := k.Shutdown(ctx); err != nil {
			panic(err)
		}
	}()
	if err := k.Run(ctx, 10*time.Millisecond+1500); err != nil {
		panic(err)
	}
	c := k.IdleCtx(0)                             // any context will do
	fmt.Println(timekeeping.DoGettimeofday(c))    // microseconds
	fmt.Println(timekeeping.KtimeGetRealTs64(c))  // nanoseconds
	fmt.Println(timekeeping.CurrentKernelTime(c)) // the last jiffy: 2 ticks of 4 ms
	fmt.Println(timekeeping.Mktime64(2000, 1, 1, 0, 0, 0))
	// Output:
	// {946684800 10001}
	// {946684800 10001500}
	// {946684800 8000000}
	// 946684800
}
