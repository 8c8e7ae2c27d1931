package kthread_test

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
	"github.com/kdefer/kdefer/timer"
)

// item embeds a kthread work, as a driver's struct would.
type item struct {
	name string
	log  *[]string
	work kthread.Work
}

func newItem(name string, log *[]string) *item {
	it := &item{name: name, log: log}
	kthread.InitWork(&it.work, func(c *kernel.Ctx, w *kthread.Work) {
		me := kthread.FromWork[item](w, unsafe.Offsetof(item{}.work))
		*me.log = append(*me.log, me.name)
	})
	return it
}

// runWorker creates a running worker named name.
func runWorker(t *testing.T, c *kernel.Ctx, name string) *kthread.Worker {
	t.Helper()
	w, err := kthread.RunWorker(c, 0, "%s", name)
	if err != nil {
		t.Fatalf("RunWorker: %v", err)
	}
	return w
}

// TestQueueWorkReturnsFalseWhilePendingAndTheWorkRunsOnce.
func TestQueueWorkReturnsFalseWhilePendingAndTheWorkRunsOnce(t *testing.T) {
	k := boot(t)
	var log []string
	var rets []bool
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "kw")
		it := newItem("a", &log)
		kernel.PreemptDisable(c) // the worker cannot run before all three are queued
		for range 3 {
			rets = append(rets, kthread.QueueWork(c, w, &it.work))
		}
		kernel.PreemptEnable(c)
		kthread.FlushWorker(c, w)
		rets = append(rets, kthread.QueueWork(c, w, &it.work)) // idle again
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(rets) != "[true false false true]" || fmt.Sprint(log) != "[a a]" {
		t.Fatalf("kthread_queue_work returned %v and the work ran %v; want [true false false true], [a a]", rets, log)
	}
}

// TestWorksRunInFIFOOrderInTheWorkersThread.
func TestWorksRunInFIFOOrderInTheWorkersThread(t *testing.T) {
	k := boot(t)
	var log []string
	var ctx []string
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "fifo")
		var items []*item
		for _, n := range []string{"1", "2", "3", "4", "5"} {
			items = append(items, newItem(n, &log))
		}
		probe := new(kthread.Work)
		kthread.InitWork(probe, func(c *kernel.Ctx, _ *kthread.Work) {
			ctx = append(ctx, fmt.Sprintf("%s task=%t kthread=%t", c.Current().Comm(), c.InTask(), c.Current().IsKthread()))
		})
		for _, it := range items {
			kthread.QueueWork(c, w, &it.work)
		}
		kthread.QueueWork(c, w, probe)
		kthread.FlushWorker(c, w)
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(log) != "[1 2 3 4 5]" || fmt.Sprint(ctx) != "[fifo task=true kthread=true]" {
		t.Fatalf("ran %v in %v; want [1 2 3 4 5] in the worker's kernel thread", log, ctx)
	}
}

// TestCreateWorkerLeavesTheThreadAsleepUntilWoken: since v6.13
// kthread_create_worker does not wake the thread; kthread_run_worker does.
func TestCreateWorkerLeavesTheThreadAsleepUntilWoken(t *testing.T) {
	k := boot(t)
	var log []string
	do(t, k, func(c *kernel.Ctx) {
		w, err := kthread.CreateWorker(c, 0, "lazy/%d", 0)
		if err != nil {
			t.Fatalf("CreateWorker: %v", err)
		}
		it := newItem("x", &log)
		delay.Msleep(c, 10)
		if s := w.Task().State(); s != kernel.TaskUninterruptible {
			t.Errorf("new worker thread in %v, want TASK_UNINTERRUPTIBLE", s)
		}
		// Queueing wakes an idle worker's thread (kthread_insert_work).
		kthread.QueueWork(c, w, &it.work)
		kthread.FlushWorker(c, w)
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(log) != "[x]" {
		t.Fatalf("ran %v, want [x]", log)
	}
}

// TestDelayedWorkRunsAfterItsDelayAndQueueingItAgainWhilePendingFails.
func TestDelayedWorkRunsAfterItsDelayAndQueueingItAgainWhilePendingFails(t *testing.T) {
	k := boot(t)
	var ranAt uint64
	var first, second bool
	var start uint64
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "dw")
		var dw kthread.DelayedWork
		kthread.InitDelayedWork(&dw, func(c *kernel.Ctx, _ *kthread.Work) { ranAt = c.Jiffies() })
		start = c.Jiffies()
		first = kthread.QueueDelayedWork(c, w, &dw, 50)
		delay.Msleep(c, 10)
		second = kthread.QueueDelayedWork(c, w, &dw, 5)
		delay.Msleep(c, 100)
		kthread.DestroyWorker(c, w)
	})
	if !first || second {
		t.Fatalf("kthread_queue_delayed_work = %t then %t (pending), want true, false", first, second)
	}
	if d := ranAt - start; ranAt == 0 || d < 50 || d > 52 {
		t.Fatalf("ran %d jiffies after queueing with a delay of 50", d)
	}
}

