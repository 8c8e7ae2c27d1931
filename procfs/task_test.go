package procfs_test

import (
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
)

// TestTaskStatusOfASleepingKernelThread: the status of a kernel thread
// that slept three times and now waits for a signal, as Billimoria's kt1
// shows it.
func TestTaskStatusOfASleepingKernelThread(t *testing.T) {
	k := ktest.Virtual(t, 1, 0)
	kt, err := k.CreateTask(kernel.TaskOpts{Comm: "mykt", Kthread: true, CPU: -1}, func(c *kernel.Ctx) int {
		for range 2 {
			delay.Msleep(c, 10)
		}
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c)
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(kt)
	ktest.Run(t, k, time.Second)
	golden.Check(t, "testdata/status_kthread.golden", procfs.TaskStatus(kt))
	k.WakeUpProcess(kt)
	ktest.Run(t, k, time.Millisecond)
}

func TestStateNameFollowsTaskStateArray(t *testing.T) {
	for s, want := range map[kernel.TaskState]string{
		kernel.TaskRunning:         "R (running)",
		kernel.TaskInterruptible:   "S (sleeping)",
		kernel.TaskUninterruptible: "D (disk sleep)",
		kernel.TaskKillable:        "D (disk sleep)",
		kernel.TaskIdle:            "I (idle)",
		kernel.TaskParked:          "P (parked)",
		kernel.TaskStopped:         "T (stopped)",
		kernel.TaskTraced:          "t (tracing stop)",
		kernel.ExitZombie:          "Z (zombie)",
		kernel.TaskDead:            "X (dead)",
	} {
		if got := procfs.StateName(s); got != want {
			t.Errorf("StateName(%v) = %q, want %q", s, got, want)
		}
	}
}
