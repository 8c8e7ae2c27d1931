package workqueue_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestMaxActiveLimitsConcurrencyAndActivatesInQueueingOrder: with
// max_active 2 on one CPU, at most two items of the workqueue run at once
// (they sleep, so concurrency management would run more); the others wait
// on the inactive list and start in the order they were queued.
func TestMaxActiveLimitsConcurrencyAndActivatesInQueueingOrder(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var running, peak atomic.Int32
	var starts []string
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, err := workqueue.AllocWorkqueue(c, "limited", 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		items := make([]workqueue.Work, 6)
		for i := range items {
			i := i
			workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
				n := running.Add(1)
				if n > peak.Load() {
					peak.Store(n)
				}
				starts = append(starts, fmt.Sprintf("%d@%d", i, c.Kernel().Now()/ms))
				delay.Msleep(c, 10)
				running.Add(-1)
			})
			workqueue.QueueWork(c, wq, &items[i])
		}
		if st := workqueue.Snapshot(wq); st.Active != 2 || st.Inactive != 4 {
			t.Errorf("active %d inactive %d, want 2 and 4", st.Active, st.Inactive)
		}
		if !workqueue.Congested(c, workqueue.CPUUnbound, wq) {
			t.Error("workqueue_congested is false with inactive items")
		}
		workqueue.DestroyWorkqueue(c, wq)
	})
	if peak.Load() != 2 {
		t.Fatalf("peak concurrency %d, want 2", peak.Load())
	}
	want := []string{"0@0", "1@0", "2@11", "3@11", "4@22", "5@22"}
	if !slices.Equal(starts, want) {
		t.Fatalf("starts %v, want %v", starts, want)
	}
}

// TestMaxActiveOutOfRangeIsClampedWithTheKernelsMessage: 0 is the default
// (DflActive), 5000 and -1 are clamped to the range with pr_warn.
func TestMaxActiveOutOfRangeIsClampedWithTheKernelsMessage(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for _, tc := range []struct{ in, want int }{{0, workqueue.DflActive}, {5000, workqueue.MaxActive}, {-1, 1}, {7, 7}} {
			wq, _ := workqueue.AllocWorkqueue(c, fmt.Sprint("q", tc.in), 0, tc.in)
			if got := workqueue.MaxActiveOf(wq); got != tc.want {
				t.Errorf("max_active %d became %d, want %d", tc.in, got, tc.want)
			}
			workqueue.DestroyWorkqueue(c, wq)
		}
	})
	logHas(t, k, "workqueue: max_active 5000 requested for q5000 is out of range, clamping between 1 and 2048")
	logHas(t, k, "workqueue: max_active -1 requested for q-1 is out of range, clamping between 1 and 2048")
	if n := logCount(k, "clamping"); n != 2 {
		t.Fatalf("%d clamping messages, want 2", n)
	}
}

// TestSetMaxActiveRaisesTheLimitAndActivatesWaitingItems.
func TestSetMaxActiveRaisesTheLimitAndActivatesWaitingItems(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var starts []int64
	var raised int64
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "grow", 0, 1)
		items := make([]workqueue.Work, 3)
		for i := range items {
			workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
				starts = append(starts, c.Kernel().Now()/ms)
				delay.Msleep(c, 10)
			})
			workqueue.QueueWork(c, wq, &items[i])
		}
		delay.Msleep(c, 2)
		raised = c.Kernel().Now() / ms
		workqueue.SetMaxActive(c, wq, 3)
		workqueue.DestroyWorkqueue(c, wq)
	})
	if want := fmt.Sprint([]int64{0, raised, raised}); fmt.Sprint(starts) != want || raised >= 10 {
		t.Fatalf("starts %v ms, want %s", starts, want)
	}
}

