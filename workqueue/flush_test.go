package workqueue_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestFlushWorkWaitsForTheLastQueueingOnly: flush_work returns true once
// the queued instance has run; a queueing made after the flush began (by
// the item itself) is not waited for.
func TestFlushWorkWaitsForTheLastQueueingOnly(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var runs []int64
	var w *workqueue.Work
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		runs = append(runs, c.Kernel().Now()/ms)
		delay.Msleep(c, 20)
		if len(runs) == 1 {
			workqueue.ScheduleWork(c, w) // after the flush began
		}
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		ret := workqueue.FlushWork(c, w)
		at := c.Kernel().Now() / ms
		if !ret || len(runs) != 1 || at < 20 || at > 22 {
			t.Errorf("flush returned %v at %d ms after %d runs; want true at ~20 ms after 1", ret, at, len(runs))
		}
		if !workqueue.FlushWork(c, w) || len(runs) != 2 {
			t.Errorf("second flush did not wait for the requeued run")
		}
		if workqueue.FlushWork(c, w) {
			t.Error("flush of an idle item returned true")
		}
	})
}

// TestFlushWorkOfANeverQueuedItemReturnsFalse.
func TestFlushWorkOfANeverQueuedItemReturnsFalse(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if workqueue.FlushWork(c, w) {
			t.Error("flush_work of a never-queued item returned true")
		}
	})
}

// TestFlushWorkqueueWaitsForEarlierItemsAndIsNotLivelockedByNewOnes: an
// item that requeues itself forever does not keep flush_workqueue from
// returning; the items queued before the flush have all run by then.
func TestFlushWorkqueueWaitsForEarlierItemsAndIsNotLivelockedByNewOnes(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var done [4]atomic.Bool
	var spinner *workqueue.Work
	spinner = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		delay.Msleep(c, 2)
		workqueue.ScheduleWork(c, spinner)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, err := workqueue.AllocWorkqueue(c, "test", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var items [4]workqueue.Work
		for i := range items {
			i := i
			workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
				delay.Msleep(c, uint32(5*(i+1)))
				done[i].Store(true)
			})
			workqueue.QueueWorkOn(c, i%2, wq, &items[i])
		}
		workqueue.QueueWork(c, wq, spinner)
		workqueue.FlushWorkqueue(c, wq)
		for i := range done {
			if !done[i].Load() {
				t.Errorf("item %d had not run when flush_workqueue returned", i)
			}
		}
		workqueue.CancelWorkSync(c, spinner)
		if !workqueue.DestroyWorkqueue(c, wq) {
			t.Error("destroy_workqueue refused")
		}
	})
	if k.Warnings() != 0 {
		t.Fatalf("warnings:\n%s", ktest.Text(k))
	}
}

// TestConcurrentFlushersAllReturn: several tasks flush the same workqueue
// at once (colors queue up behind the first flusher).
func TestConcurrentFlushersAllReturn(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var wq *workqueue.Workqueue
	ktest.InTask(t, k, func(c *kernel.Ctx) { wq, _ = workqueue.AllocWorkqueue(c, "f", 0, 0) })
	var returned atomic.Int32
	for i := range 20 {
		onCPU(t, k, fmt.Sprint("f", i), i%2, func(c *kernel.Ctx) {
			w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 3) })
			workqueue.QueueWork(c, wq, w)
			delay.Msleep(c, uint32(i%3))
			workqueue.FlushWorkqueue(c, wq)
			if workqueue.Busy(c, w) != 0 {
				t.Error("an item queued before the flush is still busy")
			}
			returned.Add(1)
		})
	}
	ktest.Run(t, k, 0)
	if returned.Load() != 20 {
		t.Fatalf("%d of 20 flushers returned", returned.Load())
	}
}

// TestFlushDelayedWorkRunsThePendingTimerNow: the timer is cut short and
// the item flushed.
func TestFlushDelayedWorkRunsThePendingTimerNow(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var ran int64 = -1
	dw := workqueue.DeclareDelayed(func(c *kernel.Ctx, w *workqueue.Work) { ran = c.Kernel().Now() / ms })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleDelayedWork(c, dw, 10000)
		if !workqueue.FlushDelayedWork(c, dw) || ran != 0 {
			t.Errorf("flush_delayed_work: ran at %d ms", ran)
		}
	})
}

// TestDrainWorkqueueAllowsChainedQueueingAndRefusesOthers: while draining,
// an item may queue another on the same workqueue; a queueing from outside
// gets the kernel's "cannot queue" warning.
func TestDrainWorkqueueAllowsChainedQueueingAndRefusesOthers(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var chain atomic.Int32
	var wq *workqueue.Workqueue
	var w *workqueue.Work
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		delay.Msleep(c, 5)
		if chain.Add(1) < 5 {
			if !workqueue.QueueWork(c, wq, w) {
				t.Error("chained queueing refused while draining")
			}
		}
	})
	outsider := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "drainme", 0, 0)
		workqueue.QueueWork(c, wq, w)
		onCPU(t, k, "outsider", 0, func(c *kernel.Ctx) {
			delay.Msleep(c, 7)
			if workqueue.QueueWork(c, wq, outsider) || workqueue.Pending(outsider) {
				t.Error("queueing from outside a draining workqueue succeeded or left the item pending")
			}
		})
		workqueue.DrainWorkqueue(c, wq)
	})
	if chain.Load() != 5 {
		t.Fatalf("chain ran %d times, want 5", chain.Load())
	}
	logHas(t, k, "workqueue: cannot queue TestDrainWorkqueueAllowsChainedQueueingAndRefusesOthers on wq drainme")
}

