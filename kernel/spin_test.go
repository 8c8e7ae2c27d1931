package kernel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestVirtualBusyWaitLetsOtherTasksAndTimersRun: while a task busy-waits
// 10 ms in virtual time, another task's 3 ms sleep ends on time (the clock
// does not jump over it), and the busy-wait ends exactly 10 ms later.
func TestVirtualBusyWaitLetsOtherTasksAndTimersRun(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, HZ: 1000})
	var order []string
	note := func(c *kernel.Ctx, s string) {
		order = append(order, fmt.Sprintf("%s@%dus", s, c.Kernel().Now()/1000))
	}
	k.Spawn("spinner", func(c *kernel.Ctx) int {
		kernel.Spin(c, 10*int64(time.Millisecond))
		note(c, "spun")
		return 0
	})
	k.Spawn("sleeper", func(c *kernel.Ctx) int {
		delay.Msleep(c, 2) // 2 ms + 1 jiffy on the wheel: wakes at 3 ms
		note(c, "slept")
		return 0
	})
	run(t, k, 0)
	if got := strings.Join(order, " "); got != "slept@3000us spun@10000us" {
		t.Fatalf("order %q", got)
	}
}

// TestSoftLockupIsReportedForALongBusyWaitInVirtualTime: mdelay(60000) in
// a task is reported by the soft-lockup watchdog at its 24 s and 48 s
// samples (22 and 44 of the kernel's 2^30 ns "seconds"), taints the kernel
// L, and still lasts exactly 60 s.
func TestSoftLockupIsReportedForALongBusyWaitInVirtualTime(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	var end int64
	if _, err := k.RunTask(context.Background(), "insmod", func(c *kernel.Ctx) int {
		kernel.Spin(c, 60*int64(time.Second))
		end = c.Kernel().Now()
		return 0
	}); err != nil {
		t.Fatal(err)
	}
	if end != 60*int64(time.Second) {
		t.Fatalf("busy-wait ended at %d", end)
	}
	var reports []string
	for _, l := range logText(k) {
		if strings.Contains(l, "soft lockup") {
			reports = append(reports, l)
		}
	}
	want := []string{
		"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:4]",
		"watchdog: BUG: soft lockup - CPU#0 stuck for 44s! [insmod:4]",
	}
	if fmt.Sprint(reports) != fmt.Sprint(want) {
		t.Fatalf("reports %q, want %q", reports, want)
	}
	if k.Tainted()&kernel.TaintSoftlockup == 0 {
		t.Fatal("kernel not tainted L")
	}
}

// TestBusyWaitThatNeverEndsIsReportedOnceAndEndedByShutdown: a spin beyond
// the clock's range (what an overflowing mdelay asks for) is reported by the
// watchdog once; the driver then finds nothing else to do (RunTask returns
// EDEADLK instead of looping forever), and Shutdown ends the spin.
func TestBusyWaitThatNeverEndsIsReportedOnceAndEndedByShutdown(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := k.RunTask(ctx, "stuck", func(c *kernel.Ctx) int {
		kernel.Spin(c, 1<<63-1)
		return 0
	})
	if !errors.Is(err, kernel.EDEADLK) {
		t.Fatalf("RunTask: %v, want EDEADLK", err)
	}
	n := 0
	for _, l := range logText(k) {
		if strings.Contains(l, "soft lockup") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d soft-lockup reports, want 1:\n%s", n, dmesg(k))
	}
	ktest.Shutdown(t, k)
}

// TestShutdownEndsARealTimeBusyWait: a task in mdelay(60000) on the real
// clock does not keep Shutdown waiting (nor spin on after it).
func TestShutdownEndsARealTimeBusyWait(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true})
	started := make(chan struct{})
	task, err := k.Spawn("mdelay", func(c *kernel.Ctx) int {
		close(started)
		kernel.Spin(c, 60*int64(time.Second))
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-task.Exited()
}
