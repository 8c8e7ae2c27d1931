package timer_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

func bootK(t testing.TB, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	cfg.Quiet = true
	return ktest.Boot(t, cfg)
}

func logLines(k *kernel.Kernel) []string { return ktest.Lines(k) }

func task(t testing.TB, k *kernel.Kernel, fn func(c *kernel.Ctx)) {
	t.Helper()
	ktest.InTask(t, k, fn)
}

func TestTimerFiresAtTheWheelsJiffyInSoftirqContext(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		k := bootK(t, kernel.Config{Virtual: true, HZ: hz})
		var tm timer.Timer
		var armedAt, expires uint64
		var got []string
		task(t, k, func(c *kernel.Ctx) {
			timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
				got = append(got, fmt.Sprintf("j=%d softirq=%v cur=%s", c.Jiffies(), c.InServingSoftirq(), c.Current().Comm()))
			}, 0)
			armedAt = c.Jiffies()
			expires = armedAt + hz.MsecsToJiffies(420)
			if r := timer.Mod(c, &tm, expires); r != 0 {
				t.Errorf("Mod of inactive timer = %d", r)
			}
		})
		if err := k.Run(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		// The kernel's formula (§1.3): the level from delta, then the next
		// multiple of the level granularity strictly above expires.
		delta := expires - armedAt
		gran := uint64(1)
		for lvlStart := uint64(63); delta >= lvlStart; lvlStart *= 8 {
			gran *= 8
		}
		fire := (expires/gran + 1) * gran
		if gran == 1 {
			fire = expires + 1
		}
		want := []string{fmt.Sprintf("j=%d softirq=true cur=swapper/0", fire)}
		if !slices.Equal(got, want) {
			t.Errorf("HZ=%d: fired %v, want %v (armed at %d, expires %d)", hz, got, want, armedAt, expires)
		}
	}
}

func TestModTimerReturnValuesFollowTheKernel(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true})
	var tm timer.Timer
	fired := 0
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(*kernel.Ctx, *timer.Timer) { fired++ }, 0)
		j := c.Jiffies()
		check := func(what string, got, want int) {
			if got != want {
				t.Errorf("%s = %d, want %d", what, got, want)
			}
		}
		check("mod_timer_pending(inactive)", timer.ModPending(c, &tm, j+10), 0)
		check("timer_pending after mod_timer_pending", b2i(timer.Pending(&tm)), 0)
		check("mod_timer(inactive)", timer.Mod(c, &tm, j+100), 0)
		check("mod_timer(pending, same expiry)", timer.Mod(c, &tm, j+100), 1)
		check("mod_timer(pending)", timer.Mod(c, &tm, j+200), 1)
		check("timer_reduce(later)", timer.Reduce(c, &tm, j+300), 1)
		check("expires after reduce(later)", int(timer.Expires(&tm)-j), 200)
		check("timer_reduce(earlier)", timer.Reduce(c, &tm, j+50), 1)
		check("expires after reduce(earlier)", int(timer.Expires(&tm)-j), 50)
		check("mod_timer_pending(pending)", timer.ModPending(c, &tm, j+60), 1)
		check("timer_delete(pending)", timer.Delete(&tm), 1)
		check("timer_delete(inactive)", timer.Delete(&tm), 0)
		check("timer_reduce(inactive)", timer.Reduce(c, &tm, j+5), 0)
		check("timer_delete_sync(pending)", timer.DeleteSync(c, &tm), 1)
	})
	k.Run(context.Background(), 10*time.Second)
	if fired != 0 {
		t.Fatalf("deleted timer fired %d times", fired)
	}
}

