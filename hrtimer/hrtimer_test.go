package hrtimer_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timekeeping"
)

// rec is a timer that records when (CLOCK_MONOTONIC) and how it fired.
type rec struct {
	hrtimer.HRTimer
	name   string
	log    *[]string
	at     []int64
	hard   []bool
	soft   []bool
	cpus   []int
	result hrtimer.HRTimerRestart
}

func (r *rec) fire(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
	now := c.Kernel().Now()
	r.at = append(r.at, now)
	r.hard = append(r.hard, c.InHardirq())
	r.soft = append(r.soft, c.InServingSoftirq())
	r.cpus = append(r.cpus, c.CPU())
	if r.log != nil {
		*r.log = append(*r.log, fmt.Sprintf("%s@%d", r.name, now))
	}
	return r.result
}

func newRec(name string, log *[]string, clock hrtimer.ClockID, mode hrtimer.Mode) *rec {
	r := &rec{name: name, log: log}
	hrtimer.Setup(&r.HRTimer, r.fire, clock, mode)
	return r
}

func TestTimersFireInExpiryOrderAtExactlyTheirTime(t *testing.T) {
	k := boot(t, 2, false)
	c := k.IdleCtx(0)
	var log []string
	// Started out of order; d1 and d2 share an expiry and must keep
	// their start order (FIFO, as timerqueue_add puts equal keys right).
	for _, s := range []struct {
		name string
		at   int64
	}{{"c", 3 * ms}, {"a", 1 * ms}, {"d1", 5 * ms}, {"b", 2*ms + 7}, {"d2", 5 * ms}} {
		r := newRec(s.name, &log, hrtimer.ClockMonotonic, hrtimer.ModeRel)
		hrtimer.Start(c, &r.HRTimer, s.at, hrtimer.ModeRel)
	}
	run(t, k, 10*ms)
	want := []string{"a@1000000", "b@2000007", "c@3000000", "d1@5000000", "d2@5000000"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("fired %v, want %v", log, want)
	}
}

