package timer_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// The tests in this file pin down corners of kernel/time/timer.c that an
// audit found kdefer getting wrong.

// TestSetupAgainWithOtherFlagsMovesTheTimerToTheirBase: timer_setup
// rewrites timer->flags, so the next arm uses the base the new flags
// select: a timer that was deferrable and is now a normal one wakes the
// idle CPU on time.
func TestSetupAgainWithOtherFlagsMovesTheTimerToTheirBase(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000})
	var tm timer.Timer
	var fired []uint64
	var armed uint64
	task(t, k, func(c *kernel.Ctx) {
		fn := func(c *kernel.Ctx, _ *timer.Timer) { fired = append(fired, c.Jiffies()) }
		timer.Setup(c, &tm, fn, timer.FlagDeferrable)
		timer.Mod(c, &tm, c.Jiffies()+10)
		timer.Delete(&tm)
		timer.Setup(c, &tm, fn, 0)
		armed = c.Jiffies()
		timer.Mod(c, &tm, armed+10)
	})
	if !strings.Contains(timer.Dump(k), "cpu: 0 base: BASE_GLOBAL clk: ") {
		t.Fatal("dump lacks the standard base")
	}
	if err := k.Run(context.Background(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fired, []uint64{armed + 11}) {
		t.Errorf("fired at %v, want [%d]: the timer stayed on the deferrable base", fired, armed+11)
	}
}

// TestAddOnFromTheTimersOwnCallbackMovesIt: add_timer_on moves the timer
// to the given CPU even while its callback runs (clocksource_watchdog
// walks the CPUs this way); only __mod_timer keeps a running timer on its
// base.
func TestAddOnFromTheTimersOwnCallbackMovesIt(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 1000})
	var tm timer.Timer
	var firedOn []int
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, tm *timer.Timer) {
			firedOn = append(firedOn, c.CPU())
			if len(firedOn) < 3 {
				timer.SetExpires(tm, c.Jiffies()+5)
				timer.AddOn(c, tm, (c.CPU()+1)%2)
			}
		}, 0)
		timer.SetExpires(&tm, c.Jiffies()+5)
		timer.AddOn(c, &tm, 0)
	})
	if err := k.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(firedOn, []int{0, 1, 0}) {
		t.Errorf("fired on CPUs %v, want [0 1 0]", firedOn)
	}
}

// TestShutdownSyncFromOwnCallbackStopsItsReArm: timer_shutdown_sync clears
// the function under the base lock even while the callback runs, so the
// callback's own re-arm is ignored (mod_timer returns 0) and the timer
// never runs again. The deadlock report names the callback.
func TestShutdownSyncFromOwnCallbackStopsItsReArm(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000})
	var tm timer.Timer
	runs, rearm := 0, -1
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, tm *timer.Timer) {
			runs++
			timer.ShutdownSync(c, tm)
			rearm = timer.Mod(c, tm, c.Jiffies()+5)
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
	})
	if err := k.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if runs != 1 || rearm != 0 || timer.Pending(&tm) {
		t.Errorf("runs %d, re-arm returned %d, pending %t; want 1, 0, false", runs, rearm, timer.Pending(&tm))
	}
	log := strings.Join(logLines(k), "\n")
	if !strings.Contains(log, "would deadlock: timer_test.TestShutdownSyncFromOwnCallbackStopsItsReArm") {
		t.Errorf("the report does not name the callback:\n%s", log)
	}
}

// TestDeleteSyncFromHardirqWarnsEveryTime: __timer_delete_sync's
// WARN_ON(in_hardirq() && !TIMER_IRQSAFE) is not a _ONCE warning.
func TestDeleteSyncFromHardirqWarnsEveryTime(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1})
	var tm timer.Timer
	timer.Setup(k.IdleCtx(0), &tm, func(*kernel.Ctx, *timer.Timer) {}, 0)
	if err := k.RequestIRQ(5, func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn {
		timer.DeleteSync(c, &tm)
		return kernel.IRQHandled
	}, 0, "audit", &tm); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := k.GenerateIRQ(0, 5); err != nil {
			t.Fatal(err)
		}
		if err := k.Run(context.Background(), 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(strings.Join(logLines(k), "\n"), "from hardirq context on a timer without TIMER_IRQSAFE"); n != 2 {
		t.Errorf("%d warnings, want 2", n)
	}
}

// TestPreemptLeakInACallbackWarnsOnceAndIsRepaired: call_timer_fn's
// WARN_ONCE("timer: %pS preempt leak: …"), after which the count is
// restored, so later callbacks run with the right one.
func TestPreemptLeakInACallbackWarnsOnceAndIsRepaired(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1})
	var tm timer.Timer
	var counts []uint32
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, tm *timer.Timer) {
			counts = append(counts, c.PreemptCount())
			kernel.PreemptDisable(c) // leaked
			if len(counts) < 3 {
				timer.Mod(c, tm, c.Jiffies()+1)
			}
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	if err := k.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 3 || counts[0] != counts[1] || counts[1] != counts[2] {
		t.Errorf("preempt counts seen by the callback %v, want three equal", counts)
	}
	log := strings.Join(logLines(k), "\n")
	if strings.Count(log, "preempt leak: ") != 1 || strings.Count(log, "WARNING: CPU: 0") != 1 {
		t.Errorf("want one WARNING with the leak, log:\n%s", log)
	}
}

