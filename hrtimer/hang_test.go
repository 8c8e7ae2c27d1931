package hrtimer_test

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// stuckTimerScenario starts an hrtimer whose callback returns Restart
// without forwarding it, then sleeps 2 ms and cancels it, all in one task
// on a one-CPU kernel. It returns the callback's run count and the log.
func stuckTimerScenario(t *testing.T, virtual bool, mode hrtimer.Mode) (int64, string, *kernel.Kernel) {
	t.Helper()
	k := ktest.Boot(t, kernel.Config{CPUs: 1, HZ: 1000, Quiet: true, Virtual: virtual})
	var runs atomic.Int64
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		runs.Add(1)
		return hrtimer.Restart // not forwarded: due again at once
	}, hrtimer.ClockMonotonic, mode)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := k.RunTask(ctx, "stuck", func(c *kernel.Ctx) int {
		hrtimer.Start(c, &tm, 10*us, mode)
		delay.Msleep(c, 2)
		hrtimer.Cancel(c, &tm)
		return 0
	}); err != nil {
		t.Fatalf("virtual=%t: RunTask: %v", virtual, err)
	}
	return runs.Load(), logText(k), k
}

// TestRestartWithoutForwardingIsHrtimerInterruptsHang: a hard callback
// that returns Restart without moving its expiry would loop forever; as
// hrtimer_interrupt does, kdefer retries three times, then reports
// "hrtimer: interrupt took N ns" once and programs the next interrupt that
// long ahead (at least the clock-event device's minimum delta), so the
// CPU's other timers (the task's msleep) keep running and Shutdown
// succeeds. Both time modes; the test's timeout bounds the old hang.
func TestRestartWithoutForwardingIsHrtimerInterruptsHang(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		runs, log, k := stuckTimerScenario(t, virtual, hrtimer.ModeRel)
		reports := regexp.MustCompile(`(?m)^hrtimer: interrupt took (\d+) ns$`).FindAllStringSubmatch(log, -1)
		if len(reports) != 1 {
			t.Errorf("virtual=%t: %d 'interrupt took' reports, want 1 (pr_warn_once):\n%s", virtual, len(reports), log)
		}
		if virtual && len(reports) == 1 && reports[0][1] != "0" {
			t.Errorf("virtual=%t: %q; virtual time does not pass inside an interrupt", virtual, reports[0][0])
		}
		if runs < 3 {
			t.Errorf("virtual=%t: callback ran %d times, want at least the 3 passes of one interrupt", virtual, runs)
		}
		list := hrtimer.TimerList(k)
		if !regexp.MustCompile(`\.nr_hangs +: [1-9]`).MatchString(list) || !regexp.MustCompile(`\.nr_retries +: [1-9]`).MatchString(list) {
			t.Errorf("virtual=%t: /proc/timer_list shows no hang:\n%s", virtual, list)
		}
	}
}

// TestVirtualHangRetriesEveryMinimumDelta pins the virtual-time numbers:
// each interrupt runs the callback in its three passes (nr_retries += 3,
// nr_hangs += 1) and the next comes after the 1 µs minimum delta.
func TestVirtualHangRetriesEveryMinimumDelta(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 1, HZ: 1000, Quiet: true, Virtual: true})
	var runs int
	var tm hrtimer.HRTimer
	hrtimer.Setup(&tm, func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart {
		runs++
		return hrtimer.Restart
	}, hrtimer.ClockMonotonic, hrtimer.ModeAbs)
	hrtimer.Start(k.IdleCtx(0), &tm, 0, hrtimer.ModeAbs)
	ktest.Run(t, k, 10*time.Microsecond+time.Microsecond/2)
	hrtimer.Cancel(k.IdleCtx(0), &tm)
	// Interrupts at 0, 1, …, 10 µs: 11 of them.
	list := hrtimer.TimerList(k)
	for _, want := range []string{".nr_retries     : 33", ".nr_hangs       : 11", ".max_hang_time  : 0"} {
		if !strings.Contains(list, want) {
			t.Errorf("timer_list lacks %q:\n%s", want, list)
		}
	}
	if runs != 33 {
		t.Errorf("callback ran %d times, want 33", runs)
	}
}

// TestSoftRestartWithoutForwardingLetsTimeMove: the same bug in a soft
// timer (HRTIMER_SOFTIRQ): the softirq re-programs the clock event for an
// expiry already past, which the device takes as its minimum delta; the
// CPU's other timers keep running, in both time modes. (The kernel prints
// nothing here.)
func TestSoftRestartWithoutForwardingLetsTimeMove(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		runs, _, _ := stuckTimerScenario(t, virtual, hrtimer.ModeRelSoft)
		if runs < 2 {
			t.Errorf("virtual=%t: callback ran %d times", virtual, runs)
		}
	}
}