// TestFlushingAWorkFromItsOwnFunctionIsReportedAsLockdepWould: the kernel
// deadlocks; kdefer prints lockdep's recursive-locking report with the
// work's lock and returns false without waiting.
func TestFlushingAWorkFromItsOwnFunctionIsReportedAsLockdepWould(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var ret = true
	var w *workqueue.Work
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) { ret = workqueue.FlushWork(c, w) })
	ktest.InTask(t, k, func(c *kernel.Ctx) { workqueue.ScheduleWork(c, w) })
	ktest.Run(t, k, 0)
	if ret {
		t.Fatal("flush_work from its own function returned true")
	}
	text := ktest.Text(k)
	for _, want := range []string{
		"WARNING: possible recursive locking detected",
		"kworker/0:0/",
		" is trying to acquire lock:",
		"((work_completion)(TestFlushingAWorkFromItsOwnFunctionIsReportedAsLockdepWould)){+.+.}-{0:0}, at: __flush_work",
		"but task is already holding lock:",
		"  lock((work_completion)(TestFlushingAWorkFromItsOwnFunctionIsReportedAsLockdepWould));",
		" *** DEADLOCK ***",
		"2 locks held by kworker/0:0/",
		" #0: ", "((wq_completion)events){+.+.}-{0:0}, at: process_one_work",
		"stack backtrace:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestCancelWorkSyncFromItsOwnFunctionIsReportedAndReturns: also a
// self-deadlock in the kernel.
func TestCancelWorkSyncFromItsOwnFunctionIsReportedAndReturns(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var w *workqueue.Work
	returned := false
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		workqueue.CancelWorkSync(c, w)
		returned = true
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) { workqueue.ScheduleWork(c, w) })
	ktest.Run(t, k, 0)
	if !returned {
		t.Fatal("cancel_work_sync from its own function did not return")
	}
	logHas(t, k, "WARNING: possible recursive locking detected")
	logHas(t, k, "((work_completion)(TestCancelWorkSyncFromItsOwnFunctionIsReportedAndReturns)){+.+.}-{0:0}, at: __flush_work")
}

// TestFlushingAWorkqueueFromOneOfItsItemsIsReportedAsLockdepWould: the
// flush would wait for the flusher; lockdep names the wq's completion map.
func TestFlushingAWorkqueueFromOneOfItsItemsIsReportedAsLockdepWould(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	returned := false
	var wq *workqueue.Workqueue
	w := workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		workqueue.FlushWorkqueue(c, wq)
		returned = true
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "selfflush", 0, 0)
		workqueue.QueueWork(c, wq, w)
		workqueue.FlushWorkqueue(c, wq)
	})
	if !returned {
		t.Fatal("the item's flush did not return")
	}
	logHas(t, k, "WARNING: possible recursive locking detected")
	logHas(t, k, "((wq_completion)selfflush){+.+.}-{0:0}, at: __flush_workqueue")
	logHas(t, k, "  lock((wq_completion)selfflush);")
}

// TestFlushingAnItemQueuedBehindTheFlusherOnAnOrderedQueueDoesNotHang: on
// an ordered workqueue the flushed item can only run after the flusher —
// a true deadlock in the kernel. kdefer reports it and returns false.
func TestFlushingAnItemQueuedBehindTheFlusherOnAnOrderedQueueDoesNotHang(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var wq *workqueue.Workqueue
	var order []string
	second := workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) { order = append(order, "second") })
	first := workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		ret := workqueue.FlushWork(c, second)
		order = append(order, fmt.Sprintf("first(flush=%v)", ret))
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocOrderedWorkqueue(c, "ordered", 0)
		workqueue.QueueWork(c, wq, first)
		workqueue.QueueWork(c, wq, second)
		workqueue.FlushWorkqueue(c, wq)
	})
	if got := strings.Join(order, " "); got != "first(flush=false) second" {
		t.Fatalf("order %q", got)
	}
	logHas(t, k, "WARNING: possible recursive locking detected")
	logHas(t, k, "((wq_completion)ordered){+.+.}-{0:0}, at: __flush_work")
	logHas(t, k, "would wait forever for TestFlushingAnItemQueuedBehindTheFlusherOnAnOrderedQueueDoesNotHang queued behind it on ordered (max_active 1): not waiting")
}

