package kernel_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
)

type recorder struct {
	k   *kernel.Kernel
	log *[]string
}

func (r recorder) Sleeping(t *kernel.Task) {
	*r.log = append(*r.log, fmt.Sprintf("sleeping %s %s @%dms", t.Comm(), t.State().String(), r.k.Now()/1e6))
}

func (r recorder) Running(t *kernel.Task) {
	*r.log = append(*r.log, fmt.Sprintf("running %s %s @%dms", t.Comm(), t.State().String(), r.k.Now()/1e6))
}

// TestSchedNotifierSeesEverySleepOfAFlaggedTaskAndNothingElse: a flagged
// task's notifier is called before each block and after it runs again, in
// that order, for every kernel primitive; a busy-wait and a yield are not
// sleeps; an unflagged task never calls it.
func TestSchedNotifierSeesEverySleepOfAFlaggedTaskAndNothingElse(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, HZ: 1000})
	var log []string
	var m kernel.Mutex
	var flag int
	holder, _ := k.Spawn("holder", func(c *kernel.Ctx) int {
		m.Lock(c) // unflagged: its sleeps below are not reported
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // woken at 3 ms
		m.Unlock(c)
		return 0
	})
	run(t, k, 0)
	worker, _ := k.Spawn("worker", func(c *kernel.Ctx) int {
		c.Current().SetSchedNotifier(recorder{k, &log})
		kernel.Spin(c, int64(time.Millisecond)) // busy: not a sleep
		kernel.CondResched(c)                   // a yield: not a sleep
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // woken at 2 ms by the test
		m.Lock(c)          // sleeps until holder unlocks at 3 ms
		m.Unlock(c)
		kernel.WaitVarEvent(c, &flag, func() bool { return flag == 1 }) // until 4 ms
		c.Current().SetSchedNotifier(nil)
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // no longer reported; woken at 5 ms
		return 0
	})
	run(t, k, 2*time.Millisecond)
	k.WakeUpProcess(worker)
	run(t, k, time.Millisecond)
	k.WakeUpProcess(holder)
	run(t, k, time.Millisecond)
	flag = 1
	kernel.WakeUpVar(k.IdleCtx(0), &flag)
	run(t, k, time.Millisecond)
	k.WakeUpProcess(worker)
	run(t, k, 0)
	want := []string{
		"sleeping worker TASK_INTERRUPTIBLE @1ms",
		"running worker TASK_RUNNING @2ms",
		"sleeping worker TASK_UNINTERRUPTIBLE @2ms",
		"running worker TASK_RUNNING @3ms",
		"sleeping worker TASK_UNINTERRUPTIBLE @3ms",
		"running worker TASK_RUNNING @4ms",
	}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Fatalf("notifier calls:\n%q\nwant\n%q", log, want)
	}
}

// TestSchedNotifierIsCalledEvenWhenAPendingSignalKeepsTheTaskRunning: as
// sched_submit_work/sched_update_worker, both calls happen around
// schedule() whenever the task entered it not TASK_RUNNING.
func TestSchedNotifierIsCalledEvenWhenAPendingSignalKeepsTheTaskRunning(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	var log []string
	w, _ := k.Spawn("worker", func(c *kernel.Ctx) int {
		c.Current().SetSchedNotifier(recorder{k, &log})
		c.Kernel().SendSignal(c.Current(), kernel.SIGUSR1)
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // a signal is pending: does not sleep
		return 0
	})
	run(t, k, 0)
	<-w.Exited()
	if len(log) != 2 || log[0] != "sleeping worker TASK_INTERRUPTIBLE @0ms" || log[1] != "running worker TASK_RUNNING @0ms" {
		t.Fatalf("notifier calls %q", log)
	}
}
