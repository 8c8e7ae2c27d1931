package workqueue_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestAnItemThatSleepsDoesNotDelayAnotherOnTheSameCPU: the first item
// sleeps one simulated second; through the scheduler notifier the pool
// sees its only running worker block and wakes the spare, which runs the
// second item at once.
func TestAnItemThatSleepsDoesNotDelayAnotherOnTheSameCPU(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	var log []string
	sleeper := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		log = append(log, fmt.Sprintf("sleeper starts @%d on %s", c.Kernel().Now()/ms, c.Current().Comm()))
		delay.Ssleep(c, 1)
		log = append(log, fmt.Sprintf("sleeper ends @%d", c.Kernel().Now()/ms))
	})
	quick := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		log = append(log, fmt.Sprintf("quick runs @%d on %s", c.Kernel().Now()/ms, c.Current().Comm()))
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, sleeper)
		workqueue.ScheduleWork(c, quick)
	})
	ktest.Run(t, k, 0)
	want := "sleeper starts @0 on kworker/0:0; quick runs @0 on kworker/0:1; sleeper ends @1024" // msleep's wheel slack
	if got := strings.Join(log, "; "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestItemsThatDoNotSleepRunOneAfterTheOtherOnACPU: concurrency management
// keeps one running worker per CPU: a second item waits for the first to
// finish when the first busy-waits (below the CPU-hog threshold).
func TestItemsThatDoNotSleepRunOneAfterTheOtherOnACPU(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var starts []int64
	busy := func(c *kernel.Ctx, w *workqueue.Work) {
		starts = append(starts, c.Kernel().Now()/ms)
		delay.Mdelay(c, 5)
	}
	a, b := workqueue.Declare(busy), workqueue.Declare(busy)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, a)
		workqueue.ScheduleWork(c, b)
	})
	ktest.Run(t, k, 0)
	if fmt.Sprint(starts) != "[0 5]" {
		t.Fatalf("starts %v ms, want [0 5]", starts)
	}
}

// TestAnItemThatSpinsIsMarkedCPUIntensiveAndReported: an item that runs
// without sleeping for wq_cpu_intensive_thresh_us (20 ms here) is taken out
// of concurrency management — the item queued behind it starts then (the
// pool's tick runs every 2.5 ms, so within 5 ms after the threshold) — and
// from its fourth time on the kernel's report names its function.
func TestAnItemThatSpinsIsMarkedCPUIntensiveAndReported(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	if th := workqueue.CPUIntensiveThresh(k); th != 20000 {
		t.Fatalf("threshold %d us, want 20000 (BogoMIPS 2000)", th)
	}
	var behind []int64
	hog := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Mdelay(c, 50) })
	next := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { behind = append(behind, c.Kernel().Now()/ms) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for i := range 4 {
			start := c.Kernel().Now() / ms
			workqueue.ScheduleWork(c, hog)
			workqueue.ScheduleWork(c, next)
			workqueue.FlushWork(c, hog)
			behind[i] -= start
		}
	})
	for i, d := range behind {
		if d < 20 || d >= 25 {
			t.Fatalf("run %d: the next item started %d ms after the hog, want within 5 ms after the 20 ms threshold", i, d)
		}
	}
	logHas(t, k, "workqueue: TestAnItemThatSpinsIsMarkedCPUIntensiveAndReported hogged CPU for >20000us 4 times, consider switching to WQ_UNBOUND")
	if n := logCount(k, "hogged CPU"); n != 1 {
		t.Fatalf("%d reports after 4 hogs, want 1 (from the 4th on, with backoff)", n)
	}
	st := workqueue.Snapshot(workqueue.System(k))
	if st.CPUIntensive != 4 || st.CMWakeups < 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestARealTimeHogIsMarkedCPUIntensive: in real time, where the pool's
// tick is a deferrable timer run by the Go runtime's timer raising
// TIMER_SOFTIRQ (see modTick), an item that busy-waits 100 ms past a 2 ms
// threshold is still marked CPU_INTENSIVE, and the item queued behind it
// starts while it runs.
func TestARealTimeHogIsMarkedCPUIntensive(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 1, HZ: 1000, Quiet: true})
	workqueue.SetCPUIntensiveThresh(k, 2000)
	c, err := k.Attach(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Detach(c)
	var hogEnd, nextStart atomic.Int64
	hog := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		delay.Mdelay(c, 100)
		hogEnd.Store(c.Kernel().Now())
	})
	next := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { nextStart.Store(c.Kernel().Now()) })
	workqueue.ScheduleWork(c, hog)
	workqueue.ScheduleWork(c, next)
	workqueue.FlushWork(c, hog)
	workqueue.FlushWork(c, next)
	if nextStart.Load() >= hogEnd.Load() {
		t.Fatalf("the item behind the hog started %v after the hog ended: the hog was not marked", time.Duration(nextStart.Load()-hogEnd.Load()))
	}
	if st := workqueue.Snapshot(workqueue.System(k)); st.CPUIntensive != 1 {
		t.Fatalf("%d items marked CPU-intensive, want 1", st.CPUIntensive)
	}
}