// TestFlushingASystemWorkqueueWarns: flush_scheduled_work prints the
// kernel's warning and a stack, then flushes.
func TestFlushingASystemWorkqueueWarns(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ran := false
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 5); ran = true })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		workqueue.FlushScheduledWork(c)
		if !ran {
			t.Error("flush_scheduled_work returned before the item ran")
		}
	})
	logHas(t, k, "WARNING: Flushing system-wide workqueues will be prohibited in near future.")
	logHas(t, k, "Call Trace:")
}

// TestAMemReclaimItemFlushingANonReclaimWorkqueueIsWarnedAbout: the
// kernel's check_flush_dependency() WARN_ONCE.
func TestAMemReclaimItemFlushingANonReclaimWorkqueueIsWarnedAbout(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var plain *workqueue.Workqueue
	other := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 5) })
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		workqueue.QueueWork(c, plain, other) // something to flush
		workqueue.FlushWorkqueue(c, plain)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		reclaim, _ := workqueue.AllocWorkqueue(c, "reclaim", workqueue.MemReclaim, 0)
		plain, _ = workqueue.AllocWorkqueue(c, "plain", 0, 0)
		workqueue.QueueWork(c, reclaim, w)
		workqueue.FlushWorkqueue(c, reclaim)
	})
	logHas(t, k, "workqueue: WQ_MEM_RECLAIM reclaim:TestAMemReclaimItemFlushingANonReclaimWorkqueueIsWarnedAbout is flushing !WQ_MEM_RECLAIM plain:0x0")
}

// TestDestroyingAWorkqueueFromOneOfItsItemsReportsTheBusyPwq: the drain
// cannot finish (lockdep's report) and destroy_workqueue finds the item
// itself in flight: the kernel's "has the following busy pwq" report, and
// the workqueue is left alone.
func TestDestroyingAWorkqueueFromOneOfItsItemsReportsTheBusyPwq(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var wq *workqueue.Workqueue
	destroyed := true
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { destroyed = workqueue.DestroyWorkqueue(c, wq) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "victim", 0, 0)
		workqueue.QueueWork(c, wq, w)
	})
	ktest.Run(t, k, 0)
	if destroyed {
		t.Fatal("destroy_workqueue from its own item reported success")
	}
	logHas(t, k, "destroy_workqueue: victim has the following busy pwq")
	logHas(t, k, "  pwq 2: cpus=0 node=0 flags=0x0 nice=0 active=1 refcnt=2")
	logHas(t, k, ":TestDestroyingAWorkqueueFromOneOfItsItemsReportsTheBusyPwq")
}

// TestDrainWorkqueueWarnsWhenAChainTakesTenFlushes: an item that queues
// itself again 24 times keeps drain_workqueue flushing (each flush sees
// one or two runs); at the 10th try the kernel's warning is printed, and
// the drain still ends.
func TestDrainWorkqueueWarnsWhenAChainTakesTenFlushes(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var wq *workqueue.Workqueue
	var n atomic.Int32
	var w *workqueue.Work
	w = workqueue.Declare(func(c *kernel.Ctx, _ *workqueue.Work) {
		if n.Add(1) <= 24 {
			workqueue.QueueWork(c, wq, w)
		}
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "chain", 0, 0)
		workqueue.QueueWork(c, wq, w)
		workqueue.DrainWorkqueue(c, wq)
		if workqueue.Pending(w) || n.Load() != 25 {
			t.Errorf("drained with %d runs, pending %v", n.Load(), workqueue.Pending(w))
		}
	})
	logHas(t, k, "workqueue chain: drain_workqueue() isn't complete after 10 tries")
	if n := logCount(k, "isn't complete"); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
}

// TestAMemReclaimItemFlushingAnItemOfAPlainWorkqueueIsWarnedAboutAndWaits:
// check_flush_dependency's warning from flush_work (not flush_workqueue):
// the report is printed with the pool lock dropped, and the flush then
// waits for the item as usual.
func TestAMemReclaimItemFlushingAnItemOfAPlainWorkqueueIsWarnedAboutAndWaits(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var plain *workqueue.Workqueue
	var ran, flushed bool
	other := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		delay.Msleep(c, 5)
		ran = true
	})
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		workqueue.QueueWork(c, plain, other)
		flushed = workqueue.FlushWork(c, other)
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ktest.InTask(t, k, func(c *kernel.Ctx) {
			reclaim, _ := workqueue.AllocWorkqueue(c, "reclaim", workqueue.MemReclaim, 0)
			plain, _ = workqueue.AllocWorkqueue(c, "plain", 0, 0)
			workqueue.QueueWork(c, reclaim, w)
			workqueue.FlushWorkqueue(c, reclaim)
		})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("flush_work from a WQ_MEM_RECLAIM item deadlocked after its warning")
	}
	if !flushed || !ran {
		t.Fatalf("flush_work returned %v, item ran %v; want true, true", flushed, ran)
	}
	logHas(t, k, "workqueue: WQ_MEM_RECLAIM reclaim:TestAMemReclaimItemFlushingAnItemOfAPlainWorkqueueIsWarnedAboutAndWaits")
}
