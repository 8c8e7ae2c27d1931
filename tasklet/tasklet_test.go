package tasklet_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/tasklet"
)

const ms = int64(time.Millisecond)

// TestTaskletScheduledSeveralTimesBeforeItRunsRunsOnce: SCHED is already set
// for the second and third tasklet_schedule, which do nothing.
func TestTaskletScheduledSeveralTimesBeforeItRunsRunsOnce(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) { runs++ })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c) // hold the softirq off until all three are done
		for range 3 {
			tasklet.Schedule(c, tl)
		}
		if tasklet.State(tl) != tasklet.StateSched {
			t.Errorf("state %#x, want SCHED", tasklet.State(tl))
		}
		kernel.LocalBHEnable(c)
	})
	ktest.Run(t, k, 0)
	if runs != 1 {
		t.Fatalf("ran %d times, want 1", runs)
	}
	if tasklet.State(tl) != 0 {
		t.Fatalf("state %#x after the run, want 0", tasklet.State(tl))
	}
}

// TestTaskletRescheduledFromItsOwnCallbackRunsAgain: SCHED is cleared
// before the callback is called, so scheduling from it queues a new run.
func TestTaskletRescheduledFromItsOwnCallbackRunsAgain(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var ctxs []string
	tl := tasklet.Declare(func(c *kernel.Ctx, self *tasklet.Tasklet) {
		ctxs = append(ctxs, fmt.Sprintf("softirq=%v task=%v", c.InServingSoftirq(), c.InTask()))
		if len(ctxs) < 3 {
			tasklet.Schedule(c, self)
		}
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) { tasklet.Schedule(c, tl) })
	ktest.Run(t, k, 0)
	if len(ctxs) != 3 || ctxs[0] != "softirq=true task=false" {
		t.Fatalf("runs %q, want 3 in softirq context", ctxs)
	}
}

// TestTaskletScheduledWhileRunningElsewhereRunsAgainAfterAndNeverConcurrently:
// the callback runs on CPU 0 and busy-waits 10 ms; CPU 1 schedules it at
// 5 ms. CPU 1's tasklet softirq finds RUN set, re-polls, and runs it once
// CPU 0's run is over.
func TestTaskletScheduledWhileRunningElsewhereRunsAgainAfterAndNeverConcurrently(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var runs []string
	var in atomic.Int32
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) {
		if in.Add(1) != 1 {
			t.Error("ran concurrently with itself")
		}
		runs = append(runs, fmt.Sprintf("cpu%d@%dms", c.CPU(), c.Kernel().Now()/ms))
		delay.Mdelay(c, 10)
		in.Add(-1)
	})
	ktest.OnCPU(t, k, "a", 0, func(c *kernel.Ctx) { tasklet.Schedule(c, tl) })
	ktest.OnCPU(t, k, "b", 1, func(c *kernel.Ctx) {
		delay.Mdelay(c, 5)
		tasklet.Schedule(c, tl)
	})
	ktest.Run(t, k, 0)
	if got := strings.Join(runs, " "); got != "cpu0@0ms cpu1@10ms" {
		t.Fatalf("runs %q, want cpu0@0ms cpu1@10ms", got)
	}
}

// TestDisabledTaskletStaysQueuedAndRunsOnceEnabled: scheduling a disabled
// tasklet queues it; it runs right after tasklet_enable, once.
func TestDisabledTaskletStaysQueuedAndRunsOnceEnabled(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var runs []int64
	tl := tasklet.DeclareDisabled(func(c *kernel.Ctx, _ *tasklet.Tasklet) { runs = append(runs, c.Kernel().Now()/ms) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		tasklet.Schedule(c, tl)
		delay.Msleep(c, 20)
		if len(runs) != 0 {
			t.Errorf("ran while disabled: %v", runs)
		}
		if tasklet.State(tl)&tasklet.StateSched == 0 {
			t.Error("not queued while disabled")
		}
		tasklet.Enable(c, tl)
	})
	ktest.Run(t, k, 0)
	if len(runs) != 1 || runs[0] != 21 {
		t.Fatalf("runs at %v ms, want one at 21 ms (after msleep(20))", runs)
	}
}

