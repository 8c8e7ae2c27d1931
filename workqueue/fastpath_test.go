package workqueue_test

import (
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

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