// TestReArmIntoTheSameBucketFromAnotherCPUKeepsTheTimerWhereItIs checks
// __mod_timer's order: the same-bucket shortcut is taken on the timer's
// current base before the base switch, so only a re-arm that moves the
// timer to another bucket migrates it to the calling CPU.
func TestReArmIntoTheSameBucketFromAnotherCPUKeepsTheTimerWhereItIs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offset  uint64 // added to the first expiry by the re-arm from CPU 1
		wantCPU int
	}{
		{"same bucket", 1, 0},
		{"other bucket", 64, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := bootK(t, kernel.Config{Virtual: true, CPUs: 2})
			c0, c1 := k.IdleCtx(0), k.IdleCtx(1)
			var tm timer.Timer
			var firedOn []int
			timer.Setup(c0, &tm, func(c *kernel.Ctx, _ *timer.Timer) { firedOn = append(firedOn, c.CPU()) }, 0)
			// 96..503 jiffies ahead is level 1 (granularity 8); an
			// expiry that is a multiple of 8 shares its bucket with
			// the next 7 jiffies.
			exp := (c0.Jiffies() + 200) &^ 7
			if r := timer.Mod(c0, &tm, exp); r != 0 {
				t.Fatalf("first mod_timer = %d, want 0", r)
			}
			if r := timer.Mod(c1, &tm, exp+tc.offset); r != 1 {
				t.Fatalf("re-arm from CPU 1 = %d, want 1", r)
			}
			if got := timer.Expires(&tm); got != exp+tc.offset {
				t.Errorf("expires = %d, want %d", got, exp+tc.offset)
			}
			if err := k.Run(context.Background(), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(firedOn, []int{tc.wantCPU}) {
				t.Errorf("fired on CPUs %v, want [%d]", firedOn, tc.wantCPU)
			}
		})
	}
}

// TestTimerArmedAfterWeeksOfIdleFiresOnTime: an empty base's next expiry
// is 2^30 - 1 jiffies (12.4 days at HZ=1000, 49.7 at HZ=250) after its last
// recalculation. A timer armed once that has passed must still fire on
// the jiffy the wheel gives it.
func TestTimerArmedAfterWeeksOfIdleFiresOnTime(t *testing.T) {
	for _, tc := range []struct {
		hz   jiffies.HZ
		idle time.Duration
	}{
		{1000, 13 * 24 * time.Hour},
		{250, 50 * 24 * time.Hour},
	} {
		k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: tc.hz})
		timer.Init(k)
		if err := k.Run(context.Background(), tc.idle); err != nil {
			t.Fatal(err)
		}
		var tm timer.Timer
		var fired []uint64
		var armed uint64
		task(t, k, func(c *kernel.Ctx) {
			timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) { fired = append(fired, c.Jiffies()) }, 0)
			armed = c.Jiffies()
			timer.Mod(c, &tm, armed+10)
		})
		if err := k.Run(context.Background(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fired, []uint64{armed + 11}) {
			t.Errorf("HZ=%d after %v idle: fired at %v, want [%d]", tc.hz, tc.idle, fired, armed+11)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCancelledTimerNeverFires(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, HZ: 1000})
	var a, b timer.Timer
	var fired []string
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &a, func(*kernel.Ctx, *timer.Timer) { fired = append(fired, "a") }, 0)
		timer.Setup(c, &b, func(c *kernel.Ctx, _ *timer.Timer) {
			fired = append(fired, "b")
			timer.Delete(&a) // cancels a from another timer's callback
		}, 0)
		timer.Mod(c, &a, c.Jiffies()+20)
		timer.Mod(c, &b, c.Jiffies()+10)
	})
	k.Run(context.Background(), time.Second)
	if !slices.Equal(fired, []string{"b"}) {
		t.Fatalf("fired %v, want [b]", fired)
	}
}

func TestShutdownTimerIgnoresLaterArms(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true})
	var tm timer.Timer
	fired := 0
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(*kernel.Ctx, *timer.Timer) { fired++ }, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
		if r := timer.ShutdownSync(c, &tm); r != 1 {
			t.Errorf("timer_shutdown_sync(pending) = %d", r)
		}
		if r := timer.Mod(c, &tm, c.Jiffies()+5); r != 0 {
			t.Errorf("mod_timer after shutdown = %d, want 0", r)
		}
		timer.Add(c, &tm)
	})
	k.Run(context.Background(), time.Second)
	if fired != 0 || len(logLines(k)) != 0 {
		t.Fatalf("shut-down timer fired %d times; log %q", fired, logLines(k))
	}
	// Re-initialising makes it usable again.
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(*kernel.Ctx, *timer.Timer) { fired++ }, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
	})
	k.Run(context.Background(), time.Second)
	if fired != 1 {
		t.Fatalf("re-initialised timer fired %d times", fired)
	}
}