// TestSetMaxActiveLowersTheLimitSoThatCompletionsActivateNothingUntilBelowIt:
// with three items active and two waiting, max_active lowered to 1 lets a
// waiting item start only once the active ones have all completed (a
// completion's slot goes to a waiting item only while nr_active is within
// the limit).
func TestSetMaxActiveLowersTheLimitSoThatCompletionsActivateNothingUntilBelowIt(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var starts []int64
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "shrink", 0, 3)
		items := make([]workqueue.Work, 5)
		for i := range items {
			workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
				starts = append(starts, c.Kernel().Now()/ms)
				delay.Msleep(c, 10)
			})
			workqueue.QueueWork(c, wq, &items[i])
		}
		delay.Msleep(c, 2)
		workqueue.SetMaxActive(c, wq, 1)
		workqueue.DestroyWorkqueue(c, wq)
	})
	// msleep(10) sleeps 11 jiffies.
	if got, want := fmt.Sprint(starts), fmt.Sprint([]int64{0, 0, 0, 11, 22}); got != want {
		t.Fatalf("starts %s ms, want %s", got, want)
	}
}

// TestOrderedWorkqueueRunsOneItemAtATimeInQueueingOrder: even when items
// sleep and are queued from two CPUs.
func TestOrderedWorkqueueRunsOneItemAtATimeInQueueingOrder(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var in atomic.Int32
	var order []int
	var wq *workqueue.Workqueue
	ktest.InTask(t, k, func(c *kernel.Ctx) { wq, _ = workqueue.AllocOrderedWorkqueue(c, "ord", 0) })
	items := make([]workqueue.Work, 8)
	for i := range items {
		i := i
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
			if in.Add(1) != 1 {
				t.Error("two items of an ordered workqueue ran at once")
			}
			order = append(order, i)
			delay.Msleep(c, uint32(8-i))
			in.Add(-1)
		})
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for i := range items {
			workqueue.QueueWorkOn(c, i%2, wq, &items[i])
		}
		workqueue.FlushWorkqueue(c, wq)
		workqueue.DestroyWorkqueue(c, wq)
	})
	if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("order %v", order)
	}
	if ws := kworkers(k); !slices.ContainsFunc(ws, func(s string) bool { return strings.HasPrefix(s, "kworker/u8:") }) {
		t.Fatalf("no unbound kworker/u8:M among %v", ws)
	}
}

// TestUnboundWorkqueueRunsItemsConcurrentlyOnKworkerU: the unbound pool is
// not concurrency managed: items that spin (never sleep) still run side by
// side, up to max_active, on workers named kworker/uP:M.
func TestUnboundWorkqueueRunsItemsConcurrentlyOnKworkerU(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var running, peak atomic.Int32
	var names []string
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "unb", workqueue.Unbound, 3)
		items := make([]workqueue.Work, 5)
		for i := range items {
			workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
				n := running.Add(1)
				if n > peak.Load() {
					peak.Store(n)
				}
				names = append(names, c.Current().Comm())
				delay.Mdelay(c, 5)
				running.Add(-1)
			})
			workqueue.QueueWork(c, wq, &items[i])
		}
		workqueue.DestroyWorkqueue(c, wq)
	})
	if peak.Load() != 3 {
		t.Fatalf("peak %d, want max_active 3", peak.Load())
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "kworker/u8:") {
			t.Fatalf("ran on %q, want kworker/u8:M (the first unbound pool of 2 CPUs is id 8)", n)
		}
	}
}

// TestHighpriWorkersAreNamedWithH.
func TestHighpriWorkersAreNamedWithH(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var comm string
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { comm = c.Current().Comm() })
	onCPU(t, k, "app", 1, func(c *kernel.Ctx) { workqueue.QueueWork(c, workqueue.SystemHighpri(c.Kernel()), w) })
	ktest.Run(t, k, 0)
	if comm != "kworker/1:0H" {
		t.Fatalf("ran on %q, want kworker/1:0H", comm)
	}
}

// TestSystemWorkqueuesAreCreatedLazilyWithoutGoroutines: booting starts no
// kworker; looking a system workqueue up starts none either; the first
// queued item starts its pool's first worker (and the manager's spare).
func TestSystemWorkqueuesAreCreatedLazilyWithoutGoroutines(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	if ws := kworkers(k); len(ws) != 0 {
		t.Fatalf("kworkers at boot: %v", ws)
	}
	before := runtime.NumGoroutine()
	for _, wq := range []*workqueue.Workqueue{workqueue.System(k), workqueue.SystemUnbound(k), workqueue.SystemBH(k), workqueue.SystemLong(k)} {
		if wq == nil {
			t.Fatal("nil system workqueue")
		}
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Fatalf("goroutines %d -> %d after looking the system workqueues up", before, after)
	}
	if workqueue.System(k) != workqueue.System(k) || workqueue.System(k).Name() != "events" {
		t.Fatal("System is not one workqueue named events")
	}
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {})
	onCPU(t, k, "app", 0, func(c *kernel.Ctx) { workqueue.ScheduleWork(c, w) })
	ktest.Run(t, k, 0)
	if ws := kworkers(k); !slices.Equal(ws, []string{"kworker/0:0", "kworker/0:1"}) {
		t.Fatalf("kworkers after the first item: %v, want kworker/0:0 and its spare kworker/0:1", ws)
	}
}

