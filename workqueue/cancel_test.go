package workqueue_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestQueueDelayedWorkWithZeroDelayQueuesAtOnce: delay 0 queues without a
// timer; the item runs before a jiffy has passed.
func TestQueueDelayedWorkWithZeroDelayQueuesAtOnce(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ran := int64(-1)
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { ran = c.Kernel().Now() })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleDelayedWork(c, dw, 0)
	})
	ktest.Run(t, k, 0)
	if ran != 0 {
		t.Fatalf("ran at %d ns, want 0", ran)
	}
}

// TestModDelayedWorkReturnsWhetherItWasPendingAndMovesTheTimerEitherWay:
// false when it queued an idle item, true when it modified a pending one;
// the item runs once, at the last delay set, earlier or later.
func TestModDelayedWorkReturnsWhetherItWasPendingAndMovesTheTimerEitherWay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second uint64
		want   int64
	}{{"later", 300, 300}, {"earlier", 20, 20}} {
		t.Run(tc.name, func(t *testing.T) {
			k := ktest.Virtual(t, 1, 1000)
			var runs []int64
			dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { runs = append(runs, c.Kernel().Now()/ms) })
			var r1, r2 bool
			ktest.InTask(t, k, func(c *kernel.Ctx) {
				wq := workqueue.System(c.Kernel())
				r1 = workqueue.ModDelayedWork(c, wq, dw, 100)
				r2 = workqueue.ModDelayedWork(c, wq, dw, tc.second)
			})
			ktest.Run(t, k, 0)
			if r1 || !r2 {
				t.Fatalf("returns %v %v, want false true", r1, r2)
			}
			if len(runs) != 1 || runs[0] < tc.want || runs[0] > tc.want+tc.want/8+1 {
				t.Fatalf("runs at %v ms, want one at %d ms", runs, tc.want)
			}
		})
	}
}

// TestModDelayedWorkWithZeroDelayRunsAQueuedItemNow: an item whose timer
// is pending runs at once after mod_delayed_work(…, 0).
func TestModDelayedWorkWithZeroDelayRunsAQueuedItemNow(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var runs []int64
	var modAt int64
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { runs = append(runs, c.Kernel().Now()) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleDelayedWork(c, dw, 1000)
		delay.Msleep(c, 10)
		modAt = c.Kernel().Now()
		if !workqueue.ModDelayedWork(c, workqueue.System(c.Kernel()), dw, 0) {
			t.Error("mod_delayed_work of a pending item returned false")
		}
	})
	ktest.Run(t, k, 0)
	if len(runs) != 1 || runs[0] != modAt {
		t.Fatalf("runs at %v ns, want one at %d (the mod)", runs, modAt)
	}
}

// TestCancelWorkReturnsTrueOnlyIfItWasPending: cancel_work of a queued item
// takes it off (it never runs); of an idle item returns false.
func TestCancelWorkReturnsTrueOnlyIfItWasPending(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	var r1, r2 bool
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.PreemptDisable(c) // keep the worker from running it meanwhile
		workqueue.ScheduleWork(c, w)
		r1 = workqueue.CancelWork(c, w)
		r2 = workqueue.CancelWork(c, w)
		kernel.PreemptEnable(c)
	})
	ktest.Run(t, k, 0)
	if !r1 || r2 || runs != 0 {
		t.Fatalf("cancel returned %v then %v, runs %d; want true, false, 0", r1, r2, runs)
	}
}

// TestCancelWorkSyncWaitsForTheRunningInstance: cancel_work_sync of a
// running item returns false (it was not pending) only once the function
// has returned; nothing runs afterwards.
func TestCancelWorkSyncWaitsForTheRunningInstance(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var done atomic.Bool
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		delay.Msleep(c, 50)
		done.Store(true)
	})
	var ret bool
	var at int64
	var state kernel.TaskState
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 10)
		ret = workqueue.CancelWorkSync(c, w)
		at = c.Kernel().Now() / ms
		if !done.Load() {
			t.Error("cancel_work_sync returned while the function ran")
		}
	})
	_ = state
	if ret || at < 50 {
		t.Fatalf("returned %v at %d ms, want false after the 50 ms run", ret, at)
	}
}

// TestCancelWorkSyncStopsAnItemThatRequeuesItself: the item queues itself
// at the end of every run; after cancel_work_sync it neither runs nor is
// pending, and it can be queued again afterwards.
func TestCancelWorkSyncStopsAnItemThatRequeuesItself(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var runs atomic.Int32
	var w *workqueue.Work
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		runs.Add(1)
		delay.Msleep(c, 3)
		workqueue.ScheduleWork(c, w)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 20)
		workqueue.CancelWorkSync(c, w)
		n := runs.Load()
		if workqueue.Pending(w) {
			t.Error("pending after cancel_work_sync")
		}
		delay.Msleep(c, 50)
		if runs.Load() != n {
			t.Errorf("ran %d more times after cancel_work_sync", runs.Load()-n)
		}
		if !workqueue.ScheduleWork(c, w) {
			t.Error("cannot queue again after cancel_work_sync")
		}
		workqueue.CancelWorkSync(c, w)
	})
}