func TestAbsoluteAndRelativeStartsFireAtTheSameTime(t *testing.T) {
	k := boot(t, 1, false)
	run(t, k, 3*ms) // now = 3 ms
	c := k.IdleCtx(0)
	abs := newRec("abs", nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	rel := newRec("rel", nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &abs.HRTimer, 5*ms, hrtimer.ModeAbs)
	hrtimer.Start(c, &rel.HRTimer, 2*ms, hrtimer.ModeRel)
	if got := hrtimer.GetExpires(&rel.HRTimer); got != 5*ms {
		t.Fatalf("relative start: expires %d, want %d (now + 2 ms)", got, 5*ms)
	}
	if got := hrtimer.GetRemaining(&abs.HRTimer); got != 2*ms {
		t.Fatalf("GetRemaining = %d, want %d", got, 2*ms)
	}
	run(t, k, 10*ms)
	if !reflect.DeepEqual(abs.at, []int64{5 * ms}) || !reflect.DeepEqual(rel.at, []int64{5 * ms}) {
		t.Fatalf("abs fired %v, rel fired %v, want both [5ms]", abs.at, rel.at)
	}
	// An absolute time in the past fires at the next interrupt.
	late := newRec("late", nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.Start(c, &late.HRTimer, 1*ms, hrtimer.ModeAbs)
	now := k.Now()
	run(t, k, 1*ms)
	if !reflect.DeepEqual(late.at, []int64{now}) {
		t.Fatalf("past timer fired %v, want [%d]", late.at, now)
	}
}

func TestRealtimeTimerFiresAtItsWallClockTime(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	r := newRec("rt", nil, hrtimer.ClockRealtime, hrtimer.ModeAbs)
	var cbReal int64
	hrtimer.Setup(&r.HRTimer, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		cbReal = hrtimer.CbGetTime(t)
		return r.fire(c, t)
	}, hrtimer.ClockRealtime, hrtimer.ModeAbs)
	deadline := timekeeping.KtimeGetRealNs(c) + 4*ms
	hrtimer.Start(c, &r.HRTimer, deadline, hrtimer.ModeAbs)
	if got := hrtimer.GetRemaining(&r.HRTimer); got != 4*ms {
		t.Fatalf("GetRemaining = %d, want %d", got, 4*ms)
	}
	run(t, k, 10*ms)
	if !reflect.DeepEqual(r.at, []int64{4 * ms}) {
		t.Fatalf("realtime timer fired at monotonic %v, want [4ms]", r.at)
	}
	if cbReal != deadline {
		t.Fatalf("CbGetTime in callback = %d, want the wall-clock deadline %d", cbReal, deadline)
	}
}

func TestRelativeRealtimeTimerBecomesMonotonic(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	r := newRec("relrt", nil, hrtimer.ClockRealtime, hrtimer.ModeRel)
	hrtimer.Start(c, &r.HRTimer, 2*ms, hrtimer.ModeRel)
	if got := hrtimer.GetExpires(&r.HRTimer); got != 2*ms {
		t.Fatalf("relative CLOCK_REALTIME timer expires at %d, want monotonic %d", got, 2*ms)
	}
	if !strings.Contains(hrtimer.TimerList(k), " clock 0:\n  .base:       ffff88807fc1e000\n  .index:      0\n  .resolution: 1 nsecs\n  .get_time:   ktime_get\n  .offset:     0 nsecs\nactive timers:\n #0:") {
		t.Fatalf("timer not on the monotonic base:\n%s", hrtimer.TimerList(k))
	}
	run(t, k, 5*ms)
	if !reflect.DeepEqual(r.at, []int64{2 * ms}) {
		t.Fatalf("fired %v, want [2ms]", r.at)
	}
}

func TestBoottimeAndTAITimersFire(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	bt := newRec("boot", nil, hrtimer.ClockBoottime, hrtimer.ModeAbs)
	tai := newRec("tai", nil, hrtimer.ClockTAI, hrtimer.ModeAbsSoft)
	hrtimer.Start(c, &bt.HRTimer, 3*ms, hrtimer.ModeAbs)
	hrtimer.Start(c, &tai.HRTimer, timekeeping.KtimeGetRealNs(c)+2*ms, hrtimer.ModeAbsSoft)
	run(t, k, 5*ms)
	if !reflect.DeepEqual(bt.at, []int64{3 * ms}) || !reflect.DeepEqual(tai.at, []int64{2 * ms}) {
		t.Fatalf("boottime fired %v (want [3ms]), tai fired %v (want [2ms])", bt.at, tai.at)
	}
}

func TestRangeTimerFiresEarlyWhenAnotherExpiryFallsInItsRange(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var log []string
	rng := newRec("range", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	other := newRec("other", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.StartRangeNs(c, &rng.HRTimer, 100*us, 100*us, hrtimer.ModeAbs) // [100µs, 200µs]
	hrtimer.Start(c, &other.HRTimer, 150*us, hrtimer.ModeAbs)
	if s, h := hrtimer.GetSoftExpires(&rng.HRTimer), hrtimer.GetExpires(&rng.HRTimer); s != 100*us || h != 200*us {
		t.Fatalf("range timer expires %d-%d, want 100000-200000", s, h)
	}
	run(t, k, 1*ms)
	want := []string{"other@150000", "range@150000"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("fired %v, want %v (coalesced)", log, want)
	}
}

func TestRangeTimerFiresAtItsHardExpiryWhenNothingElseRuns(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var log []string
	rng := newRec("range", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	early := newRec("early", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.StartRangeNs(c, &rng.HRTimer, 100*us, 100*us, hrtimer.ModeAbs)
	// An expiry before the soft expiry does not take the range timer.
	hrtimer.Start(c, &early.HRTimer, 50*us, hrtimer.ModeAbs)
	run(t, k, 1*ms)
	want := []string{"early@50000", "range@200000"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("fired %v, want %v", log, want)
	}
}

func TestExpiryStopsAtFirstTimerWhoseSoftExpiryIsAhead(t *testing.T) {
	// Queue order (hard expiry): z 550, x 600, y 700. At 550 x is not
	// soft-expired (560), so the queue run stops there and y, although
	// soft-expired since 100, waits for the next run at 600.
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var log []string
	x := newRec("x", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	y := newRec("y", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	z := newRec("z", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.StartRangeNs(c, &x.HRTimer, 560*us, 40*us, hrtimer.ModeAbs)
	hrtimer.StartRangeNs(c, &y.HRTimer, 100*us, 600*us, hrtimer.ModeAbs)
	hrtimer.Start(c, &z.HRTimer, 550*us, hrtimer.ModeAbs)
	run(t, k, 1*ms)
	want := []string{"z@550000", "x@600000", "y@600000"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("fired %v, want %v", log, want)
	}
}

func TestRestartingTimerFiresEveryPeriodExactly(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var at []int64
	var overruns []uint64
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		at = append(at, c.Kernel().Now())
		if len(at) == 5 {
			return hrtimer.NoRestart
		}
		overruns = append(overruns, hrtimer.ForwardNow(t, 1*ms))
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRel)
	run(t, k, 20*ms)
	if want := []int64{1 * ms, 2 * ms, 3 * ms, 4 * ms, 5 * ms}; !reflect.DeepEqual(at, want) {
		t.Fatalf("fired at %v, want %v", at, want)
	}
	if want := []uint64{1, 1, 1, 1}; !reflect.DeepEqual(overruns, want) {
		t.Fatalf("overruns %v, want %v", overruns, want)
	}
	if hrtimer.Active(&tm) {
		t.Fatal("timer still active after returning NoRestart")
	}
}

func TestForwardOverrunCounts(t *testing.T) {
	cases := []struct {
		name                 string
		expires, now, ival   int64
		want                 uint64
		wantSoft, wantExpire int64
	}{
		{"now before expiry", 1000, 999, 100, 0, 1000, 1000},
		{"now at expiry", 1000, 1000, 100, 1, 1100, 1100},
		{"within one interval", 1000, 1050, 100, 1, 1100, 1100},
		{"exactly one interval late: one more", 1000, 1100, 100, 2, 1200, 1200},
		{"one and a half late", 1000, 1150, 100, 2, 1200, 1200},
		{"just under three", 1000, 1299, 100, 3, 1300, 1300},
		{"exactly three late: one more", 1000, 1300, 100, 4, 1400, 1400},
		{"far behind", 0, 1_000_000_007, 1000, 1_000_001, 1_000_001_000, 1_000_001_000},
		{"zero interval clamped to 1 ns", 1000, 1000, 0, 1, 1001, 1001},
		{"negative interval clamped", 1000, 1005, -5, 6, 1006, 1006},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tm hrtimer.HRTimer
			hrtimer.Setup(&tm, nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
			hrtimer.SetExpires(&tm, tc.expires)
			got := hrtimer.Forward(&tm, tc.now, tc.ival)
			if got != tc.want || hrtimer.GetExpires(&tm) != tc.wantExpire || hrtimer.GetSoftExpires(&tm) != tc.wantSoft {
				t.Fatalf("Forward(expires=%d, now=%d, interval=%d) = %d, expires %d-%d; want %d, %d-%d",
					tc.expires, tc.now, tc.ival, got, hrtimer.GetSoftExpires(&tm), hrtimer.GetExpires(&tm),
					tc.want, tc.wantSoft, tc.wantExpire)
			}
		})
	}
	t.Run("range is kept", func(t *testing.T) {
		var tm hrtimer.HRTimer
		hrtimer.Setup(&tm, nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
		hrtimer.SetExpiresRangeNs(&tm, 1000, 50)
		// delta is measured from the hard expiry (1050): 1250-1050 = 200.
		if got := hrtimer.Forward(&tm, 1250, 100); got != 3 {
			t.Fatalf("Forward = %d, want 3", got)
		}
		if s, h := hrtimer.GetSoftExpires(&tm), hrtimer.GetExpires(&tm); s != 1300 || h != 1350 {
			t.Fatalf("expires %d-%d, want 1300-1350", s, h)
		}
	})
}

func TestForwardOfQueuedTimerDoesNothing(t *testing.T) {
	k := boot(t, 1, false)
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.Start(k.IdleCtx(0), &tm, 1000, hrtimer.ModeAbs)
	if got := hrtimer.Forward(&tm, 5000, 100); got != 0 || hrtimer.GetExpires(&tm) != 1000 {
		t.Fatalf("Forward on a queued timer = %d, expires %d; want 0, 1000", got, hrtimer.GetExpires(&tm))
	}
	hrtimer.Cancel(k.IdleCtx(0), &tm)
}

func TestSetExpiresHelpersSaturateLikeKtimeAddSafe(t *testing.T) {
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, nil, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	const secMax = (int64(^uint64(0)>>1) / 1e9) * 1e9
	hrtimer.SetExpiresRange(&tm, 1<<62, 1<<62)
	if got := hrtimer.GetExpires(&tm); got != secMax {
		t.Fatalf("overflowing range: expires %d, want KTIME_SEC_MAX ns %d", got, secMax)
	}
	hrtimer.SetExpiresRangeNs(&tm, 100, 20)
	hrtimer.AddExpires(&tm, 5)
	hrtimer.AddExpiresNs(&tm, 5)
	if s, h := hrtimer.GetSoftExpires(&tm), hrtimer.GetExpires(&tm); s != 110 || h != 130 {
		t.Fatalf("expires %d-%d, want 110-130", s, h)
	}
}

func TestSoftTimersRunInSoftirqAndHardTimersInHardirq(t *testing.T) {
	k := boot(t, 2, false)
	soft := newRec("soft", nil, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	hard := newRec("hard", nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hardExplicit := newRec("hardx", nil, hrtimer.ClockMonotonic, hrtimer.ModeRelHard)
	hrtimer.Start(k.IdleCtx(1), &soft.HRTimer, 1*ms, hrtimer.ModeRelSoft)
	hrtimer.Start(k.IdleCtx(1), &hard.HRTimer, 1*ms, hrtimer.ModeRel)
	hrtimer.Start(k.IdleCtx(0), &hardExplicit.HRTimer, 2*ms, hrtimer.ModeRelHard)
	softBefore := k.SoftirqCount(kernel.HRTimerSoftirq, 1)
	run(t, k, 5*ms)
	if !reflect.DeepEqual(soft.at, []int64{1 * ms}) || soft.hard[0] || !soft.soft[0] || soft.cpus[0] != 1 {
		t.Fatalf("soft timer: at %v hardirq %v softirq %v cpu %v; want [1ms] false true 1", soft.at, soft.hard, soft.soft, soft.cpus)
	}
	if !reflect.DeepEqual(hard.at, []int64{1 * ms}) || !hard.hard[0] || hard.soft[0] || hard.cpus[0] != 1 {
		t.Fatalf("hard timer: at %v hardirq %v softirq %v cpu %v; want [1ms] true false 1", hard.at, hard.hard, hard.soft, hard.cpus)
	}
	if !reflect.DeepEqual(hardExplicit.at, []int64{2 * ms}) || !hardExplicit.hard[0] || hardExplicit.cpus[0] != 0 {
		t.Fatalf("HARD-mode timer: at %v hardirq %v cpu %v", hardExplicit.at, hardExplicit.hard, hardExplicit.cpus)
	}
	if got := k.SoftirqCount(kernel.HRTimerSoftirq, 1) - softBefore; got != 1 {
		t.Fatalf("HRTIMER softirq ran %d times on CPU1, want 1", got)
	}
}

func TestSoftRangeTimerIsNotTakenByHardExpiry(t *testing.T) {
	// A hard interrupt inside a soft timer's range does not raise the
	// softirq: only the soft bases' own hard expiry does (or another soft
	// timer's).
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var log []string
	sr := newRec("softrange", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbsSoft)
	hd := newRec("hard", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	s2 := newRec("soft2", &log, hrtimer.ClockMonotonic, hrtimer.ModeAbsSoft)
	hrtimer.StartRangeNs(c, &sr.HRTimer, 100*us, 200*us, hrtimer.ModeAbsSoft) // [100, 300]
	hrtimer.Start(c, &hd.HRTimer, 150*us, hrtimer.ModeAbs)
	hrtimer.Start(c, &s2.HRTimer, 250*us, hrtimer.ModeAbsSoft)
	run(t, k, 1*ms)
	want := []string{"hard@150000", "soft2@250000", "softrange@250000"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("fired %v, want %v", log, want)
	}
}

func TestStartWithWrongSoftBitWarnsOnceAndKeepsSetupContext(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	r := newRec("r", nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &r.HRTimer, 1*ms, hrtimer.ModeRelSoft)
	hrtimer.Start(c, &r.HRTimer, 1*ms, hrtimer.ModeRelSoft)
	run(t, k, 2*ms)
	if n := strings.Count(logText(k), "WARNING: CPU: 0"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logText(k))
	}
	if len(r.at) != 1 || !r.hard[0] {
		t.Fatalf("fired %v in hardirq %v, want once in hardirq", r.at, r.hard)
	}
}

func TestInvalidClockWarnsAtFirstStartAndUsesMonotonic(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	r := newRec("r", nil, hrtimer.ClockID(5), hrtimer.ModeAbs)
	hrtimer.Start(c, &r.HRTimer, 1*ms, hrtimer.ModeAbs)
	hrtimer.Start(c, &r.HRTimer, 1*ms, hrtimer.ModeAbs)
	run(t, k, 2*ms)
	if n := strings.Count(logText(k), "Invalid clockid 5. Using MONOTONIC"); n != 1 {
		t.Fatalf("%d reports, want 1:\n%s", n, logText(k))
	}
	if !reflect.DeepEqual(r.at, []int64{1 * ms}) {
		t.Fatalf("fired %v, want [1ms]", r.at)
	}
}

func TestTryToCancelReturnsZeroOneAndMinusOneFromRunningCallback(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var tm hrtimer.HRTimer
	var inside []int
	var running, active bool
	hrtimer.Setup(&tm, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		inside = append(inside, hrtimer.TryToCancel(t))
		running, active = hrtimer.CallbackRunning(t), hrtimer.Active(t)
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	if got := hrtimer.TryToCancel(&tm); got != 0 {
		t.Fatalf("TryToCancel(never started) = %d, want 0", got)
	}
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRel)
	if !hrtimer.IsQueued(&tm) || !hrtimer.Active(&tm) || hrtimer.CallbackRunning(&tm) {
		t.Fatal("started timer should be queued and active, not running")
	}
	if got := hrtimer.TryToCancel(&tm); got != 1 {
		t.Fatalf("TryToCancel(queued) = %d, want 1", got)
	}
	if got := hrtimer.TryToCancel(&tm); got != 0 {
		t.Fatalf("TryToCancel(cancelled) = %d, want 0", got)
	}
	run(t, k, 2*ms)
	if len(inside) != 0 {
		t.Fatal("cancelled timer fired")
	}
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRel)
	run(t, k, 2*ms)
	if !reflect.DeepEqual(inside, []int{-1}) || !running || !active {
		t.Fatalf("inside the callback: TryToCancel %v, CallbackRunning %v, Active %v; want [-1] true true", inside, running, active)
	}
	if hrtimer.Active(&tm) || hrtimer.CallbackRunning(&tm) {
		t.Fatal("timer active after its callback returned")
	}
}

func TestCancelReturnsOneForQueuedAndZeroForInactive(t *testing.T) {
	k := boot(t, 2, false)
	r := newRec("r", nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(k.IdleCtx(1), &r.HRTimer, 1*ms, hrtimer.ModeRel)
	if got := hrtimer.Cancel(k.IdleCtx(0), &r.HRTimer); got != 1 {
		t.Fatalf("Cancel(queued) = %d, want 1", got)
	}
	if got := hrtimer.Cancel(k.IdleCtx(0), &r.HRTimer); got != 0 {
		t.Fatalf("Cancel(inactive) = %d, want 0", got)
	}
	run(t, k, 2*ms)
	if len(r.at) != 0 {
		t.Fatalf("cancelled timer fired at %v", r.at)
	}
}

func TestCancelFromOwnCallbackWarnsInsteadOfHanging(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var tm hrtimer.HRTimer
	got := 99
	hrtimer.Setup(&tm, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		got = hrtimer.Cancel(c, t)
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRelSoft)
	run(t, k, 2*ms)
	if got != -1 {
		t.Fatalf("Cancel from own callback = %d, want -1", got)
	}
	log := logText(k)
	if !strings.Contains(log, "hrtimer_cancel: TestCancelFromOwnCallbackWarnsInsteadOfHanging: cancelling a timer from its own callback would wait forever") ||
		!strings.Contains(log, "WARNING: CPU: 0") {
		t.Fatalf("missing report:\n%s", log)
	}
}

func TestCallbackThatRestartsItselfIsQueuedOnce(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var at []int64
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		at = append(at, c.Kernel().Now())
		if len(at) == 1 {
			// Re-armed from inside: the Restart return must not queue
			// it a second time (nor move it to the forwarded expiry).
			hrtimer.Start(c, t, 3*ms, hrtimer.ModeRel)
			if !hrtimer.IsQueued(t) || !hrtimer.CallbackRunning(t) {
				panic("restarted timer should be queued and running")
			}
			return hrtimer.Restart
		}
		return hrtimer.NoRestart
	}, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRel)
	run(t, k, 10*ms)
	if want := []int64{1 * ms, 4 * ms}; !reflect.DeepEqual(at, want) {
		t.Fatalf("fired at %v, want %v", at, want)
	}
}

func TestRestartOfQueuedTimerMovesIt(t *testing.T) {
	k := boot(t, 2, false)
	r := newRec("r", nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(k.IdleCtx(0), &r.HRTimer, 5*ms, hrtimer.ModeRel)
	// Restarted from CPU1: removed, re-queued at the new time, on CPU1.
	hrtimer.Start(k.IdleCtx(1), &r.HRTimer, 2*ms, hrtimer.ModeRel)
	run(t, k, 10*ms)
	if !reflect.DeepEqual(r.at, []int64{2 * ms}) || r.cpus[0] != 1 {
		t.Fatalf("fired %v on %v, want once at 2ms on CPU1", r.at, r.cpus)
	}
}

func TestUninitializedTimerIsNotStarted(t *testing.T) {
	k := boot(t, 1, false)
	var tm hrtimer.HRTimer
	hrtimer.Start(k.IdleCtx(0), &tm, 1*ms, hrtimer.ModeRel)
	if hrtimer.Active(&tm) {
		t.Fatal("timer that was never set up got queued")
	}
	if !strings.Contains(logText(k), "hrtimer used before hrtimer_setup()") {
		t.Fatalf("missing report:\n%s", logText(k))
	}
}

func TestTimerWithNilCallbackRunsDummyAfterWarning(t *testing.T) {
	k := boot(t, 1, false)
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, nil, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(k.IdleCtx(0), &tm, 1*ms, hrtimer.ModeRel)
	if !strings.Contains(hrtimer.TimerList(k), "hrtimer_dummy_timeout, S:01") {
		t.Fatalf("dummy callback not listed:\n%s", hrtimer.TimerList(k))
	}
	run(t, k, 2*ms)
	if hrtimer.Active(&tm) || !strings.Contains(logText(k), "hrtimer_setup: NULL callback function") {
		t.Fatalf("active %v, log:\n%s", hrtimer.Active(&tm), logText(k))
	}
}

func TestPanickingSoftCallbackIsAnOopsAndLeavesTheBaseUsable(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	var bad hrtimer.HRTimer
	hrtimer.Setup(&bad, func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		panic("boom")
	}, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	good := newRec("good", nil, hrtimer.ClockMonotonic, hrtimer.ModeRelSoft)
	hrtimer.Start(c, &bad, 1*ms, hrtimer.ModeRelSoft)
	run(t, k, 2*ms)
	if !strings.Contains(logText(k), "Oops: handler panicked: boom") {
		t.Fatalf("no Oops:\n%s", logText(k))
	}
	if hrtimer.Active(&bad) || hrtimer.Cancel(c, &bad) != 0 {
		t.Fatal("panicked timer still active")
	}
	hrtimer.Start(c, &good.HRTimer, 1*ms, hrtimer.ModeRelSoft)
	run(t, k, 2*ms)
	if !reflect.DeepEqual(good.at, []int64{3 * ms}) {
		t.Fatalf("soft timer after the Oops fired %v, want [3ms]", good.at)
	}
}

func TestSetupInsideCallbackDropsTheRestart(t *testing.T) {
	k := boot(t, 1, false)
	c := k.IdleCtx(0)
	n := 0
	var tm hrtimer.HRTimer
	var fn func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart
	fn = func(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		n++
		hrtimer.Setup(t, fn, hrtimer.ClockMonotonic, hrtimer.ModeRel)
		return hrtimer.Restart
	}
	hrtimer.Setup(&tm, fn, hrtimer.ClockMonotonic, hrtimer.ModeRel)
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRel)
	run(t, k, 5*ms)
	if n != 1 || hrtimer.Active(&tm) {
		t.Fatalf("ran %d times, active %v; want once, inactive", n, hrtimer.Active(&tm))
	}
	hrtimer.Start(c, &tm, 1*ms, hrtimer.ModeRel)
	run(t, k, 2*ms)
	if n != 2 {
		t.Fatalf("restarted timer ran %d times in total, want 2", n)
	}
}