// TestBHWorkqueueRunsItemsInSoftirqContext: events_bh runs the item from
// TASKLET_SOFTIRQ on the CPU that queued it, events_bh_highpri from
// HI_SOFTIRQ.
func TestBHWorkqueueRunsItemsInSoftirqContext(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var got []string
	mk := func(tag string) *workqueue.Work {
		return workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
			got = append(got, fmt.Sprintf("%s softirq=%v cpu%d", tag, c.InServingSoftirq(), c.CPU()))
		})
	}
	w, hi := mk("bh"), mk("hi")
	onCPU(t, k, "app", 1, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c)
		workqueue.QueueWork(c, workqueue.SystemBH(c.Kernel()), w)
		workqueue.QueueWork(c, workqueue.SystemBHHighpri(c.Kernel()), hi)
		kernel.LocalBHEnable(c)
	})
	ktest.Run(t, k, 0)
	if strings.Join(got, "; ") != "hi softirq=true cpu1; bh softirq=true cpu1" {
		t.Fatalf("got %q", got)
	}
	if k.SoftirqCount(kernel.TaskletSoftirq, 1) == 0 || k.SoftirqCount(kernel.HISoftirq, 1) == 0 {
		t.Fatal("the tasklet softirqs did not run on CPU 1")
	}
}

// TestBHWorkqueueTakesOnlyHighpriAndNoMaxActive: the kernel WARNs and
// returns NULL.
func TestBHWorkqueueTakesOnlyHighpriAndNoMaxActive(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if _, err := workqueue.AllocWorkqueue(c, "bad", workqueue.BH|workqueue.Unbound, 0); !errors.Is(err, workqueue.ErrInvalid) {
			t.Errorf("WQ_BH|WQ_UNBOUND: %v", err)
		}
		if _, err := workqueue.AllocWorkqueue(c, "bad2", workqueue.BH, 4); !errors.Is(err, workqueue.ErrInvalid) {
			t.Errorf("WQ_BH with max_active 4: %v", err)
		}
		if _, err := workqueue.AllocWorkqueue(c, "good", workqueue.BH|workqueue.Highpri, 0); err != nil {
			t.Errorf("WQ_BH|WQ_HIGHPRI: %v", err)
		}
	})
	if k.Warnings() != 2 {
		t.Fatalf("%d warnings, want 2", k.Warnings())
	}
}

// TestCancelWorkSyncOfABHItemBusyWaitsInSoftirqContext: a BH item may be
// cancelled from a softirq (a timer callback) — it waits by spinning.
func TestCancelWorkSyncOfABHItemIsLegalFromATask(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	runs := 0
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { runs++ })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.QueueWork(c, workqueue.SystemBH(c.Kernel()), w)
		workqueue.CancelWorkSync(c, w)
		workqueue.QueueWork(c, workqueue.SystemBH(c.Kernel()), w)
		workqueue.FlushWork(c, w)
	})
	if runs != 1 || k.Warnings() != 0 {
		t.Fatalf("runs %d warnings %d:\n%s", runs, k.Warnings(), ktest.Text(k))
	}
}

