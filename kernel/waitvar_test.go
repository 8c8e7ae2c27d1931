package kernel_test

import (
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestWaitVarEventSleepsUninterruptibleUntilWakeUpVar: a task waiting for a
// variable is TASK_UNINTERRUPTIBLE (ps: D), a signal does not end the wait,
// and WakeUpVar after the condition became true wakes it.
func TestWaitVarEventSleepsUninterruptibleUntilWakeUpVar(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2})
	var flag int
	var woke int64
	waiter, err := k.Spawn("waiter", func(c *kernel.Ctx) int {
		if !kernel.WaitVarEvent(c, &flag, func() bool { return flag == 1 }) {
			t.Error("WaitVarEvent gave up")
		}
		woke = c.Kernel().Now()
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, k, time.Millisecond)
	if s := waiter.State(); s != kernel.TaskUninterruptible || s.Letter() != 'D' {
		t.Fatalf("waiter state %s, want TASK_UNINTERRUPTIBLE (D)", s.String())
	}
	k.SendSignal(waiter, kernel.SIGINT)
	run(t, k, time.Millisecond)
	if s := waiter.State(); s != kernel.TaskUninterruptible {
		t.Fatalf("a signal ended the wait: state %s", s.String())
	}
	c := k.IdleCtx(0)
	kernel.WakeUpVar(c, &flag) // condition still false: goes back to sleep
	run(t, k, time.Millisecond)
	if s := waiter.State(); s != kernel.TaskUninterruptible {
		t.Fatalf("woken with the condition false: state %s", s.String())
	}
	flag = 1
	kernel.WakeUpVar(c, &flag)
	run(t, k, time.Millisecond)
	select {
	case <-waiter.Exited():
	default:
		t.Fatalf("waiter did not return after WakeUpVar: state %s", waiter.State().String())
	}
	if woke != 3*int64(time.Millisecond) {
		t.Fatalf("woke at %d ns, want 3 ms", woke)
	}
}

// TestWaitVarEventInSoftirqBusyWaitsWhileTheOwnerFinishes: a softirq on CPU 1
// waits for a variable that a task busy-waiting on CPU 0 sets; in virtual
// time the softirq leaves its CPU and resumes once the task is done.
func TestWaitVarEventInSoftirqBusyWaitsWhileTheOwnerFinishes(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, HZ: 1000})
	var done int
	var softirqSaw int64 = -1
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {
		if !kernel.WaitVarEvent(c, &done, func() bool { return done == 1 }) {
			t.Error("busy wait gave up")
		}
		softirqSaw = c.Kernel().Now()
	})
	owner, _ := k.CreateTask(kernel.TaskOpts{Comm: "owner", CPU: 0}, func(c *kernel.Ctx) int {
		kernel.Spin(c, 5*int64(time.Millisecond))
		done = 1
		kernel.WakeUpVar(c, &done)
		return 0
	})
	raiser, _ := k.CreateTask(kernel.TaskOpts{Comm: "raiser", CPU: 1}, func(c *kernel.Ctx) int {
		kernel.RaiseSoftirq(c, kernel.NetRXSoftirq) // runs in ksoftirqd/1
		return 0
	})
	k.WakeUpProcess(owner)
	k.WakeUpProcess(raiser)
	run(t, k, 0)
	if softirqSaw != 5*int64(time.Millisecond) {
		t.Fatalf("softirq's wait ended at %d ns, want 5 ms", softirqSaw)
	}
}

// TestWaitVarEventFromTheDriverDrivesTheKernel: a wait from the goroutine
// that drives a virtual kernel (here a test between Run calls) runs the
// kernel until the condition holds, and reports a wait nothing can end.
func TestWaitVarEventFromTheDriverDrivesTheKernel(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	var flag int
	setter, _ := k.Spawn("setter", func(c *kernel.Ctx) int {
		kernel.Spin(c, int64(time.Millisecond))
		flag = 1
		kernel.WakeUpVar(c, &flag)
		return 0
	})
	c := k.IdleCtx(0)
	if !kernel.WaitVarEvent(c, &flag, func() bool { return flag == 1 }) {
		t.Fatal("WaitVarEvent from the driver gave up")
	}
	<-setter.Exited()
	if k.Now() != int64(time.Millisecond) {
		t.Fatalf("now %d, want 1 ms", k.Now())
	}
	var never int
	if kernel.WaitVarEvent(c, &never, func() bool { return never == 1 }) {
		t.Fatal("a wait nothing can end returned true")
	}
	if !ktest.Contains(k, "INFO: task swapper/0:0 blocked in virtual time with nothing left that can wake it (deadlock)") {
		t.Fatalf("deadlock not reported:\n%s", dmesg(k))
	}
}
