package procfs_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
	"github.com/kdefer/kdefer/workqueue"
)

// TestWorkqueuesViewIsTheDump: /proc/workqueues is show_all_workqueues'
// text: the header alone when nothing is busy, and the busy workqueue,
// its pwq and its pool while an item sleeps.
func TestWorkqueuesViewIsTheDump(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	if got := procfs.Workqueues(k); got != "Showing busy workqueues and worker pools:\n" {
		t.Fatalf("idle: %q", got)
	}
	var during string
	var pid int
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		pid = c.Current().PID()
		delay.Msleep(c, 10)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 5)
		during = procfs.Workqueues(k)
	})
	for _, l := range []string{
		"workqueue events: flags=0x0\n",
		"  pwq 2: cpus=0 node=0 flags=0x0 nice=0 active=1 refcnt=2\n",
		fmt.Sprintf("    in-flight: %d:TestWorkqueuesViewIsTheDump\n", pid),
		"pool 2: cpus=0 node=0 flags=0x0 nice=0 hung=0s workers=2 idle: ",
	} {
		if !strings.Contains(during, l) {
			t.Errorf("/proc/workqueues lacks %q:\n%s", l, during)
		}
	}
}

// TestTaskNameShowsAKworkersDesc: the name of a kworker in ps, comm and
// status carries "+events" while it runs an item of events, "-events"
// after; other tasks keep their comm.
func TestTaskNameShowsAKworkersDesc(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var kw *kernel.Task
	var during, status string
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		kw = c.Current()
		delay.Msleep(c, 10)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if procfs.TaskName(c.Current()) != "test" {
			t.Errorf("a user task is named %q", procfs.TaskName(c.Current()))
		}
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 5)
		during, status = procfs.TaskName(kw), procfs.TaskStatus(kw)
	})
	if during != "kworker/0:0+events" || !strings.HasPrefix(status, "Name:\tkworker/0:0+events\n") {
		t.Errorf("running: %q, status %q", during, status)
	}
	ktest.Run(t, k, 0)
	if after := procfs.TaskName(kw); after != "kworker/0:0-events" {
		t.Errorf("after: %q", after)
	}
}
