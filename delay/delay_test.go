package delay_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func bootK(t *testing.T, hz jiffies.HZ) *kernel.Kernel {
	t.Helper()
	return ktest.Virtual(t, 2, int(hz))
}

func inTask(t *testing.T, k *kernel.Kernel, fn func(c *kernel.Ctx)) {
	t.Helper()
	ktest.InTask(t, k, fn)
}

func logText(k *kernel.Kernel) string { return ktest.Text(k) }

func TestBusyWaitsTakeExactlyTheirTimeAndAreAtomicSafe(t *testing.T) {
	k := bootK(t, 250)
	var got []int64
	inTask(t, k, func(c *kernel.Ctx) {
		var l kernel.SpinLock
		l.Lock(c) // atomic context: busy waits are fine here
		for _, f := range []func(){
			func() { delay.Ndelay(c, 10) },
			func() { delay.Udelay(c, 10) },
			func() { delay.Mdelay(c, 3) },
			func() { delay.Mdelay(c, 10) },
		} {
			t0 := k.Now()
			f()
			got = append(got, k.Now()-t0)
		}
		l.Unlock(c)
	})
	if want := []int64{10, 10_000, 3_000_000, 10_000_000}; !slices.Equal(got, want) {
		t.Fatalf("delays took %v ns, want %v", got, want)
	}
	if log := logText(k); log != "" {
		t.Fatalf("busy waits in atomic context logged:\n%s", log)
	}
}

func TestScheduleTimeoutReturnValues(t *testing.T) {
	k := bootK(t, 1000)
	var res []int64
	var sleeper *kernel.Task
	inTask(t, k, func(c *kernel.Ctx) {
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		res = append(res, delay.ScheduleTimeout(c, 10)) // elapses: 0
		res = append(res, delay.ScheduleTimeout(c, 10)) // TASK_RUNNING: no sleep, remaining
		res = append(res, delay.ScheduleTimeout(c, -10))
	})
	sleeper, _ = k.Spawn("sleeper", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		res = append(res, delay.ScheduleTimeout(c, 100)) // woken after 30 jiffies
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		res = append(res, delay.ScheduleTimeout(c, delay.MaxScheduleTimeout))
		return 0
	})
	k.Spawn("waker", func(c *kernel.Ctx) int {
		delay.Msleep(c, 30)
		k.WakeUpProcess(sleeper)
		delay.Msleep(c, 30)
		k.WakeUpProcess(sleeper)
		return 0
	})
	k.Run(context.Background(), time.Second)
	want := []int64{0, 10, 0, 69, delay.MaxScheduleTimeout}
	if !slices.Equal(res, want) {
		t.Fatalf("returns %v, want %v", res, want)
	}
	if log := logText(k); !strings.HasPrefix(log, "schedule_timeout: wrong timeout value fffffffffffffff6\n") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestShortScheduleTimeoutWakesOneJiffyLate(t *testing.T) {
	k := bootK(t, 250)
	var took []uint64
	inTask(t, k, func(c *kernel.Ctx) {
		for _, n := range []int64{1, 5, 62} {
			j0 := c.Jiffies()
			kernel.SetCurrentState(c, kernel.TaskUninterruptible)
			delay.ScheduleTimeout(c, n)
			took = append(took, c.Jiffies()-j0)
		}
	})
	if want := []uint64{2, 6, 63}; !slices.Equal(took, want) {
		t.Fatalf("schedule_timeout(n) slept %v jiffies, want n+1 = %v", took, want)
	}
}

func TestMsleepFollowsTheWheel(t *testing.T) {
	for _, tc := range []struct {
		hz   jiffies.HZ
		ms   uint32
		want time.Duration
	}{
		{1000, 0, 0},
		{1000, 1, 2 * time.Millisecond},       // 1 jiffy, level 0: +1
		{1000, 10, 11 * time.Millisecond},     // 10 jiffies + 1
		{250, 10, 16 * time.Millisecond},      // msecs_to_jiffies(10)=3, +1 → 4 jiffies
		{250, 1000, 1024 * time.Millisecond},  // 250 jiffies: level 1 (gran 8) → 256 jiffies
		{100, 20, 30 * time.Millisecond},      // 2 jiffies + 1
		{300, 10, 13333332 * time.Nanosecond}, // 3 jiffies + 1 at TICK_NSEC 3333333
	} {
		k := bootK(t, tc.hz)
		var took int64
		inTask(t, k, func(c *kernel.Ctx) {
			t0 := k.Now()
			delay.Msleep(c, tc.ms)
			took = k.Now() - t0
		})
		if time.Duration(took) != tc.want {
			t.Errorf("HZ=%d msleep(%d) took %v, want %v", tc.hz, tc.ms, time.Duration(took), tc.want)
		}
	}
}

