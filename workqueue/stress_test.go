package workqueue_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// stressItem is a work item with the bookkeeping of the stress test.
type stressItem struct {
	dw      workqueue.DelayedWork
	delayed bool
	wq      *workqueue.Workqueue
	owner   int // goroutine allowed to sync-cancel it (-1: shared)

	in        atomic.Int32 // executions in progress (non-reentrancy)
	execs     atomic.Int64
	queued    atomic.Int64 // queueings that returned true (net of mod_delayed_work's)
	cancelled atomic.Int64 // cancels that returned true
	dead      atomic.Bool  // set after the owner's cancel_*_sync returned
	requeue   atomic.Int32 // budget of self-requeueings
	t         *testing.T
}

func (it *stressItem) fn(c *kernel.Ctx, _ *workqueue.Work) {
	if it.in.Add(1) != 1 {
		it.t.Error("an item ran on two workers at once")
	}
	if it.dead.Load() {
		it.t.Error("an item ran after its cancel_*_sync returned")
	}
	it.execs.Add(1)
	if it.owner >= 0 || it.execs.Load()%7 == 0 {
		delay.Msleep(c, 1) // let concurrency management work
	}
	if it.dead.Load() {
		it.t.Error("an item was still running after its cancel_*_sync returned")
	}
	it.in.Add(-1)
	if it.requeue.Add(-1) >= 0 {
		it.queue(c)
	}
}

func (it *stressItem) queue(c *kernel.Ctx) {
	var ok bool
	if it.delayed {
		ok = workqueue.QueueDelayedWork(c, it.wq, &it.dw, uint64(rand.IntN(3)))
	} else {
		ok = workqueue.QueueWork(c, it.wq, &it.dw.Work)
	}
	if ok {
		it.queued.Add(1)
	}
}

// TestStressQueueCancelModFlushFromManyGoroutinesLosesAndDuplicatesNothing:
// real time, -race: goroutines attached to a 2-CPU kernel queue, cancel,
// mod_delayed_work and flush thousands of items on four kinds of
// workqueues. Every queueing that returned true is matched by exactly one
// execution unless a cancel returned true for it; no item runs after its
// cancel_*_sync returned; no item runs on two workers at once; no
// goroutine is left after destroy, Shutdown and the kernel's shutdown
// (leakcheck).
func TestStressQueueCancelModFlushFromManyGoroutinesLosesAndDuplicatesNothing(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	const (
		goroutines = 6
		ops        = 1500
		shared     = 64
		owned      = 8 // per goroutine
	)
	main, err := k.Attach(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Detach(main)
	var wqs []*workqueue.Workqueue
	for _, spec := range []struct {
		name  string
		flags workqueue.Flags
		max   int
	}{{"percpu", 0, 0}, {"unbound", workqueue.Unbound, 4}, {"limited", 0, 2}, {"hipri", workqueue.Highpri, 0}} {
		wq, err := workqueue.AllocWorkqueue(main, spec.name, spec.flags, spec.max)
		if err != nil {
			t.Fatal(err)
		}
		wqs = append(wqs, wq)
	}
	ordered, _ := workqueue.AllocOrderedWorkqueue(main, "ordered", 0)
	wqs = append(wqs, ordered)

	var items []*stressItem
	mk := func(i, owner int) *stressItem {
		it := &stressItem{delayed: i%3 == 0, wq: wqs[i%len(wqs)], owner: owner, t: t}
		if it.delayed {
			workqueue.InitDelayed(&it.dw, it.fn)
		} else {
			workqueue.Init(&it.dw.Work, it.fn)
		}
		if i%5 == 0 {
			it.requeue.Store(20)
		}
		items = append(items, it)
		return it
	}
	for i := range shared {
		mk(i, -1)
	}
	ownedBy := make([][]*stressItem, goroutines)
	for g := range goroutines {
		for i := range owned {
			ownedBy[g] = append(ownedBy[g], mk(shared+g*owned+i, g))
		}
	}

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c, err := k.Attach(context.Background(), fmt.Sprint("stress", g))
			if err != nil {
				t.Error(err)
				return
			}
			defer kernel.Detach(c)
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for range ops {
				it := items[rng.IntN(shared)]
				switch op := rng.IntN(100); {
				case op < 50:
					it.queue(c)
				case op < 65:
					var ok bool
					if it.delayed {
						ok = workqueue.CancelDelayedWork(c, &it.dw)
					} else {
						ok = workqueue.CancelWork(c, &it.dw.Work)
					}
					if ok {
						it.cancelled.Add(1)
					}
				case op < 75 && it.delayed:
					if !workqueue.ModDelayedWork(c, it.wq, &it.dw, uint64(rng.IntN(3))) {
						it.queued.Add(1) // it was idle: a new queueing
					}
				case op < 85:
					workqueue.FlushWork(c, &it.dw.Work)
				case op < 87:
					workqueue.FlushWorkqueue(c, it.wq)
				default:
					// The owner's sync cancel: nothing may run afterwards.
					mine := ownedBy[g][rng.IntN(owned)]
					mine.dead.Store(false)
					mine.queue(c)
					if rng.IntN(2) == 0 {
						delay.Udelay(c, uint64(rng.IntN(200)))
					}
					var ok bool
					if mine.delayed {
						ok = workqueue.CancelDelayedWorkSync(c, &mine.dw)
					} else {
						ok = workqueue.CancelWorkSync(c, &mine.dw.Work)
					}
					if ok {
						mine.cancelled.Add(1)
					}
					mine.dead.Store(true)
					mine.requeue.Store(0)
				}
			}
		}(g)
	}
	wg.Wait()

	// Let everything still queued or armed run.
	for _, it := range items {
		it.requeue.Store(0)
		it.dead.Store(false)
	}
	for range 3 {
		for _, it := range items {
			if it.delayed {
				workqueue.FlushDelayedWork(main, &it.dw)
			} else {
				workqueue.FlushWork(main, &it.dw.Work)
			}
		}
	}
	for i, it := range items {
		want := it.queued.Load() - it.cancelled.Load()
		if got := it.execs.Load(); got != want {
			t.Errorf("item %d: %d executions, want %d (%d true queueings - %d true cancels)", i, got, want, it.queued.Load(), it.cancelled.Load())
		}
		if workqueue.Pending(&it.dw.Work) {
			t.Errorf("item %d still pending", i)
		}
	}
	for _, wq := range wqs[:len(wqs)-1] {
		if !workqueue.DestroyWorkqueue(main, wq) {
			t.Errorf("destroy_workqueue(%s) refused", wq.Name())
		}
	}
	if err := workqueue.Shutdown(main, ordered, workqueue.Drain, 10*time.Second); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if k.Warnings() != 0 {
		t.Errorf("warnings:\n%s", ktest.Text(k))
	}
}