func TestPeriodicReArmFromCallbackKeepsExactPeriod(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, HZ: 1000})
	type ctx struct {
		tmr  timer.Timer
		data int
	}
	var st ctx
	var at []uint64
	task(t, k, func(c *kernel.Ctx) {
		st.data = 3
		timer.Setup(c, &st.tmr, func(c *kernel.Ctx, tm *timer.Timer) {
			priv := timer.ContainerOf[ctx](tm, unsafe.Offsetof(ctx{}.tmr))
			at = append(at, c.Jiffies())
			priv.data--
			if priv.data > 0 {
				timer.Mod(c, tm, c.Jiffies()+50)
			}
		}, 0)
		timer.Mod(c, &st.tmr, c.Jiffies()+50)
	})
	start := k.Jiffies()
	k.Run(context.Background(), time.Second)
	want := []uint64{start + 51, start + 102, start + 153} // level 0 adds one jiffy
	if !slices.Equal(at, want) || st.data != 0 {
		t.Fatalf("fired at %v (data %d), want %v", at, st.data, want)
	}
}

func TestDeferrableTimerDoesNotWakeAnIdleCPU(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000})
	var d, n timer.Timer
	var fired []string
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &d, func(c *kernel.Ctx, _ *timer.Timer) { fired = append(fired, fmt.Sprintf("deferrable@%d", c.Jiffies())) }, timer.FlagDeferrable)
		timer.Mod(c, &d, c.Jiffies()+10)
	})
	start := k.Jiffies()
	k.Run(context.Background(), 100*time.Millisecond)
	if len(fired) != 0 {
		t.Fatalf("deferrable timer woke an idle CPU: %v", fired)
	}
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &n, func(c *kernel.Ctx, _ *timer.Timer) { fired = append(fired, fmt.Sprintf("normal@%d", c.Jiffies())) }, 0)
		timer.Mod(c, &n, c.Jiffies()+5)
	})
	k.Run(context.Background(), 100*time.Millisecond)
	want := []string{fmt.Sprintf("normal@%d", start+106), fmt.Sprintf("deferrable@%d", start+106)}
	if !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
}

func TestIRQSafeTimerRunsWithInterruptsDisabled(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true})
	var tm timer.Timer
	var line string
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			line = fmt.Sprintf("irqs_disabled=%t serving_softirq=%t", c.IRQsDisabled(), c.InServingSoftirq())
		}, timer.FlagIRQSafe)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	k.Run(context.Background(), time.Second)
	if want := "irqs_disabled=true serving_softirq=true"; line != want {
		t.Fatalf("IRQSAFE timer callback context: %q, want %q", line, want)
	}
}

