package workqueue_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestScheduleWorkRunsInAKworkerOfTheCallersCPU: schedule_work from a task
// on CPU 1 runs the item in process context on kworker/1:0, once.
func TestScheduleWorkRunsInAKworkerOfTheCallersCPU(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var runs []string
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		runs = append(runs, fmt.Sprintf("%s cpu%d task=%v kthread=%v", c.Current().Comm(), c.CPU(), c.InTask(), c.Current().IsKthread()))
	})
	onCPU(t, k, "app", 1, func(c *kernel.Ctx) {
		if !workqueue.ScheduleWork(c, w) {
			t.Error("schedule_work returned false for an idle item")
		}
	})
	ktest.Run(t, k, 0)
	if got := strings.Join(runs, "; "); got != "kworker/1:0 cpu1 task=true kthread=true" {
		t.Fatalf("runs %q", got)
	}
}

// TestQueueingAPendingItemReturnsFalseAndItRunsOnce: the second and third
// queue_work find PENDING set and change nothing.
func TestQueueingAPendingItemReturnsFalseAndItRunsOnce(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	var rets []bool
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for range 3 {
			rets = append(rets, workqueue.ScheduleWork(c, w))
		}
		if !workqueue.Pending(w) {
			t.Error("not pending after queueing")
		}
	})
	ktest.Run(t, k, 0)
	if fmt.Sprint(rets) != "[true false false]" || runs != 1 {
		t.Fatalf("returns %v, runs %d; want [true false false] and 1 run", rets, runs)
	}
	if workqueue.Pending(w) {
		t.Fatal("still pending after the run")
	}
}

// TestQueueingARunningItemQueuesItAgain: PENDING is cleared before the
// function runs, so queueing the item while it runs returns true and it
// runs a second time, after the first.
func TestQueueingARunningItemQueuesItAgain(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var runs []int64
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		runs = append(runs, c.Kernel().Now()/ms)
		if len(runs) == 1 {
			delay.Msleep(c, 10)
		}
	})
	var again bool
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 5) // the item now sleeps in its function
		if workqueue.Pending(w) {
			t.Error("PENDING still set while the item runs")
		}
		again = workqueue.ScheduleWork(c, w)
	})
	ktest.Run(t, k, 0)
	if !again || len(runs) != 2 || runs[1] < 10 {
		t.Fatalf("requeue returned %v, runs at %v ms; want true and a second run after the first ended", again, runs)
	}
}

// TestImmediateAndDelayedQueueingShareOnePendingBit: with the timer armed,
// queue_work of the same item returns false, and it runs once, at its
// delay; and an item queued at once cannot be delay-queued.
func TestImmediateAndDelayedQueueingShareOnePendingBit(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var runs []int64
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { runs = append(runs, c.Kernel().Now()/ms) })
	var r1, r2, r3 bool
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		r1 = workqueue.ScheduleDelayedWork(c, dw, 50)
		r2 = workqueue.ScheduleWork(c, &dw.Work)
		delay.Msleep(c, 100)
		workqueue.ScheduleWork(c, &dw.Work)
		r3 = workqueue.ScheduleDelayedWork(c, dw, 50)
	})
	ktest.Run(t, k, 0)
	if !r1 || r2 || r3 {
		t.Fatalf("returns %v %v %v, want true false false", r1, r2, r3)
	}
	if len(runs) != 2 || runs[0] < 50 || runs[0] > 52 {
		t.Fatalf("runs at %v ms, want one at ~50 ms and one after 100", runs)
	}
}

// TestAnItemNeverRunsOnTwoWorkersAtOnce: queued from CPU 1 while it runs on
// CPU 0, the item goes to the pool where it runs and runs there after the
// first run, never concurrently.
func TestAnItemNeverRunsOnTwoWorkersAtOnce(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var in atomic.Int32
	var runs []string
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		if in.Add(1) != 1 {
			t.Error("ran on two workers at once")
		}
		runs = append(runs, fmt.Sprintf("%s@%d", c.Current().Comm(), c.Kernel().Now()/ms))
		delay.Msleep(c, 20)
		in.Add(-1)
	})
	onCPU(t, k, "a", 0, func(c *kernel.Ctx) { workqueue.ScheduleWork(c, w) })
	onCPU(t, k, "b", 1, func(c *kernel.Ctx) {
		delay.Msleep(c, 5)
		if !workqueue.ScheduleWork(c, w) {
			t.Error("queueing the running item returned false")
		}
	})
	ktest.Run(t, k, 0)
	if len(runs) != 2 || !strings.HasPrefix(runs[0], "kworker/0:") || !strings.HasPrefix(runs[1], "kworker/0:") {
		t.Fatalf("runs %v, want two runs on CPU 0's pool", runs)
	}
}

// TestWorkBusyReportsPendingAndRunning: work_busy is PENDING while queued,
// RUNNING while the function runs, both when requeued while running.
func TestWorkBusyReportsPendingAndRunning(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var inside uint32
	var w *workqueue.Work
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		if inside == 0 {
			inside = workqueue.Busy(c, w)
			workqueue.ScheduleWork(c, w)
			inside |= workqueue.Busy(c, w) << 4
		}
	})
	var before, after uint32
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		before = workqueue.Busy(c, w)
		delay.Msleep(c, 10)
		after = workqueue.Busy(c, w)
	})
	if before != workqueue.BusyPending || inside != workqueue.BusyRunning|(workqueue.BusyRunning|workqueue.BusyPending)<<4 || after != 0 {
		t.Fatalf("busy before %#x inside %#x after %#x", before, inside, after)
	}
}

// TestFromWorkAndToDelayedWorkFindTheOwner: container_of for an embedded
// item and to_delayed_work inside a delayed work function.
func TestFromWorkAndToDelayedWorkFindTheOwner(t *testing.T) {
	type dev struct {
		name string
		work workqueue.Work
		dw   workqueue.DelayedWork
	}
	k := ktest.Virtual(t, 1, 1000)
	d := &dev{name: "sed3"}
	var got []string
	workqueue.Init(&d.work, func(c *kernel.Ctx, w *workqueue.Work) {
		got = append(got, workqueue.FromWork[dev](w, unsafe.Offsetof(dev{}.work)).name)
	})
	workqueue.InitDelayed(&d.dw, func(c *kernel.Ctx, w *workqueue.Work) {
		dw := workqueue.ToDelayedWork(w)
		got = append(got, fmt.Sprint(dw == &d.dw))
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, &d.work)
		workqueue.ScheduleDelayedWork(c, &d.dw, 1)
	})
	ktest.Run(t, k, 0)
	if strings.Join(got, " ") != "sed3 true" {
		t.Fatalf("got %v", got)
	}
	if workqueue.ToDelayedWork(&d.work) != nil {
		t.Fatal("ToDelayedWork of a plain item is not nil")
	}
}