// TestCPUIntensiveWorkqueueItemsDoNotBlockTheCPU: WQ_CPU_INTENSIVE items
// never count in nr_running.
func TestCPUIntensiveWorkqueueItemsDoNotBlockTheCPU(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var starts []int64
	busy := func(c *kernel.Ctx, w *workqueue.Work) {
		starts = append(starts, c.Kernel().Now()/ms)
		delay.Mdelay(c, 5)
	}
	a, b := workqueue.Declare(busy), workqueue.Declare(busy)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "crunch", workqueue.CPUIntensive, 0)
		workqueue.QueueWork(c, wq, a)
		workqueue.QueueWork(c, wq, b)
		workqueue.DestroyWorkqueue(c, wq)
	})
	if fmt.Sprint(starts) != "[0 0]" {
		t.Fatalf("starts %v ms, want [0 0]", starts)
	}
}

// TestIdleWorkersAreReapedAfterFiveMinutes: a burst of sleeping items makes
// the pool grow; 300 s after they went idle, the workers beyond the
// allowance (two idle, plus a quarter of the busy ones) are culled.
func TestIdleWorkersAreReapedAfterFiveMinutes(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	items := make([]workqueue.Work, 8)
	for i := range items {
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 100) })
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for i := range items {
			workqueue.ScheduleWork(c, &items[i])
		}
		for i := range items {
			workqueue.FlushWork(c, &items[i])
		}
	})
	workers, idle := workqueue.PoolWorkers(k, 0, false)
	if workers != 9 || idle != 9 {
		t.Fatalf("after the burst: %d workers, %d idle; want 9 and 9", workers, idle)
	}
	// The idle timer is deferrable: something else must wake the CPU.
	ktest.InTask(t, k, func(c *kernel.Ctx) { delay.Ssleep(c, 301) })
	ktest.Run(t, k, 0)
	workers, idle = workqueue.PoolWorkers(k, 0, false)
	if workers != 2 || idle != 2 {
		t.Fatalf("after 301 s: %d workers, %d idle; want 2 (nr_idle > 2 is too many)", workers, idle)
	}
	if n := len(kworkers(k)); n != 2+2 { // CPU 0's pool, plus the unbound pool that ran the cull
		t.Fatalf("%d kworkers left: %v", n, kworkers(k))
	}
}

// TestAWorkFunctionThatLeaksAPreemptCountIsReported: the kernel's BUG line
// after the item, and the next item runs in a clean context.
func TestAWorkFunctionThatLeaksAPreemptCountIsReported(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	leaky := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { kernel.PreemptDisable(c) })
	var clean bool
	after := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { clean = c.PreemptCount() == 0 })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, leaky)
		workqueue.ScheduleWork(c, after)
	})
	ktest.Run(t, k, 0)
	logHas(t, k, "BUG: workqueue leaked atomic, lock or RCU: kworker/0:0[")
	logHas(t, k, "     preempt=0x00000001 lock=0->0 RCU=0->0 workfn=TestAWorkFunctionThatLeaksAPreemptCountIsReported")
	if !clean {
		t.Fatal("the next item ran with the leaked count")
	}
}

// TestAPanicInAWorkFunctionIsAnOopsAndNothingQueuedIsLost: the worker logs
// an Oops, survives, and the items queued behind the panicking one run.
func TestAPanicInAWorkFunctionIsAnOopsAndNothingQueuedIsLost(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	bad := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		kernel.LocalBHDisable(c)
		panic("boom")
	})
	var ran []string
	items := make([]workqueue.Work, 3)
	for i := range items {
		i := i
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
			ran = append(ran, fmt.Sprintf("%d:%s", i, c.Current().Comm()))
		})
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, bad)
		for i := range items {
			workqueue.ScheduleWork(c, &items[i])
		}
		workqueue.FlushWork(c, &items[2])
		if workqueue.Pending(bad) || workqueue.Busy(c, bad) != 0 {
			t.Error("the panicking item is still busy")
		}
		if !workqueue.ScheduleWork(c, bad) {
			t.Error("the panicking item cannot be queued again")
		}
	})
	ktest.Run(t, k, 0)
	if strings.Join(ran, " ") != "0:kworker/0:0 1:kworker/0:0 2:kworker/0:0" {
		t.Fatalf("ran %v", ran)
	}
	logHas(t, k, "Oops: workqueue: work function TestAPanicInAWorkFunctionIsAnOopsAndNothingQueuedIsLost panicked: boom")
	if k.Oopses() != 2 {
		t.Fatalf("%d oopses, want 2", k.Oopses())
	}
}

// TestAWorkFunctionThatEndsItsGoroutineLosesNothing: runtime.Goexit in a
// work function (a test's t.FailNow) ends that worker's task; the pool
// forgets the worker and the items queued behind it still run.
func TestAWorkFunctionThatEndsItsGoroutineLosesNothing(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	quitter := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runtime.Goexit() })
	var ran []int
	items := make([]workqueue.Work, 3)
	for i := range items {
		i := i
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) { ran = append(ran, i) })
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, quitter)
		for i := range items {
			workqueue.ScheduleWork(c, &items[i])
		}
		workqueue.FlushWork(c, &items[2])
		if workqueue.Busy(c, quitter) != 0 || !workqueue.ScheduleWork(c, quitter) {
			t.Error("the item whose function ended its goroutine is still busy")
		}
		workqueue.FlushWork(c, quitter)
	})
	if fmt.Sprint(ran) != "[0 1 2]" {
		t.Fatalf("ran %v", ran)
	}
	logHas(t, k, "task function exited its goroutine (runtime.Goexit)")
}
