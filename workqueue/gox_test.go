package workqueue_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestShutdownDrainRunsEverythingIncludingDelayedItems: queued, delayed
// (cut short) and chained items all run; then the workqueue is destroyed
// and refuses new items without a warning.
func TestShutdownDrainRunsEverythingIncludingDelayedItems(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var ran atomic.Int32
	var wq *workqueue.Workqueue
	var chained workqueue.Work
	workqueue.Init(&chained, func(c *kernel.Ctx, w *workqueue.Work) { ran.Add(1) })
	first := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		delay.Msleep(c, 5)
		ran.Add(1)
		workqueue.QueueWork(c, wq, &chained)
	})
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { ran.Add(1) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "app", 0, 0)
		workqueue.QueueWork(c, wq, first)
		workqueue.QueueDelayedWork(c, wq, dw, 60*1000)
		start := c.Kernel().Now()
		if err := workqueue.Shutdown(c, wq, workqueue.Drain, time.Second); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if d := c.Kernel().Now() - start; d > 10*ms {
			t.Errorf("drain took %d ms: the delayed item was not cut short", d/ms)
		}
		if workqueue.QueueWork(c, wq, first) {
			t.Error("queueing after Shutdown succeeded")
		}
		if err := workqueue.Shutdown(c, wq, workqueue.Drain, 0); !errors.Is(err, workqueue.ErrClosed) {
			t.Errorf("second Shutdown: %v", err)
		}
	})
	if ran.Load() != 3 || k.Warnings() != 0 {
		t.Fatalf("ran %d items, warnings %d; want 3 and 0:\n%s", ran.Load(), k.Warnings(), ktest.Text(k))
	}
}

// TestShutdownCancelCancelsPendingItemsAndWaitsForRunningOnes.
func TestShutdownCancelCancelsPendingItemsAndWaitsForRunningOnes(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var ran, finished atomic.Int32
	running := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		delay.Msleep(c, 30)
		finished.Add(1)
	})
	items := make([]workqueue.Work, 5)
	for i := range items {
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) { ran.Add(1) })
	}
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { ran.Add(1) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "app", 0, 1)
		workqueue.QueueWork(c, wq, running)
		for i := range items {
			workqueue.QueueWork(c, wq, &items[i]) // inactive: max_active 1
		}
		workqueue.QueueDelayedWork(c, wq, dw, 100)
		delay.Msleep(c, 1)
		if err := workqueue.Shutdown(c, wq, workqueue.Cancel, 0); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if finished.Load() != 1 {
			t.Error("Shutdown returned before the running item finished")
		}
		for i := range items {
			if workqueue.Pending(&items[i]) {
				t.Errorf("item %d still pending", i)
			}
		}
		if workqueue.DelayedWorkPending(dw) {
			t.Error("the delayed item is still pending")
		}
		delay.Msleep(c, 200)
	})
	if ran.Load() != 0 {
		t.Fatalf("%d cancelled items ran", ran.Load())
	}
}

// TestShutdownGivesUpAfterItsTimeoutWithAnError: the running item sleeps
// 10 s; a 1 s shutdown returns ErrTimeout with the count left, and a second
// call with more time finishes the job.
func TestShutdownGivesUpAfterItsTimeoutWithAnError(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	slow := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Ssleep(c, 10) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "slow", 0, 0)
		workqueue.QueueWork(c, wq, slow)
		start := c.Kernel().Now()
		err := workqueue.Shutdown(c, wq, workqueue.Drain, time.Second)
		if !errors.Is(err, workqueue.ErrTimeout) || err.Error() != "workqueue: shutdown slow (drain): 1 items left after 1s: workqueue: shutdown timed out" {
			t.Errorf("err %v", err)
		}
		if d := (c.Kernel().Now() - start) / ms; d < 1000 || d > 1000+1000/8 { // the timeout timer's wheel slack
			t.Errorf("gave up after %d ms", d)
		}
		if err := workqueue.Shutdown(c, wq, workqueue.Drain, 20*time.Second); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
	})
}

// TestShutdownFromAnAttachedGoroutineEndsWhenItsContextIsCancelled: the
// context-aware wait: the parent context of the attached goroutine is
// cancelled (here by a timer after 50 ms of kernel time), and Shutdown
// returns ErrInterrupted.
func TestShutdownFromAnAttachedGoroutineEndsWhenItsContextIsCancelled(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := k.Attach(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Detach(c)
	stuck := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Ssleep(c, 5) })
	canceller := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		delay.Msleep(c, 50)
		cancel()
	})
	wq, _ := workqueue.AllocWorkqueue(c, "app", 0, 0)
	workqueue.QueueWork(c, wq, stuck)
	workqueue.ScheduleWork(c, canceller)
	err = workqueue.Shutdown(c, wq, workqueue.Drain, 0)
	if !errors.Is(err, workqueue.ErrInterrupted) {
		t.Fatalf("Shutdown: %v", err)
	}
	// The driver polls the parent context between events of the
	// virtual kernel: the return comes at the first event after 50 ms.
	if now := k.Now() / ms; now < 50 || now > 100 {
		t.Fatalf("returned at %d ms", now)
	}
}

