package wait_test

import (
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// kthreadStop does to t what kthread_stop does before it waits for the
// thread to exit.
func kthreadStop(t *kernel.Task) { t.Cancel(kernel.ErrKthreadStop) }

func kthread(t *testing.T, k *kernel.Kernel, fn func(c *kernel.Ctx)) *kernel.Task {
	t.Helper()
	kt, err := k.CreateTask(kernel.TaskOpts{Comm: "kt", Kthread: true, CPU: -1}, func(c *kernel.Ctx) int {
		fn(c)
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(kt)
	return kt
}

// TestKthreadStopInterruptsInterruptibleWaits: kthread_stop sets
// TIF_NOTIFY_SIGNAL, so signal_pending() is true in the thread from then
// on: an interruptible wait returns -ERESTARTSYS and msleep_interruptible
// returns its whole time at once. A killable wait is not interrupted.
func TestKthreadStopInterruptsInterruptibleWaits(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	ret, left := int64(99), uint32(0)
	var pending bool
	var start, end uint64
	var r rig
	kt := kthread(t, k, func(c *kernel.Ctx) {
		ret = int64(wait.EventInterruptible(c, &q, r.flag.Load))
		pending = c.SignalPending()
		start = c.Jiffies()
		left = delay.MsleepInterruptible(c, 1000)
		end = c.Jiffies()
	})
	run(t, k)
	kthreadStop(kt)
	run(t, k)
	if ret != erestartsys || !pending || left != 1000 || end != start {
		t.Errorf("wait_event_interruptible = %d, signal_pending = %t, msleep_interruptible(1000) = %d after %d jiffies; want %d, true, 1000 at once",
			ret, pending, left, end-start, erestartsys)
	}
}

// TestKthreadStopWakesIdleAndUninterruptibleSleepers: kthread_stop wakes
// with wake_up_process (TASK_NORMAL), so a thread in wait_event_idle whose
// condition tests kthread_should_stop exits without another wakeup.
func TestKthreadStopWakesIdleAndUninterruptibleSleepers(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	returned := false
	kt := kthread(t, k, func(c *kernel.Ctx) {
		wait.EventIdle(c, &q, func() bool { return c.KthreadShouldStop() })
		returned = true
	})
	run(t, k)
	kthreadStop(kt)
	run(t, k)
	if !returned {
		t.Errorf("wait_event_idle still asleep in %s after kthread_stop", kt.State().String())
	}
}

// TestKthreadShouldStopSurvivesAnEarlierSignalAndFlushSignals: the stop
// request is its own bit, not the context's first cancellation cause.
func TestKthreadShouldStopSurvivesAnEarlierSignalAndFlushSignals(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var before, after bool
	var ret int64
	kt := kthread(t, k, func(c *kernel.Ctx) {
		kernel.AllowSignal(c, kernel.SIGUSR1)
		wait.EventKillable(c, &q, func() bool { return c.KthreadShouldStop() })
		before = c.KthreadShouldStop()
		kernel.FlushSignals(c)
		after = c.KthreadShouldStop()
		var e wait.Entry
		wait.InitWaitFunc(c, &e, wait.WokenWakeFunction)
		wait.Add(&q, &e)
		ret = wait.WaitWoken(c, &e, kernel.TaskUninterruptible, 100)
		wait.Remove(&q, &e)
	})
	run(t, k)
	k.SendSignal(kt, kernel.SIGUSR1)
	run(t, k)
	kthreadStop(kt)
	run(t, k)
	if !before || !after || ret != 100 {
		t.Errorf("kthread_should_stop before/after flush_signals = %t/%t, wait_woken = %d; want true/true, 100", before, after, ret)
	}
}
