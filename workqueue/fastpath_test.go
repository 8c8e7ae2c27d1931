package workqueue_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestAnItemBetweenItsPendingBitAndItsPushIsRetriedByCancelAndNotWaitedForByFlush:
// queue_work's lock-free path publishes the item (PENDING, work->data
// naming the pool) before it pushes it on the pool's incoming chain. In
// between, the item is being queued: queueing it again returns false,
// try_to_grab_pending says -EAGAIN, and flush_work has nothing to wait
// for yet. Once pushed, flush_work finds it and waits for it.
func TestAnItemBetweenItsPendingBitAndItsPushIsRetriedByCancelAndNotWaitedForByFlush(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq := workqueue.System(c.Kernel())
		push := workqueue.QueueHalfway(c, wq, 0, w)
		if !workqueue.Pending(w) || workqueue.QueueWork(c, wq, w) {
			t.Error("an item being queued is not pending, or was queued again")
		}
		if got := workqueue.TryToGrabPending(c, w); got != -1 {
			t.Errorf("try_to_grab_pending = %d, want -1 (-EAGAIN)", got)
		}
		if workqueue.FlushWork(c, w) {
			t.Error("flush_work waited for an item not yet queued")
		}
		push()
		if !workqueue.FlushWork(c, w) || runs != 1 {
			t.Errorf("after the push: flush_work did not wait, or the item ran %d times", runs)
		}
	})
}

// TestItemsQueuedByARunningItemRunInOrderAndCanBeCancelledAndFlushed:
// items queued while the pool's worker runs take the lock-free path; a
// cancel finds them, flush_work waits for them, Snapshot counts them
// (each the first to look after its items were queued), and the others
// run in queueing order.
func TestItemsQueuedByARunningItemRunInOrderAndCanBeCancelledAndFlushed(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var order []string
	item := func(name string) *workqueue.Work {
		return workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { order = append(order, name) })
	}
	a, b, cc, d := item("a"), item("b"), item("c"), item("d")
	var queued uint64
	var cancelled, flushed bool
	parent := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		wq := workqueue.System(c.Kernel())
		workqueue.QueueWork(c, wq, a)
		workqueue.QueueWork(c, wq, b)
		cancelled = workqueue.CancelWork(c, b)
		workqueue.QueueWork(c, wq, cc)
		flushed = workqueue.FlushWork(c, cc)
		order = append(order, "flushed c")
		workqueue.QueueWork(c, wq, d)
		queued = workqueue.Snapshot(wq).Queued
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, parent)
		workqueue.FlushWork(c, parent)
		workqueue.FlushWork(c, d)
	})
	// Queued on events so far: parent, a, b, c and d (barriers are not
	// counted).
	if !cancelled || !flushed || queued != 5 {
		t.Fatalf("cancelled %v, flushed %v, queued %d (want true, true, 5)", cancelled, flushed, queued)
	}
	if got := fmt.Sprint(order); got != "[a c flushed c d]" {
		t.Fatalf("order %s, want [a c flushed c d]", got)
	}
}

// TestAnItemQueuedThroughTheLockedPathRunsAfterOneQueuedBeforeItWithoutTheLock:
// an item that last ran on another CPU's pool is queued under the pool
// locks (non-reentrancy); the items queued before it without the lock
// are put on the worklist first, so a queuer's items keep their order.
func TestAnItemQueuedThroughTheLockedPathRunsAfterOneQueuedBeforeItWithoutTheLock(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var order []string
	item := func(name string) *workqueue.Work {
		return workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
			order = append(order, fmt.Sprintf("%s on %d", name, c.CPU()))
		})
	}
	a, b := item("a"), item("b")
	parent := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		wq := workqueue.System(c.Kernel())
		workqueue.QueueWork(c, wq, a) // lock-free: the pool's worker runs
		workqueue.QueueWork(c, wq, b) // locked: b last ran on CPU 1
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWorkOn(c, 1, b)
		workqueue.FlushWork(c, b)
		order = nil
		workqueue.ScheduleWorkOn(c, 0, parent)
		workqueue.FlushWork(c, parent)
		workqueue.FlushWork(c, a)
		workqueue.FlushWork(c, b)
	})
	if got := fmt.Sprint(order); got != "[a on 0 b on 0]" {
		t.Fatalf("order %s, want [a on 0 b on 0]", got)
	}
}

// TestFlushWorkqueueWaitsForItemsStillOnTheIncomingChain: items queued
// without the lock before flush_workqueue is called are in its flush
// color even if no worker has put them on the worklist yet.
func TestFlushWorkqueueWaitsForItemsStillOnTheIncomingChain(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var order []string
	item := func(name string) *workqueue.Work {
		return workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { order = append(order, name) })
	}
	x, y := item("x"), item("y")
	var wq *workqueue.Workqueue
	parent := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		workqueue.QueueWork(c, wq, x)
		workqueue.QueueWork(c, wq, y)
		delay.Mdelay(c, 2) // the flusher's sleep ends meanwhile
		order = append(order, "parent done")
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "flushme", 0, 0)
		workqueue.QueueWork(c, wq, parent)
		delay.Msleep(c, 1)
		order = append(order, "flush")
		workqueue.FlushWorkqueue(c, wq)
		order = append(order, "flushed")
		workqueue.DestroyWorkqueue(c, wq)
	})
	if got := fmt.Sprint(order); got != "[parent done flush x y flushed]" {
		t.Fatalf("order %s, want [parent done flush x y flushed]", got)
	}
}

// TestARunQueuedWithoutTheLockBeyondMaxActiveWaitsInactiveInOrder: items
// of one workqueue queued without the lock while the pool's worker runs
// are spliced onto the pool as one run: as many as max_active allows go
// on the worklist, the rest wait on the pwq's inactive list (and all of
// them once some already wait), and they run in queueing order.
func TestARunQueuedWithoutTheLockBeyondMaxActiveWaitsInactiveInOrder(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var order []int
	items := make([]*workqueue.Work, 6)
	for i := range items {
		items[i] = workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { order = append(order, i) })
	}
	var wq *workqueue.Workqueue
	var dumps []string
	parent := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		for _, it := range items[:5] {
			workqueue.QueueWork(c, wq, it)
		}
		dumps = append(dumps, workqueue.DumpState(c.Kernel()))
		workqueue.QueueWork(c, wq, items[5])
		dumps = append(dumps, workqueue.DumpState(c.Kernel()))
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "lim2", 0, 2)
		workqueue.ScheduleWork(c, parent)
		workqueue.FlushWork(c, parent)
		workqueue.FlushWorkqueue(c, wq)
		workqueue.DestroyWorkqueue(c, wq)
	})
	fn := "*TestARunQueuedWithoutTheLockBeyondMaxActiveWaitsInactiveInOrder\n"
	for i, want := range [][]string{
		{"active=2 ", "pending: 2" + fn, "inactive: 3" + fn},
		{"active=2 ", "pending: 2" + fn, "inactive: 4" + fn},
	} {
		for _, s := range want {
			if !strings.Contains(dumps[i], s) {
				t.Errorf("dump %d lacks %q:\n%s", i, s, dumps[i])
			}
		}
	}
	if got := fmt.Sprint(order); got != "[0 1 2 3 4 5]" {
		t.Fatalf("order %s, want [0 1 2 3 4 5]", got)
	}
}