func TestMsleepInterruptibleReturnsRemainingOnSignal(t *testing.T) {
	k := bootK(t, 1000)
	var left, full uint32
	s, _ := k.Spawn("sleeper", func(c *kernel.Ctx) int {
		left = delay.MsleepInterruptible(c, 100)
		kernel.FlushSignals(c)
		full = delay.MsleepInterruptible(c, 20)
		return 0
	})
	k.Spawn("killer", func(c *kernel.Ctx) int {
		delay.Msleep(c, 40)
		k.SendSignal(s, kernel.SIGUSR1)
		return 0
	})
	k.Run(context.Background(), time.Second)
	if left != 59 || full != 0 {
		t.Fatalf("msleep_interruptible left %d ms (want 59) then %d (want 0)", left, full)
	}
}

func TestUsleepRangeNeverReturnsBeforeMin(t *testing.T) {
	k := bootK(t, 250)
	var took []int64
	inTask(t, k, func(c *kernel.Ctx) {
		for _, r := range [][2]uint64{{10, 20}, {100, 200}, {10, 10}, {50, 40}} {
			t0 := k.Now()
			delay.UsleepRange(c, r[0], r[1])
			took = append(took, k.Now()-t0)
		}
	})
	// Alone in virtual time the hrtimer fires at its hard expiry (max);
	// max < min warns and uses min.
	if want := []int64{20_000, 200_000, 10_000, 50_000}; !slices.Equal(took, want) {
		t.Fatalf("usleep_range took %v ns, want %v", took, want)
	}
	if log := logText(k); !strings.Contains(log, "usleep_range: max (40) < min (50)") {
		t.Fatalf("no warning for max < min:\n%s", log)
	}
}

func TestFsleepPicksTheKernelsPrimitive(t *testing.T) {
	k := bootK(t, 250) // USLEEP_RANGE_UPPER_BOUND = 16000 µs
	if b := delay.UsleepRangeUpperBound(k); b != 16000 {
		t.Fatalf("upper bound %d", b)
	}
	var took []int64
	inTask(t, k, func(c *kernel.Ctx) {
		for _, us := range []uint64{1, 10, 1000, 10_000, 16_000, 100_000} {
			t0 := k.Now()
			delay.Fsleep(c, us)
			took = append(took, k.Now()-t0)
		}
	})
	want := []int64{
		1_000,       // udelay(1)
		10_000,      // udelay(10)
		1_250_000,   // usleep_range(1000, 1250)
		12_500_000,  // usleep_range(10000, 12500)
		18_239_000,  // msleep(16): 4 jiffies + 1 from jiffy 3, entered 1.761 ms into it
		104_000_000, // msleep(100): 25 jiffies + 1, from a jiffy boundary
	}
	if !slices.Equal(took, want) {
		t.Fatalf("fsleep took %v, want %v", took, want)
	}
}

func TestSleepingInATimerCallbackIsReportedNotSlept(t *testing.T) {
	k := bootK(t, 250)
	var tm timer.Timer
	var before, after int64
	inTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			before = k.Now()
			delay.Msleep(c, 100)
			after = k.Now()
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	k.Run(context.Background(), time.Second)
	if after != before {
		t.Fatalf("msleep in softirq slept %d ns", after-before)
	}
	log := logText(k)
	if !strings.HasPrefix(log, "BUG: sleeping function called from invalid context at delay/delay_test.go:") {
		t.Fatalf("log:\n%s", log)
	}
	if !strings.Contains(log, "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 0, name: swapper/0") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestSleepLoopsEndWhenTheKernelShutsDown(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	ended := false
	k.Spawn("sleeper", func(c *kernel.Ctx) int {
		delay.Msleep(c, 1_000_000)
		ended = true
		return 0
	})
	k.Run(context.Background(), time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil || !ended {
		t.Fatalf("Shutdown: %v, msleep ended: %v", err, ended)
	}
}