// TestDelayedWorkWithZeroDelayIsQueuedAtOnce: no timer, no tick to wait for.
func TestDelayedWorkWithZeroDelayIsQueuedAtOnce(t *testing.T) {
	k := boot(t)
	ran := false
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "dw0")
		var dw kthread.DelayedWork
		kthread.InitDelayedWork(&dw, func(*kernel.Ctx, *kthread.Work) { ran = true })
		start := c.Jiffies()
		kthread.QueueDelayedWork(c, w, &dw, 0)
		kthread.FlushWork(c, &dw.Work)
		if !ran || c.Jiffies() != start {
			t.Errorf("ran %t after %d jiffies, want at once", ran, c.Jiffies()-start)
		}
		kthread.DestroyWorker(c, w)
	})
}

// TestModDelayedWorkReturnValues: false when the work was idle and is now
// queued, true when it was pending (its timer is then moved).
func TestModDelayedWorkReturnValues(t *testing.T) {
	k := boot(t)
	var ranAt []uint64
	var rets []bool
	var start uint64
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "mod")
		var dw kthread.DelayedWork
		kthread.InitDelayedWork(&dw, func(c *kernel.Ctx, _ *kthread.Work) { ranAt = append(ranAt, c.Jiffies()-start) })
		start = c.Jiffies()
		rets = append(rets, kthread.ModDelayedWork(c, w, &dw, 100)) // never queued: false
		rets = append(rets, kthread.ModDelayedWork(c, w, &dw, 20))  // pending: true, now 20
		delay.Msleep(c, 50)
		rets = append(rets, kthread.ModDelayedWork(c, w, &dw, 10)) // ran, idle: false
		delay.Msleep(c, 50)
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(rets) != "[false true false]" {
		t.Errorf("kthread_mod_delayed_work returned %v, want [false true false]", rets)
	}
	if len(ranAt) != 2 || ranAt[0] < 20 || ranAt[0] > 22 || ranAt[1] < 60 || ranAt[1] > 62 {
		t.Errorf("ran at %v jiffies, want about [20 60]", ranAt)
	}
}

// TestFlushWorkWaitsForTheRunningWorkAndIsANoOpWhenIdle.
func TestFlushWorkWaitsForTheRunningWorkAndIsANoOpWhenIdle(t *testing.T) {
	k := boot(t)
	done := false
	var flushState kernel.TaskState
	var flusher *kernel.Task
	do(t, k, func(c *kernel.Ctx) {
		flusher = c.Current()
		w := runWorker(t, c, "flush")
		var slow kthread.Work
		kthread.InitWork(&slow, func(c *kernel.Ctx, _ *kthread.Work) {
			delay.Msleep(c, 30)
			flushState = flusher.State()
			done = true
		})
		start := c.Jiffies()
		kthread.FlushWork(c, &slow) // never queued: returns at once
		if c.Jiffies() != start {
			t.Error("flushing a never-queued work waited")
		}
		kthread.QueueWork(c, w, &slow)
		delay.Msleep(c, 5) // it runs now
		kthread.FlushWork(c, &slow)
		if !done {
			t.Error("kthread_flush_work returned before the running work finished")
		}
		start = c.Jiffies()
		kthread.FlushWork(c, &slow) // idle now
		if c.Jiffies() != start {
			t.Error("flushing an idle work waited")
		}
		kthread.DestroyWorker(c, w)
	})
	if flushState != kernel.TaskUninterruptible {
		t.Fatalf("the flusher waited in %v, want TASK_UNINTERRUPTIBLE", flushState)
	}
}

