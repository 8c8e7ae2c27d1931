package workqueue_test

import (
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/workqueue"
)

// TestAVirtualTimeScenarioGivesTheSameLogEveryRun: kworker names, pids,
// times and the order of items are reproducible byte for byte — what the
// demos' golden logs rely on.
func TestAVirtualTimeScenarioGivesTheSameLogEveryRun(t *testing.T) {
	run := func() string {
		k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250})
		say := func(c *kernel.Ctx, what string) {
			kernel.Printk(c, printk.LevelInfo, "%s on %s/%d cpu%d\n", what, c.Current().Comm(), c.Current().PID(), c.CPU())
		}
		var items [6]workqueue.Work
		var dws [3]workqueue.DelayedWork
		for i := range items {
			workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
				say(c, "item")
				delay.Msleep(c, 10)
			})
		}
		for i := range dws {
			workqueue.InitDelayed(&dws[i], func(c *kernel.Ctx, w *workqueue.Work) { say(c, "delayed") })
		}
		for cpu := range 2 {
			onCPU(t, k, "app", cpu, func(c *kernel.Ctx) {
				for i := cpu; i < len(items); i += 2 {
					workqueue.ScheduleWork(c, &items[i])
				}
				workqueue.QueueWork(c, workqueue.SystemUnbound(c.Kernel()), &items[4+cpu])
				workqueue.ScheduleDelayedWork(c, &dws[cpu], uint64(5+cpu))
				delay.Msleep(c, 3)
				workqueue.ModDelayedWork(c, workqueue.SystemHighpri(c.Kernel()), &dws[2], 2)
			})
		}
		ktest.Run(t, k, 0)
		return ktest.Dmesg(k)
	}
	a, b := run(), run()
	if a != b {
		t.Fatalf("two runs differ:\n%s\n---\n%s", a, b)
	}
	if logCountText(a, "item on kworker/") < 4 || logCountText(a, "delayed on kworker/") != 3 {
		t.Fatalf("unexpected log:\n%s", a)
	}
}

func logCountText(text, s string) int {
	n := 0
	for i := 0; i+len(s) <= len(text); i++ {
		if text[i:i+len(s)] == s {
			n++
		}
	}
	return n
}
