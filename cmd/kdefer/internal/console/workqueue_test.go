package console_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/console"
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// TestPsShowsWhatAKworkerRuns: while a work item of events sleeps, ps
// shows its worker as [kworker/0:0+events], /proc/PID/comm as
// kworker/0:0+events and /proc/workqueues the busy pwq; once it is done,
// ps shows [kworker/0:0-events].
func TestPsShowsWhatAKworkerRuns(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var out, errb bytes.Buffer
	sh := console.New(k, &fakeRun{k: k}, console.Options{Out: &out, Err: &errb})
	var pid int
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		pid = c.Current().PID()
		delay.Msleep(c, 10)
	})
	var ps, comm, dump string
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		delay.Msleep(c, 5)
		ps = console.PS(k)
		sh.Exec("cat /proc/" + strconv.Itoa(pid) + "/comm")
		comm = out.String()
		out.Reset()
		sh.Exec("cat /proc/workqueues")
		dump = out.String()
	})
	if !strings.Contains(ps, " [kworker/0:0+events]\n") {
		t.Errorf("ps while the item runs:\n%s", ps)
	}
	if comm != "kworker/0:0+events\n" {
		t.Errorf("comm while the item runs: %q", comm)
	}
	if !strings.Contains(dump, "workqueue events: flags=0x0\n") || errb.Len() != 0 {
		t.Errorf("cat /proc/workqueues: %q, errors %q", dump, errb.String())
	}
	ktest.Run(t, k, 0)
	if ps := console.PS(k); !strings.Contains(ps, " [kworker/0:0-events]\n") {
		t.Errorf("ps after the item:\n%s", ps)
	}
}