// TestCreateWorkqueueHasARescuerNamedR: create_workqueue is per-CPU,
// max_active 1, with a WQ_MEM_RECLAIM rescuer kworker/R-name.
func TestCreateWorkqueueHasARescuerNamedR(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.CreateWorkqueue(c, "leg")
		if workqueue.MaxActiveOf(wq) != 1 || wq.Flags()&workqueue.MemReclaim == 0 {
			t.Errorf("max_active %d flags %#x", workqueue.MaxActiveOf(wq), wq.Flags())
		}
		if !slices.Contains(kworkers(c.Kernel()), "kworker/R-leg") {
			t.Errorf("no rescuer among %v", kworkers(c.Kernel()))
		}
		workqueue.DestroyWorkqueue(c, wq)
		if slices.Contains(kworkers(c.Kernel()), "kworker/R-leg") {
			t.Error("the rescuer outlived destroy_workqueue")
		}
	})
}

// TestRescuerRunsTheItemsOfItsWorkqueueWhenNoWorkerCanBeCreated: the
// pool's worker is busy with an item that waits for a second one; the
// spare that wakes for the second becomes the manager, but creating a
// worker fails; after MAYDAY_INITIAL_TIMEOUT (10 ms at HZ=1000) the mayday
// timer calls the WQ_MEM_RECLAIM workqueue's rescuer, which runs it.
func TestRescuerRunsTheItemsOfItsWorkqueueWhenNoWorkerCanBeCreated(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var released, failing atomic.Bool
	var rescuedBy string
	var queuedAt, rescuedAt int64
	workqueue.FailWorkerCreation(k, failing.Load)
	waiter := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		for !released.Load() {
			delay.Msleep(c, 1)
		}
	})
	freer := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		rescuedBy = c.Current().Comm()
		rescuedAt = c.Kernel().Now()
		released.Store(true)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, "reclaim", workqueue.MemReclaim, 0)
		workqueue.QueueWork(c, wq, waiter) // kworker/0:0 runs it; kworker/0:1 is the spare
		delay.Msleep(c, 1)
		failing.Store(true)
		queuedAt = c.Kernel().Now()
		workqueue.QueueWork(c, wq, freer) // the spare wakes, manages, cannot create
		workqueue.FlushWorkqueue(c, wq)
		failing.Store(false)
		workqueue.DestroyWorkqueue(c, wq)
	})
	if rescuedBy != "kworker/R-recla" { // comm is 15 bytes
		t.Fatalf("the item ran on %q, want the rescuer", rescuedBy)
	}
	if d := (rescuedAt - queuedAt) / ms; d < 10 || d > 12 {
		t.Fatalf("rescued %d ms after queueing, want MAYDAY_INITIAL_TIMEOUT (10 ms)", d)
	}
}

// TestFreezableWorkqueueHoldsItsItemsUntilThawed: while frozen, queued items
// wait (freeze_workqueues_busy is false once the active ones are done) and
// run after thaw_workqueues; a non-freezable workqueue goes on.
func TestFreezableWorkqueueHoldsItsItemsUntilThawed(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var frozenRuns, normalRuns atomic.Int32
	fw := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { frozenRuns.Add(1) })
	nw := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { normalRuns.Add(1) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.FreezeWorkqueuesBegin(c.Kernel())
		workqueue.QueueWork(c, workqueue.SystemFreezable(c.Kernel()), fw)
		workqueue.QueueWork(c, workqueue.System(c.Kernel()), nw)
		delay.Msleep(c, 10)
		if workqueue.FreezeWorkqueuesBusy(c.Kernel()) {
			t.Error("freezable workqueues still busy")
		}
		if frozenRuns.Load() != 0 || normalRuns.Load() != 1 {
			t.Errorf("while frozen: freezable ran %d, normal %d", frozenRuns.Load(), normalRuns.Load())
		}
		workqueue.ThawWorkqueues(c.Kernel())
		workqueue.FlushWork(c, fw)
	})
	if frozenRuns.Load() != 1 {
		t.Fatalf("the freezable item ran %d times after thaw", frozenRuns.Load())
	}
}

// TestNameLongerThanWQNameLenIsTruncatedWithAWarning.
func TestNameLongerThanWQNameLenIsTruncatedWithAWarning(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocWorkqueue(c, strings.Repeat("x", 40), 0, 0)
		if len(wq.Name()) != workqueue.NameLen-1 {
			t.Errorf("name %q", wq.Name())
		}
		workqueue.DestroyWorkqueue(c, wq)
	})
	logHas(t, k, "workqueue: name exceeds WQ_NAME_LEN. Truncating to: "+strings.Repeat("x", 31))
}
