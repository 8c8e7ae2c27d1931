package workqueue_test

import (
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

func TestScheduleWorkRunsInAKworkerOfTheCallersCPU(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var comm string
	var inTask bool
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		comm = c.Current().Comm()
		inTask = c.InTask()
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if !workqueue.ScheduleWork(c, w) {
			t.Error("schedule_work returned false for an idle item")
		}
	})
	ktest.Run(t, k, 0)
	if comm != "kworker/0:0" && comm != "kworker/1:0" {
		t.Fatalf("ran in %q, want kworker/N:0", comm)
	}
	if !inTask {
		t.Fatal("not in process context")
	}
}
