package workqueue_test

import (
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

func spins(c *kernel.Ctx, w *workqueue.Work) { delay.Mdelay(c, 10) }
func naps(c *kernel.Ctx, w *workqueue.Work)  { delay.Msleep(c, 10) }

func pool(t *testing.T, k *kernel.Kernel, name string) workqueue.PoolStats {
	t.Helper()
	for _, p := range workqueue.Pools(k) {
		if p.Name() == name {
			return p
		}
	}
	t.Fatalf("no pool %q", name)
	return workqueue.PoolStats{}
}

// TestPoolsShowBusyIdleRunningAndPendingWork: while an item busy-waits on
// CPU 0 its worker is the pool's one running worker and the items queued
// behind it wait on the worklist; while two items sleep, their workers are
// busy and none runs.
func TestPoolsShowBusyIdleRunningAndPendingWork(t *testing.T) {
	k := ktest.Virtual(t, 2, 250)
	if ps := workqueue.Pools(k); len(ps) != 4*2+2 || ps[2].Name() != "0" || ps[3].Name() != "0H" ||
		ps[0].Name() != "0B" || ps[1].Name() != "0BH" || ps[8].Name() != "u8" || ps[9].Nice != -20 || ps[2].Workers != 0 {
		t.Fatalf("pools before any work: %+v", ps)
	}
	var a, b, c workqueue.Work
	workqueue.Init(&a, spins)
	workqueue.Init(&b, traced)
	workqueue.Init(&c, traced)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		workqueue.ScheduleWorkOn(ctx, 0, &a)
		workqueue.ScheduleWorkOn(ctx, 0, &b)
		workqueue.ScheduleWorkOn(ctx, 0, &c)
	})
	ktest.Run(t, k, 5_000_000)
	p := pool(t, k, "0")
	if p.CPU != 0 || p.Running != 1 || p.Busy() != 1 || p.Pending != 2 || p.Idle < 1 {
		t.Errorf("while a spins: %+v, want 1 running and busy, b and c pending, an idle worker in reserve", p)
	}
	ktest.Run(t, k, 10_000_000)
	if p := pool(t, k, "0"); p.Running != 0 || p.Busy() != 0 || p.Pending != 0 || p.Idle != p.Workers {
		t.Errorf("after the items: %+v, want every worker idle", p)
	}

	var d, e workqueue.Work
	workqueue.Init(&d, naps)
	workqueue.Init(&e, naps)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		workqueue.ScheduleWorkOn(ctx, 1, &d)
		workqueue.ScheduleWorkOn(ctx, 1, &e)
	})
	ktest.Run(t, k, 4_000_000)
	if p := pool(t, k, "1"); p.Running != 0 || p.Busy() != 2 || p.Pending != 0 {
		t.Errorf("while d and e sleep: %+v, want 2 busy, none running", p)
	}
	if p := pool(t, k, "1H"); p.Workers != 0 {
		t.Errorf("the high-priority pool got workers: %+v", p)
	}
}