// TestRetryWorkBacksOffExponentiallyAndResetsOnSuccess: failures at 0,
// then retries 5, 10, 20 ms apart; a success resets the count (nothing to
// Forget); MaxRetries gives up with OnGiveUp.
func TestRetryWorkBacksOffExponentiallyAndResetsOnSuccess(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var at []int64
	var rw workqueue.RetryWork
	workqueue.InitRetry(&rw, func(c *kernel.Ctx, rw *workqueue.RetryWork) error {
		at = append(at, c.Kernel().Now()/ms)
		if len(at) < 4 {
			return fmt.Errorf("try %d failed", len(at))
		}
		return nil
	}, workqueue.Backoff{Base: 5 * time.Millisecond, Max: time.Second})
	var gaveUp error
	var flaky workqueue.RetryWork
	workqueue.InitRetry(&flaky, func(c *kernel.Ctx, rw *workqueue.RetryWork) error {
		return errors.New("always")
	}, workqueue.Backoff{Base: time.Millisecond, MaxRetries: 2, OnGiveUp: func(c *kernel.Ctx, rw *workqueue.RetryWork, err error) { gaveUp = err }})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.QueueRetry(c, workqueue.System(c.Kernel()), &rw)
		workqueue.QueueRetry(c, workqueue.System(c.Kernel()), &flaky)
	})
	ktest.Run(t, k, 0)
	if fmt.Sprint(at) != "[0 6 17 38]" { // +5, +10, +20 ms, each one jiffy late on the wheel
		t.Fatalf("runs at %v ms", at)
	}
	if rw.Failures() != 0 {
		t.Fatalf("failures %d after the success, want 0", rw.Failures())
	}
	if gaveUp == nil || gaveUp.Error() != "workqueue: gave up after 3 failures: always" {
		t.Fatalf("give up: %v", gaveUp)
	}
}

// TestRateLimiterSpacesRetriesOfManyItems: a shared token bucket of 10/s
// with a burst of 2 delays the third and later retries.
func TestRateLimiterSpacesRetriesOfManyItems(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	lim := &workqueue.RateLimiter{Rate: 10, Burst: 2}
	var ds []time.Duration
	for range 4 {
		ds = append(ds, lim.Reserve(k))
	}
	if fmt.Sprint(ds) != "[0s 0s 100ms 200ms]" {
		t.Fatalf("delays %v", ds)
	}
}

// TestSnapshotCountsQueuedExecutedAndLatency: the counters, and the
// queue-to-start latency of the measured items. Of 32 items that
// busy-wait 1 ms each, queued at once, the first finds its pool idle (always
// measured) and the second is the first of the busy pool's one in 128;
// then three items queued one at a time, each to an idle pool, are each
// measured.
func TestSnapshotCountsQueuedExecutedAndLatency(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	items := make([]workqueue.Work, 32)
	for i := range items {
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) { delay.Mdelay(c, 1) })
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "stats", 0, 0)
		for i := range items {
			workqueue.QueueWork(c, wq, &items[i])
		}
		st := workqueue.Snapshot(wq)
		if st.Queued != 32 || st.InFlight != 32 || st.Active != 32 || st.Completed != 0 {
			t.Errorf("before: %+v", st)
		}
		workqueue.FlushWorkqueue(c, wq)
		st = workqueue.Snapshot(wq)
		if st.Queued != 32 || st.Started != 32 || st.Completed != 32 || st.InFlight != 0 {
			t.Errorf("after: %+v", st)
		}
		if l := st.QueueLatency; l.Count != 2 || l.Max != time.Millisecond || l.Mean != 500*time.Microsecond || st.MaxRunTime != time.Millisecond {
			t.Errorf("latency %+v max run %v", l, st.MaxRunTime)
		}
		if l := st.QueueLatency; l.P50 != 0 || l.P99 < time.Millisecond || l.P99 > 2*time.Millisecond {
			t.Errorf("p50 %v p99 %v", l.P50, l.P99)
		}
		for i := range 3 {
			workqueue.QueueWork(c, wq, &items[i])
			workqueue.FlushWorkqueue(c, wq)
		}
		if l := workqueue.Snapshot(wq).QueueLatency; l.Count != 5 || l.Max != time.Millisecond {
			t.Errorf("after three items queued to an idle pool: %+v", l)
		}
		workqueue.DestroyWorkqueue(c, wq)
	})
}

// TestLongestRunningShowsTheCurrentItemsAge.
func TestLongestRunningShowsTheCurrentItemsAge(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 100) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 40)
		st := workqueue.Snapshot(workqueue.System(c.Kernel()))
		if st.Running != 1 || st.LongestRunning < 40*time.Millisecond || st.LongestRunning > 42*time.Millisecond {
			t.Errorf("running %d longest %v", st.Running, st.LongestRunning)
		}
		workqueue.FlushWork(c, w)
	})
}