// TestTaskletDisableCountsNest: two disables need two enables.
func TestTaskletDisableCountsNest(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	var tl tasklet.Tasklet
	tasklet.Setup(&tl, func(*kernel.Ctx, *tasklet.Tasklet) { runs++ })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		tasklet.Disable(c, &tl)
		tasklet.Disable(c, &tl)
		tasklet.Schedule(c, &tl)
		tasklet.Enable(c, &tl)
		delay.Msleep(c, 5)
		if runs != 0 || tasklet.DisableCount(&tl) != 1 {
			t.Errorf("after one enable of two: %d runs, count %d", runs, tasklet.DisableCount(&tl))
		}
		tasklet.Enable(c, &tl)
		delay.Msleep(c, 5)
	})
	if runs != 1 {
		t.Fatalf("%d runs, want 1", runs)
	}
}

// TestTaskletDisableWaitsUninterruptibleForARunningCallback: tasklet_disable
// sleeps (v5.13+) in D until the callback on the other CPU is done.
func TestTaskletDisableWaitsUninterruptibleForARunningCallback(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var cbEnd, disabled int64
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) {
		delay.Mdelay(c, 10)
		cbEnd = c.Kernel().Now()
	})
	var seen kernel.TaskState
	ktest.OnCPU(t, k, "sched", 0, func(c *kernel.Ctx) { tasklet.Schedule(c, tl) })
	var waiter *kernel.Task
	waiter = ktest.OnCPU(t, k, "disabler", 1, func(c *kernel.Ctx) {
		delay.Mdelay(c, 2)
		tasklet.Disable(c, tl)
		disabled = c.Kernel().Now()
	})
	ktest.OnCPU(t, k, "observer", 1, func(c *kernel.Ctx) {
		delay.Msleep(c, 5)
		seen = waiter.State()
	})
	ktest.Run(t, k, 0)
	if disabled != cbEnd || cbEnd != 10*ms {
		t.Fatalf("tasklet_disable returned at %d, callback ended at %d", disabled, cbEnd)
	}
	if seen != kernel.TaskUninterruptible {
		t.Fatalf("disabler's state during the wait: %s", seen.String())
	}
}

// TestTaskletKillWaitsForAPendingRun: tasklet_kill of a scheduled tasklet
// returns after it has run, and leaves it neither scheduled nor running.
func TestTaskletKillWaitsForAPendingRun(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var ran, killed int64 = -1, -1
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) {
		delay.Mdelay(c, 3)
		ran = c.Kernel().Now()
	})
	ktest.OnCPU(t, k, "scheduler", 0, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c)
		tasklet.Schedule(c, tl) // on CPU 0, held off until 5 ms
		delay.Mdelay(c, 5)
		kernel.LocalBHEnable(c) // runs it here, 5 to 8 ms
	})
	ktest.OnCPU(t, k, "killer", 1, func(c *kernel.Ctx) {
		delay.Mdelay(c, 1)
		tasklet.Kill(c, tl) // pending since 0 ms
		killed = c.Kernel().Now()
	})
	ktest.Run(t, k, 0)
	if ran != 8*ms || killed != ran {
		t.Fatalf("ran at %d, kill returned at %d", ran, killed)
	}
	if tasklet.State(tl) != 0 {
		t.Fatalf("state %#x after tasklet_kill", tasklet.State(tl))
	}
}

// TestTaskletKillOfAScheduledDisabledTaskletIsReportedNotHung: the kernel
// would wait forever; kdefer reports and returns.
func TestTaskletKillOfAScheduledDisabledTaskletIsReportedNotHung(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	tl := tasklet.DeclareDisabled(func(*kernel.Ctx, *tasklet.Tasklet) { t.Error("ran while disabled") })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		tasklet.Schedule(c, tl)
		tasklet.Kill(c, tl)
	})
	if !ktest.Contains(k, "tasklet_kill: ") || !ktest.Contains(k, "is scheduled but disabled: the kernel would wait forever for it to run") {
		t.Fatalf("not reported:\n%s", ktest.Text(k))
	}
}