func TestDeleteSyncFromOwnCallbackWarnsInsteadOfHanging(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true})
	var tm timer.Timer
	ret := -9
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, tm *timer.Timer) { ret = timer.DeleteSync(c, tm) }, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	k.Run(context.Background(), time.Second)
	if ret != 0 {
		t.Fatalf("DeleteSync from own callback = %d", ret)
	}
	log := strings.Join(logLines(k), "\n")
	if !strings.Contains(log, "timer_delete_sync() would deadlock") || !strings.Contains(log, "WARNING: CPU: 0 PID: 0 at timer/api_test.go:") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestMisuseGetsDebugobjectsReports(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true})
	var raw, armed timer.Timer
	fired := 0
	task(t, k, func(c *kernel.Ctx) {
		timer.SetExpires(&raw, c.Jiffies()+1)
		timer.Add(c, &raw) // never set up
		timer.Setup(c, &armed, func(*kernel.Ctx, *timer.Timer) { fired++ }, 0)
		timer.Mod(c, &armed, c.Jiffies()+10)
		timer.Add(c, &armed)                                                   // add_timer on a pending timer
		timer.Setup(c, &armed, func(*kernel.Ctx, *timer.Timer) { fired++ }, 0) // init active
	})
	k.Run(context.Background(), time.Second)
	log := strings.Join(logLines(k), "\n")
	for _, want := range []string{
		"ODEBUG: assert_init not available (active state 0) object: 000000003e8f1e72 object type: timer_list hint: 0x0",
		"add_timer() on a pending timer",
		"ODEBUG: init active (active state 0) object: 000000003e8f1e72 object type: timer_list hint: timer_test.TestMisuseGetsDebugobjectsReports.func",
		"stub timer called",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if fired != 0 {
		t.Errorf("re-initialised (disarmed) timer fired %d times", fired)
	}
}

func TestArmingAndCancellingAllocateNothing(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true})
	c := k.IdleCtx(0)
	timers := make([]timer.Timer, 64)
	for i := range timers {
		timer.Setup(c, &timers[i], func(*kernel.Ctx, *timer.Timer) {}, 0)
	}
	j := k.Jiffies()
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		timer.Mod(c, &timers[i%64], j+uint64(100+i%1000))
		i++
	}); n != 0 {
		t.Errorf("mod_timer: %.1f allocs/op", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		timer.Mod(c, &timers[i%64], j+7500)
		timer.Delete(&timers[i%64])
		i++
	}); n != 0 {
		t.Errorf("arm+delete: %.1f allocs/op", n)
	}
	for i := range timers {
		timer.Delete(&timers[i])
	}
}

// TestNoCallbackRunsAfterDeleteSyncReturned races self-re-arming timers
// against timer_delete_sync on a real-time kernel.
func TestNoCallbackRunsAfterDeleteSyncReturned(t *testing.T) {
	k := bootK(t, kernel.Config{CPUs: 2, HZ: 1000})
	const rounds = 40
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		_, err := k.Spawn(fmt.Sprintf("racer%d", w), func(c *kernel.Ctx) int {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				var tm timer.Timer
				var deleted, late atomic.Bool
				var runs atomic.Int32
				timer.Setup(c, &tm, func(c *kernel.Ctx, tm *timer.Timer) {
					if deleted.Load() {
						late.Store(true)
					}
					runs.Add(1)
					timer.Mod(c, tm, c.Jiffies()) // re-arm for the next tick
				}, 0)
				timer.Mod(c, &tm, c.Jiffies())
				for runs.Load() < 2 {
					kernel.CondResched(c)
				}
				timer.DeleteSync(c, &tm)
				deleted.Store(true)
				// The callback may have re-armed before we deleted; after
				// DeleteSync nothing may run any more.
				timer.DeleteSync(c, &tm)
				n := runs.Load()
				for i := 0; i < 100; i++ {
					kernel.CondResched(c)
				}
				if late.Load() || runs.Load() != n {
					t.Errorf("callback ran after timer_delete_sync returned")
				}
			}
			return 0
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestDumpListsPendingTimersByLevelAndBucket(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000})
	var a, b timer.Timer
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &a, dumpA, 0)
		timer.Setup(c, &b, dumpB, timer.FlagDeferrable)
		timer.Mod(c, &a, c.Jiffies()+100)
		timer.Mod(c, &b, c.Jiffies()+5000)
	})
	d := timer.Dump(k)
	for _, want := range []string{"cpu: 0 base: BASE_GLOBAL", "level 1", "fn=timer_test.dumpA", "cpu: 0 base: BASE_DEF", "level 3", "fn=timer_test.dumpB"} {
		if !strings.Contains(d, want) {
			t.Errorf("dump lacks %q:\n%s", want, d)
		}
	}
}

func dumpA(*kernel.Ctx, *timer.Timer) {}
func dumpB(*kernel.Ctx, *timer.Timer) {}
