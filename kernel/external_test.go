package kernel_test

import (
	"context"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestHeldExternalOperationTakesNoVirtualTime: a task waits for an
// operation outside the kernel (a host process, say) while a periodic
// event keeps the kernel busy; the clock does not move until the hold is
// released from another goroutine, and the release wakes the task.
func TestHeldExternalOperationTakesNoVirtualTime(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, HZ: 1000})
	var done int
	var woke int64 = -1
	h := k.HoldExternal()
	waiter, _ := k.Spawn("waiter", func(c *kernel.Ctx) int {
		kernel.WaitVarEvent(c, &done, func() bool { return done == 1 })
		woke = c.Kernel().Now()
		return 0
	})
	var tickerEnd int64
	k.Spawn("ticker", func(c *kernel.Ctx) int { // keeps events coming
		for range 10 {
			kernel.Spin(c, int64(time.Millisecond))
		}
		tickerEnd = c.Kernel().Now()
		return 0
	})
	go func() {
		time.Sleep(5 * time.Millisecond) // real time passes outside the kernel
		h.Release(func() {
			done = 1
			kernel.WakeUpVar(k.IdleCtx(0), &done)
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Run(ctx, 0); err != nil {
		t.Fatal(err)
	}
	<-waiter.Exited()
	if woke != 0 {
		t.Fatalf("woke at %d ns of virtual time, want 0: the hold took virtual time", woke)
	}
	if tickerEnd != 10*int64(time.Millisecond) {
		t.Fatalf("the ticker ended at %d ns, want 10 ms", tickerEnd)
	}
}

// TestInjectRunsOnTheDriverBetweenSteps: Inject from a foreign goroutine
// spawns a task in a virtual kernel; it runs on the driver at the next
// Run, not on the injecting goroutine.
func TestInjectRunsOnTheDriverBetweenSteps(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	ran := make(chan struct{})
	var spawned *kernel.Task
	go func() {
		k.Inject(func() {
			spawned, _ = k.Spawn("injected", func(*kernel.Ctx) int { return 3 })
		})
		close(ran)
	}()
	<-ran
	if spawned != nil {
		t.Fatal("Inject ran on the injecting goroutine in virtual time")
	}
	run(t, k, time.Millisecond)
	if spawned == nil || !spawned.HasExited() || spawned.ExitCode() != 3 {
		t.Fatalf("injected task: %v", spawned)
	}
}

// TestWaitTaskExitSleepsUntilTheTaskExits, in both time modes.
func TestWaitTaskExitSleepsUntilTheTaskExits(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Virtual: virtual, Quiet: true})
		var slow *kernel.Task
		slow, _ = k.Spawn("slow", func(c *kernel.Ctx) int {
			kernel.Spin(c, 3*int64(time.Millisecond))
			return 0
		})
		var after bool
		ktest.InTask(t, k, func(c *kernel.Ctx) {
			if !kernel.WaitTaskExit(c, slow) {
				t.Error("WaitTaskExit gave up")
			}
			after = slow.HasExited()
		})
		if !after {
			t.Fatalf("virtual=%v: returned before the task exited", virtual)
		}
	}
}

// TestInjectedCallsRunOneAStepSoEachSeesTheLastOnesEffects: two calls
// injected back to back while the driver waits on a hold: the task the
// first one wakes runs before the second one, as a console's `kill` then
// `ps` expects, however fast the calls were sent.
func TestInjectedCallsRunOneAStepSoEachSeesTheLastOnesEffects(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	var woken bool
	sleeper, _ := k.Spawn("sleeper", func(c *kernel.Ctx) int {
		kernel.WaitVarEvent(c, &woken, func() bool { return woken })
		return 0
	})
	run(t, k, time.Millisecond) // the sleeper sleeps
	h := k.HoldExternal()
	var exitedBeforeSecond bool
	k.Inject(func() {
		woken = true
		kernel.WakeUpVar(k.IdleCtx(0), &woken)
	})
	k.Inject(func() { exitedBeforeSecond = sleeper.HasExited() })
	h.Release(nil)
	run(t, k, time.Millisecond)
	if !exitedBeforeSecond {
		t.Fatal("the second call ran before the task the first one woke")
	}
}

// TestHoldExternalAtStopsTheClockAtItsTime: a hold set for 3.5 ms stops a
// virtual clock there, although no event is due then, once what was due
// before has run; the clock waits for the release, then goes on.
func TestHoldExternalAtStopsTheClockAtItsTime(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, HZ: 1000})
	var ticks int
	k.Spawn("ticker", func(c *kernel.Ctx) int {
		for range 10 {
			delay.Msleep(c, 1)
			ticks++
		}
		return 0
	})
	begun := make(chan int64, 1)
	var ticksAtBegin int
	h := k.HoldExternalAt(3500*int64(time.Microsecond), func() {
		ticksAtBegin = ticks
		begun <- k.Now()
	})
	go func() {
		at := <-begun
		time.Sleep(time.Millisecond) // real time passes outside the kernel
		h.Release(func() { begun <- at })
	}()
	run(t, k, 20*time.Millisecond)
	if at := <-begun; at != 3500*int64(time.Microsecond) {
		t.Fatalf("the hold began at %d ns, want 3.5 ms", at)
	}
	// msleep(1) at HZ=1000 sleeps 2 jiffies: the ticker ticked at 2 ms.
	if ticksAtBegin != 1 || ticks != 10 {
		t.Fatalf("ticks: %d when the hold began, %d at the end", ticksAtBegin, ticks)
	}
}

func TestHoldExternalAtReleasedEarlyNeverBegins(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, HZ: 1000})
	called := false
	h := k.HoldExternalAt(int64(time.Millisecond), func() { called = true })
	h.Release(nil)
	run(t, k, 10*time.Millisecond)
	if called || k.Now() != 10*int64(time.Millisecond) {
		t.Fatalf("begun called %v; clock at %d", called, k.Now())
	}
	// In real time the hold begins at once.
	rk := ktest.Boot(t, kernel.Config{CPUs: 1, Quiet: true})
	called = false
	rk.HoldExternalAt(int64(time.Hour), func() { called = true }).Release(nil)
	if !called {
		t.Fatal("real time: begun was not called at once")
	}
}