// TestTaskletKillFromInterruptPrintsTheKernelNotice.
func TestTaskletKillFromInterruptPrintsTheKernelNotice(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var tl tasklet.Tasklet
	tasklet.Setup(&tl, func(*kernel.Ctx, *tasklet.Tasklet) {})
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) { tasklet.Kill(c, &tl) })
	ktest.InTask(t, k, func(c *kernel.Ctx) { kernel.RaiseSoftirq(c, kernel.NetRXSoftirq) })
	ktest.Run(t, k, 0)
	if !ktest.Contains(k, "Attempt to kill tasklet from interrupt") {
		t.Fatalf("no notice:\n%s", ktest.Text(k))
	}
}

// TestTaskletsRunFIFOPerCPUAndHiBeforeNormal: a CPU's list is FIFO, and
// HI_SOFTIRQ's tasklets run before TASKLET_SOFTIRQ's.
func TestTaskletsRunFIFOPerCPUAndHiBeforeNormal(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var order []string
	mk := func(name string) *tasklet.Tasklet {
		return tasklet.Declare(func(*kernel.Ctx, *tasklet.Tasklet) { order = append(order, name) })
	}
	a, b, c3, h := mk("a"), mk("b"), mk("c"), mk("hi")
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c)
		tasklet.Schedule(c, a)
		tasklet.Schedule(c, b)
		tasklet.HiSchedule(c, h)
		tasklet.Schedule(c, c3)
		kernel.LocalBHEnable(c)
	})
	if got := strings.Join(order, " "); got != "hi a b c" {
		t.Fatalf("order %q, want hi a b c", got)
	}
}

// TestSleepingInATaskletCallbackIsReported: tasklets run in softirq context.
func TestSleepingInATaskletCallbackIsReported(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) { delay.Msleep(c, 10) })
	ktest.InTask(t, k, func(c *kernel.Ctx) { tasklet.Schedule(c, tl) })
	ktest.Run(t, k, 0)
	if !ktest.Contains(k, "BUG: sleeping function called from invalid context at tasklet/tasklet_test.go:") {
		t.Fatalf("no might_sleep report:\n%s", ktest.Text(k))
	}
}

// TestOldFormTaskletGetsItsData: tasklet_init / DECLARE_TASKLET_OLD.
func TestOldFormTaskletGetsItsData(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var got uint64
	tl := tasklet.DeclareOld(func(_ *kernel.Ctx, data uint64) { got = data }, 1234)
	ktest.InTask(t, k, func(c *kernel.Ctx) { tasklet.Schedule(c, tl) })
	ktest.Run(t, k, 0)
	if got != 1234 {
		t.Fatalf("data %d", got)
	}
}

type device struct {
	name string
	tl   tasklet.Tasklet
}

