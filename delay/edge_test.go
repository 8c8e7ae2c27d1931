package delay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// TestNegativeTimeoutIsRejectedEvenWithASignalPending: the
// schedule_timeout_* wrappers always reach schedule_timeout, which rejects
// a negative timeout (error line, 0) before a pending signal matters.
func TestNegativeTimeoutIsRejectedEvenWithASignalPending(t *testing.T) {
	k := bootK(t, 1000)
	var ret int64 = 99
	inTask(t, k, func(c *kernel.Ctx) {
		k.SendSignal(c.Current(), kernel.SIGUSR1)
		ret = delay.ScheduleTimeoutInterruptible(c, -5)
	})
	if ret != 0 || !strings.Contains(logText(k), "schedule_timeout: wrong timeout value fffffffffffffffb") {
		t.Errorf("schedule_timeout_interruptible(-5) = %d, log:\n%s", ret, logText(k))
	}
}

// TestNegativeTimeoutFromATimerCallbackOnlyPrintsTheError: the error path
// sets TASK_RUNNING silently in any context; no WARNING follows.
func TestNegativeTimeoutFromATimerCallbackOnlyPrintsTheError(t *testing.T) {
	k := bootK(t, 250)
	var tm timer.Timer
	ret := int64(99)
	inTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) { ret = delay.ScheduleTimeout(c, -1) }, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	if err := k.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	log := logText(k)
	if ret != 0 || strings.Contains(log, "WARNING:") || !strings.Contains(log, "wrong timeout value") {
		t.Errorf("schedule_timeout(-1) in a callback = %d, log:\n%s", ret, log)
	}
}

// TestMsleepZeroUnderASpinlockIsSilent: msleep(0) (≥v6.12) never schedules.
func TestMsleepZeroUnderASpinlockIsSilent(t *testing.T) {
	k := bootK(t, 1000)
	var left uint32 = 99
	inTask(t, k, func(c *kernel.Ctx) {
		var l kernel.SpinLock
		l.Lock(c)
		delay.Msleep(c, 0)
		left = delay.MsleepInterruptible(c, 0)
		l.Unlock(c)
	})
	if log := logText(k); log != "" || left != 0 {
		t.Errorf("msleep_interruptible(0) = %d; log:\n%s", left, log)
	}
}

// TestMaxScheduleTimeoutInAtomicContextLeavesTheTaskRunning: like every
// other return from schedule_timeout.
func TestMaxScheduleTimeoutInAtomicContextLeavesTheTaskRunning(t *testing.T) {
	k := bootK(t, 1000)
	var st kernel.TaskState
	inTask(t, k, func(c *kernel.Ctx) {
		var l kernel.SpinLock
		l.Lock(c)
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		delay.ScheduleTimeout(c, delay.MaxScheduleTimeout)
		st = c.Current().State()
		l.Unlock(c)
	})
	if st != kernel.TaskRunning {
		t.Errorf("state %s after schedule_timeout(MAX) in atomic context", st.String())
	}
}

// TestInterruptibleUsleepRangeWithASignalPendingEndsAfterMin: the task
// cannot sleep, so the kernel's loop spins until the hrtimer fires; in
// virtual time that must move the clock, not loop forever.
func TestInterruptibleUsleepRangeWithASignalPendingEndsAfterMin(t *testing.T) {
	k := bootK(t, 1000)
	var took int64 = -1
	inTask(t, k, func(c *kernel.Ctx) {
		k.SendSignal(c.Current(), kernel.SIGUSR1)
		t0 := k.Now()
		delay.UsleepRangeState(c, 100, 200, kernel.TaskInterruptible)
		took = k.Now() - t0
	})
	if took < 100_000 || took > 200_000 {
		t.Errorf("usleep_range_state(100, 200, TASK_INTERRUPTIBLE) with a signal pending took %d ns, want [100 µs, 200 µs]", took)
	}
}

// TestShutdownEndsAUsleepRangeLoop: once the kernel shuts down no hrtimer
// fires again, so usleep_range must return (as msleep does) for a polling
// loop around it to end and Shutdown to finish.
func TestShutdownEndsAUsleepRangeLoop(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k, err := kernel.Boot(kernel.Config{Virtual: virtual, CPUs: 1, HZ: 1000, Quiet: true})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		tk, err := k.Spawn("poller", func(c *kernel.Ctx) int {
			close(started)
			for !k.ShuttingDown() {
				delay.UsleepRange(c, 10_000_000, 20_000_000) // 10 s
			}
			return 0
		})
		if err != nil {
			t.Fatal(err)
		}
		if virtual {
			if err := k.Run(context.Background(), time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		<-started
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- k.Shutdown(ctx)
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("virtual=%t: Shutdown: %v", virtual, err)
			}
		case <-time.After(30 * time.Second): // only on failure: a virtual shutdown that hangs ignores its ctx
			t.Fatalf("virtual=%t: Shutdown hangs on a task in usleep_range", virtual)
		}
		<-tk.Exited()
	}
}