// TestCancelDelayedWorkSyncStopsThePendingTimer: true when the timer was
// pending; the function never runs.
func TestCancelDelayedWorkSyncStopsThePendingTimer(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	var r1, r2 bool
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleDelayedWork(c, dw, 100)
		delay.Msleep(c, 10)
		r1 = workqueue.CancelDelayedWorkSync(c, dw)
		r2 = workqueue.CancelDelayedWork(c, dw)
	})
	ktest.Run(t, k, 0)
	if !r1 || r2 || runs != 0 {
		t.Fatalf("returns %v %v runs %d, want true false 0", r1, r2, runs)
	}
}

// TestDisabledItemCannotBeQueuedUntilEnabledAgain: disable counts nest;
// queueing fails while the count is not 0; enable_work returns true when it
// reaches 0 and does not queue; enabling once too often is warned about.
func TestDisabledItemCannotBeQueuedUntilEnabledAgain(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	var got []bool
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.PreemptDisable(c)
		workqueue.ScheduleWork(c, w)
		got = append(got, workqueue.DisableWork(c, w)) // true: was pending
		kernel.PreemptEnable(c)
		got = append(got, workqueue.DisableWorkSync(c, w)) // false
		got = append(got, workqueue.ScheduleWork(c, w))    // false: disabled
		got = append(got, workqueue.EnableWork(c, w))      // false: count 1
		got = append(got, workqueue.ScheduleWork(c, w))    // false
		got = append(got, workqueue.EnableWork(c, w))      // true: count 0
		delay.Msleep(c, 5)
		got = append(got, runs == 0) // enable did not queue
		// Enabling once too often warns; the count stays 0, so
		// enable_work returns true (the kernel's !offqd.disable).
		got = append(got, workqueue.EnableWork(c, w))
	})
	ktest.Run(t, k, 0)
	if fmt.Sprint(got) != "[true false false false false true true true]" {
		t.Fatalf("got %v", got)
	}
	logHas(t, k, "workqueue: work disable count underflowed")
}

// TestEnableAndQueueWorkQueuesWhenTheCountReachesZero: the tasklet_enable
// replacement.
func TestEnableAndQueueWorkQueuesWhenTheCountReachesZero(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.DisableWork(c, w)
		if !workqueue.EnableAndQueueWork(c, workqueue.System(c.Kernel()), w) {
			t.Error("enable_and_queue_work returned false at count 0")
		}
	})
	ktest.Run(t, k, 0)
	if runs != 1 {
		t.Fatalf("runs %d, want 1", runs)
	}
}

// TestScheduleOnEachCPURunsOnEveryCPUAndWaits: schedule_on_each_cpu returns
// 0 after the function ran once on every CPU, in that CPU's kworker.
func TestScheduleOnEachCPURunsOnEveryCPUAndWaits(t *testing.T) {
	k := ktest.Virtual(t, 3, 1000)
	var seen [3]string
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		ret := workqueue.ScheduleOnEachCPU(c, func(c *kernel.Ctx, w *workqueue.Work) {
			delay.Msleep(c, 1)
			seen[c.CPU()] = c.Current().Comm()
		})
		if ret != 0 || seen != [3]string{"kworker/0:0", "kworker/1:0", "kworker/2:0"} {
			t.Errorf("ret %d, ran in %v", ret, seen)
		}
	})
}

// TestExecuteInProcessContextRunsNowInATaskAndDefersFromASoftirq: 0 and the
// function run at once in process context; 1 and a kworker from softirq.
func TestExecuteInProcessContextRunsNowInATaskAndDefersFromASoftirq(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var where []string
	fn := func(c *kernel.Ctx, w *workqueue.Work) { where = append(where, c.Current().Comm()) }
	var ew workqueue.ExecuteWork
	var rets []int
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		rets = append(rets, workqueue.ExecuteInProcessContext(c, fn, &ew))
		kernel.LocalBHDisable(c) // in_interrupt() is true with BH disabled
		rets = append(rets, workqueue.ExecuteInProcessContext(c, fn, &ew))
		kernel.LocalBHEnable(c)
	})
	ktest.Run(t, k, 0)
	if fmt.Sprint(rets) != "[0 1]" || fmt.Sprint(where) != "[test kworker/0:0]" {
		t.Fatalf("returns %v, ran in %v", rets, where)
	}
}