// TestFromTaskletFindsTheEmbeddingStruct and scheduling allocates nothing.
func TestFromTaskletFindsTheEmbeddingStructAndSchedulingAllocatesNothing(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	d := &device{name: "dev0"}
	var seen string
	tasklet.Setup(&d.tl, func(_ *kernel.Ctx, tl *tasklet.Tasklet) {
		seen = tasklet.FromTasklet[device](tl, offsetOfTl).name
	})
	c := k.IdleCtx(0)
	tasklet.InitKernel(k)
	allocs := testing.AllocsPerRun(1000, func() {
		kernel.LocalBHDisable(c)
		tasklet.Schedule(c, &d.tl)
		tasklet.Schedule(c, &d.tl)
		kernel.LocalBHEnable(c)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per schedule and run", allocs)
	}
	if seen != "dev0" {
		t.Fatalf("from_tasklet found %q", seen)
	}
}

// TestTaskletStressNeverConcurrentNeverWhileDisabledAlwaysAfterSchedule:
// real time, -race: several CPUs schedule one tasklet concurrently while
// another task disables and enables it. The callback never runs on two CPUs
// at once, never between a tasklet_disable and the matching tasklet_enable,
// and the last run comes after the last schedule.
func TestTaskletStressNeverConcurrentNeverWhileDisabledAlwaysAfterSchedule(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 4, HZ: 1000, Quiet: true})
	var in, disabled atomic.Int32
	var scheduled, lastSeen atomic.Int64
	var runs atomic.Int64
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) {
		if in.Add(1) != 1 {
			t.Error("tasklet ran on two CPUs at once")
		}
		if disabled.Load() != 0 {
			t.Error("tasklet ran while disabled")
		}
		lastSeen.Store(scheduled.Load())
		runs.Add(1)
		in.Add(-1)
	})
	const perCPU = 3000
	var wg sync.WaitGroup
	for cpu := range 3 {
		wg.Add(1)
		ktest.OnCPU(t, k, "sched", cpu, func(c *kernel.Ctx) {
			defer wg.Done()
			for range perCPU {
				scheduled.Add(1)
				tasklet.Schedule(c, tl)
			}
		})
	}
	stop := make(chan struct{})
	dis := ktest.OnCPU(t, k, "disabler", 3, func(c *kernel.Ctx) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			tasklet.Disable(c, tl)
			disabled.Store(1)
			for range 50 {
				kernel.CondResched(c)
			}
			disabled.Store(0)
			tasklet.Enable(c, tl)
		}
	})
	wg.Wait()
	close(stop)
	<-dis.Exited()
	deadline := time.Now().Add(10 * time.Second)
	for lastSeen.Load() != scheduled.Load() || tasklet.State(tl) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("last run saw %d of %d schedules; state %#x", lastSeen.Load(), scheduled.Load(), tasklet.State(tl))
		}
		time.Sleep(time.Millisecond)
	}
	if runs.Load() == 0 {
		t.Fatal("never ran")
	}
}

var offsetOfTl = unsafe.Offsetof(device{}.tl)

// TestTaskletTracepointsBracketTheCallback: irq:tasklet_entry and
// irq:tasklet_exit in the v6.3+ format.
func TestTaskletTracepointsBracketTheCallback(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 1, Quiet: true, TraceEvents: "irq:tasklet_entry,irq:tasklet_exit"})
	tl := tasklet.Declare(namedCallback)
	ktest.InTask(t, k, func(c *kernel.Ctx) { tasklet.Schedule(c, tl) })
	ktest.Run(t, k, 0)
	var b strings.Builder
	if err := k.Tracer().Report(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	entry, exit := strings.Index(out, "tasklet_entry:"), strings.Index(out, "tasklet_exit:")
	if entry < 0 || exit < entry || strings.Count(out, " tasklet=") != 2 || strings.Count(out, " function=namedCallback\n") != 2 {
		t.Fatalf("report:\n%s", out)
	}
}

func namedCallback(*kernel.Ctx, *tasklet.Tasklet) {}

// TestBHHookRunsBeforeTheTaskletsOfItsSoftirq: the hook of BH workqueues
// (workqueue_softirq_action) runs at the start of each tasklet softirq,
// told which one, before that softirq's tasklets.
func TestBHHookRunsBeforeTheTaskletsOfItsSoftirq(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var order []string
	tasklet.SetBHHook(k, func(c *kernel.Ctx, highpri bool) bool {
		order = append(order, fmt.Sprintf("hook(hi=%v)", highpri))
		return false
	})
	tl := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) { order = append(order, "tasklet") })
	hi := tasklet.Declare(func(c *kernel.Ctx, _ *tasklet.Tasklet) { order = append(order, "hi-tasklet") })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c)
		tasklet.Schedule(c, tl)
		tasklet.HiSchedule(c, hi)
		kernel.LocalBHEnable(c)
	})
	ktest.Run(t, k, 0)
	if got := strings.Join(order, " "); got != "hook(hi=true) hi-tasklet hook(hi=false) tasklet" {
		t.Fatalf("order %q", got)
	}
}