// TestFlushWorkOfAPendingWorkWaitsOnlyUpToIt: the flush item goes right
// after the work, not at the tail.
func TestFlushWorkOfAPendingWorkWaitsOnlyUpToIt(t *testing.T) {
	k := boot(t)
	var log []string
	var atFlush []string
	do(t, k, func(c *kernel.Ctx) {
		w, _ := kthread.CreateWorker(c, 0, "order")
		a, b, d := newItem("a", &log), newItem("b", &log), newItem("d", &log)
		kthread.QueueWork(c, w, &a.work)
		kthread.QueueWork(c, w, &b.work)
		kthread.QueueWork(c, w, &d.work)
		kthread.FlushWork(c, &b.work)
		atFlush = append(atFlush, log...)
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(atFlush) != "[a b]" || fmt.Sprint(log) != "[a b d]" {
		t.Fatalf("at flush of b: %v (all: %v); want [a b] ([a b d])", atFlush, log)
	}
}

// TestFlushWorkOfADelayedWorkWithItsTimerPendingWaitsForTheRun: kdefer's
// difference (the kernel would wait forever).
func TestFlushWorkOfADelayedWorkWithItsTimerPendingWaitsForTheRun(t *testing.T) {
	k := boot(t)
	var ranAt, flushedAt, start uint64
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "dflush")
		var dw kthread.DelayedWork
		kthread.InitDelayedWork(&dw, func(c *kernel.Ctx, _ *kthread.Work) { ranAt = c.Jiffies() })
		start = c.Jiffies()
		kthread.QueueDelayedWork(c, w, &dw, 30)
		kthread.FlushWork(c, &dw.Work)
		flushedAt = c.Jiffies()
		kthread.DestroyWorker(c, w)
	})
	if ranAt == 0 || flushedAt < ranAt || ranAt-start < 30 {
		t.Fatalf("ran at +%d, flush returned at +%d; want the flush after the run at +30", ranAt-start, flushedAt-start)
	}
}

// TestCancelWorkSyncOfAPendingWorkReturnsTrueAndItNeverRuns.
func TestCancelWorkSyncOfAPendingWorkReturnsTrueAndItNeverRuns(t *testing.T) {
	k := boot(t)
	var log []string
	var rets []bool
	do(t, k, func(c *kernel.Ctx) {
		w, _ := kthread.CreateWorker(c, 0, "cancel")
		a, b := newItem("a", &log), newItem("b", &log)
		rets = append(rets, kthread.CancelWorkSync(c, &a.work)) // never queued
		kthread.QueueWork(c, w, &a.work)
		kthread.QueueWork(c, w, &b.work)
		rets = append(rets, kthread.CancelWorkSync(c, &a.work))
		rets = append(rets, kthread.CancelWorkSync(c, &a.work)) // not pending any more
		kthread.FlushWorker(c, w)
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(rets) != "[false true false]" || fmt.Sprint(log) != "[b]" {
		t.Fatalf("kthread_cancel_work_sync returned %v, works ran %v; want [false true false], [b]", rets, log)
	}
}

// TestCancelWorkSyncWaitsForTheRunningWorkWhichCannotRequeueItself: the
// work re-queues itself; while cancel-sync waits, queueing is blocked, and
// on return the work is neither pending nor running.
func TestCancelWorkSyncWaitsForTheRunningWorkWhichCannotRequeueItself(t *testing.T) {
	k := boot(t)
	runs := 0
	var requeue []bool
	var ret bool
	var w *kthread.Worker
	do(t, k, func(c *kernel.Ctx) {
		w = runWorker(t, c, "self")
		var work kthread.Work
		kthread.InitWork(&work, func(c *kernel.Ctx, self *kthread.Work) {
			runs++
			delay.Msleep(c, 20)
			requeue = append(requeue, kthread.QueueWork(c, w, self))
		})
		kthread.QueueWork(c, w, &work)
		delay.Msleep(c, 50) // it has run and re-queued itself a few times
		before := runs
		ret = kthread.CancelWorkSync(c, &work)
		after := runs
		delay.Msleep(c, 100)
		if runs != after || after > before+1 {
			t.Errorf("runs: %d at cancel, %d at return, %d later; want no run after the return", before, after, runs)
		}
		kthread.DestroyWorker(c, w)
	})
	if ret || len(requeue) == 0 || requeue[len(requeue)-1] {
		t.Fatalf("kthread_cancel_work_sync = %t (running, not pending: want false); re-queues %v (the last, during the cancel, must fail)", ret, requeue)
	}
}

// TestCancelDelayedWorkSyncStopsThePendingTimer.
func TestCancelDelayedWorkSyncStopsThePendingTimer(t *testing.T) {
	k := boot(t)
	ran := false
	var r1, r2 bool
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "dcancel")
		var dw kthread.DelayedWork
		kthread.InitDelayedWork(&dw, func(*kernel.Ctx, *kthread.Work) { ran = true })
		kthread.QueueDelayedWork(c, w, &dw, 20)
		delay.Msleep(c, 5)
		r1 = kthread.CancelDelayedWorkSync(c, &dw)
		r2 = kthread.CancelDelayedWorkSync(c, &dw)
		delay.Msleep(c, 50)
		kthread.DestroyWorker(c, w)
	})
	if !r1 || r2 || ran {
		t.Fatalf("kthread_cancel_delayed_work_sync = %t then %t, ran %t; want true, false, false", r1, r2, ran)
	}
}