// TestAddTimerOnAPendingTimerWarnsOncePerKernel: add_timer's
// WARN_ON_ONCE(timer_pending(timer)) has one static flag in the kernel, so
// a second offending call site gets no second report.
func TestAddTimerOnAPendingTimerWarnsOncePerKernel(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1})
	var a, b timer.Timer
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &a, func(*kernel.Ctx, *timer.Timer) {}, 0)
		timer.Setup(c, &b, func(*kernel.Ctx, *timer.Timer) {}, 0)
		timer.Mod(c, &a, c.Jiffies()+100)
		timer.Mod(c, &b, c.Jiffies()+100)
		timer.Add(c, &a)
		timer.Add(c, &b) // another call site, same kernel warning
	})
	if n := strings.Count(strings.Join(logLines(k), "\n"), "add_timer() on a pending timer"); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
}

// TestDebugobjectsReportNeverSetUpTimersAtMostFiveTimes: since v6.2
// __mod_timer and the sync deletes start with debug_assert_init, which
// reports a timer that was never set up as "assert_init not available"
// (hint 0x0: it has no function) and sets it up with stub_timer; the
// kernel prints only the first five debugobjects reports.
func TestDebugobjectsReportNeverSetUpTimersAtMostFiveTimes(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1})
	var raw [7]timer.Timer
	var ret int
	task(t, k, func(c *kernel.Ctx) {
		ret = timer.DeleteSync(c, &raw[0])
		for i := 1; i < len(raw); i++ {
			timer.Mod(c, &raw[i], c.Jiffies()+1000)
		}
	})
	if ret != 0 {
		t.Errorf("timer_delete_sync of a never set up timer = %d, want 0", ret)
	}
	log := strings.Join(logLines(k), "\n")
	const want = "ODEBUG: assert_init not available (active state 0) object: 000000003e8f1e72 object type: timer_list hint: 0x0"
	if n := strings.Count(log, want); n != 5 {
		t.Errorf("%d reports, want 5:\n%s", n, log)
	}
	for i := 1; i < len(raw); i++ {
		if !timer.Pending(&raw[i]) {
			t.Errorf("timer %d was not armed after the fixup", i)
		}
	}
}

// TestPinnedTimersRunBeforeGlobalOnesOfTheSameJiffy: since v6.9 pinned
// timers live on BASE_LOCAL, which run_timer_softirq expires before
// BASE_GLOBAL (then BASE_DEF); AddGlobal moves a pinned timer back.
func TestPinnedTimersRunBeforeGlobalOnesOfTheSameJiffy(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000})
	var p, g, d, unpinned timer.Timer
	var order []string
	rec := func(name string) timer.Func {
		return func(*kernel.Ctx, *timer.Timer) { order = append(order, name) }
	}
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &d, rec("deferrable"), timer.FlagDeferrable)
		timer.Setup(c, &g, rec("global"), 0)
		timer.Setup(c, &unpinned, rec("unpinned"), timer.FlagPinned)
		timer.Setup(c, &p, rec("pinned"), timer.FlagPinned)
		j := c.Jiffies() + 10
		for _, tm := range []*timer.Timer{&d, &g, &unpinned, &p} {
			timer.SetExpires(tm, j)
		}
		timer.Add(c, &d)
		timer.Add(c, &g)
		timer.AddGlobal(c, &unpinned) // clears TIMER_PINNED
		timer.AddLocal(c, &p)
	})
	dump := timer.Dump(k)
	if err := k.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if want := []string{"pinned", "unpinned", "global", "deferrable"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v\n%s", order, want, dump)
	}
}

// TestSetupLetsATimerMoveToAnotherKernel: timer_setup initialises the
// timer completely, so a timer used in a kernel that was shut down works
// in the next one after Setup.
func TestSetupLetsATimerMoveToAnotherKernel(t *testing.T) {
	var tm timer.Timer
	fired := 0
	fn := func(*kernel.Ctx, *timer.Timer) { fired++ }
	for range 2 {
		k := bootK(t, kernel.Config{Virtual: true, CPUs: 1})
		var r int
		task(t, k, func(c *kernel.Ctx) {
			timer.Setup(c, &tm, fn, 0)
			r = timer.Mod(c, &tm, c.Jiffies()+1)
		})
		if err := k.Run(context.Background(), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if r != 0 {
			t.Errorf("mod_timer = %d, want 0", r)
		}
		if err := k.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if fired != 2 {
		t.Errorf("fired %d times in two kernels, want 2", fired)
	}
}