// TestDestroyWorkerRunsWhatIsQueuedAndWarnsAboutDelayedWorksLeft.
func TestDestroyWorkerRunsWhatIsQueuedAndWarnsAboutDelayedWorksLeft(t *testing.T) {
	k := boot(t)
	var log []string
	var task *kernel.Task
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "destroy")
		task = w.Task()
		a := newItem("a", &log)
		kthread.QueueWork(c, w, &a.work)
		var dw kthread.DelayedWork
		kthread.InitDelayedWork(&dw, func(*kernel.Ctx, *kthread.Work) {})
		kthread.QueueDelayedWork(c, w, &dw, 1000)
		kthread.DestroyWorker(c, w)
		if w.Task() != nil {
			t.Error("the worker still has a thread")
		}
		kthread.CancelDelayedWorkSync(c, &dw)
	})
	if fmt.Sprint(log) != "[a]" || !task.HasExited() || k.Warnings() != 1 {
		t.Fatalf("ran %v, thread exited %t, %d warnings; want [a], true, 1 (delayed work left)", log, task.HasExited(), k.Warnings())
	}
}

// TestQueueingAWorkOnASecondWorkerWarnsOnce.
func TestQueueingAWorkOnASecondWorkerWarnsOnce(t *testing.T) {
	k := boot(t)
	do(t, k, func(c *kernel.Ctx) {
		w1, w2 := runWorker(t, c, "w1"), runWorker(t, c, "w2")
		var work kthread.Work
		kthread.InitWork(&work, func(*kernel.Ctx, *kthread.Work) {})
		kthread.QueueWork(c, w1, &work)
		kthread.FlushWork(c, &work)
		kthread.QueueWork(c, w2, &work)
		kthread.FlushWork(c, &work)
		kthread.DestroyWorker(c, w1)
		kthread.DestroyWorker(c, w2)
	})
	if k.Warnings() != 1 || !strings.Contains(ktest.Text(k), "WARNING: CPU:") {
		t.Fatalf("%d warnings, want 1:\n%s", k.Warnings(), ktest.Text(k))
	}
}

// TestQueueWorkFromATimerCallbackRunsTheWorkInProcessContext: queueing
// works from softirq context; the work runs in the worker's thread.
func TestQueueWorkFromATimerCallbackRunsTheWorkInProcessContext(t *testing.T) {
	k := boot(t)
	var where []string
	var queued bool
	do(t, k, func(c *kernel.Ctx) {
		w := runWorker(t, c, "fromirq")
		var work kthread.Work
		kthread.InitWork(&work, func(c *kernel.Ctx, _ *kthread.Work) {
			delay.Msleep(c, 1) // process context: may sleep
			where = append(where, fmt.Sprintf("task=%t", c.InTask()))
		})
		var tm timer.Timer
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			where = append(where, fmt.Sprintf("softirq=%t", c.InServingSoftirq()))
			queued = kthread.QueueWork(c, w, &work)
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
		delay.Msleep(c, 20)
		kthread.FlushWork(c, &work)
		kthread.DestroyWorker(c, w)
	})
	if fmt.Sprint(where) != "[softirq=true task=true]" || !queued || k.Warnings() != 0 {
		t.Fatalf("contexts %v, queued %t, %d warnings; want [softirq=true task=true], true, 0", where, queued, k.Warnings())
	}
}
