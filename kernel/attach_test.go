package kernel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// TestAttachedGoroutineIsAUserTaskThatCanSleep, in both time modes: the
// attached task has a pid, is listed, is a child of init, sleeps with
// msleep, and is gone from the task list after Detach.
func TestAttachedGoroutineIsAUserTaskThatCanSleep(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Virtual: virtual, Quiet: true})
		c, err := k.Attach(context.Background(), "a-very-long-client-name")
		if err != nil {
			t.Fatal(err)
		}
		me := c.Current()
		if me.Comm() != "a-very-long-cli" || me.IsKthread() || me.Parent() != k.InitTask() || k.FindTask(me.PID()) != me {
			t.Fatalf("virtual=%v: task %s kthread=%v parent=%v", virtual, me, me.IsKthread(), me.Parent())
		}
		if !c.InTask() || c.InAtomic() {
			t.Fatalf("not a process context: preempt %#x", c.PreemptCount())
		}
		before := k.Now()
		delay.Msleep(c, 5)
		if virtual && k.Now()-before != 6*int64(time.Millisecond) {
			t.Fatalf("msleep(5) took %d ns of virtual time, want 6 ms", k.Now()-before)
		}
		if k.Now()-before < 5*int64(time.Millisecond) {
			t.Fatalf("virtual=%v: msleep(5) returned after %d ns", virtual, k.Now()-before)
		}
		if err := kernel.Detach(c); err != nil {
			t.Fatal(err)
		}
		if k.FindTask(me.PID()) != nil || me.State() != kernel.TaskDead {
			t.Fatalf("virtual=%v: still listed after Detach (state %s)", virtual, me.State().String())
		}
		select {
		case <-me.Exited():
		default:
			t.Fatal("Exited not closed")
		}
	}
}

// TestAttachedTaskIsSeenSleepingUninterruptibleInRealTime: another
// goroutine sees the attached task in D while it waits on a completion.
func TestAttachedTaskIsSeenSleepingUninterruptibleInRealTime(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true})
	var done wait.Completion
	done.Init()
	pid := make(chan int)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		c, err := k.Attach(context.Background(), "client")
		if err != nil {
			t.Error(err)
			close(pid)
			return
		}
		pid <- c.Current().PID()
		done.WaitFor(c)
		kernel.Detach(c)
	}()
	p, ok := <-pid
	if !ok {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tk := k.FindTask(p)
		if tk != nil && tk.State().Letter() == 'D' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("attached task never seen in D")
		}
		time.Sleep(100 * time.Microsecond)
	}
	done.Complete()
	<-finished
}

// TestAttachedTaskMisuseIsReportedNotObeyed: a sleep after Detach, and a
// sleep from another goroutine, are reported and do not sleep (no hang);
// Detach twice, from another goroutine, or of a non-attached context fails
// with a clear error.
func TestAttachedTaskMisuseIsReportedNotObeyed(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true})
	c, err := k.Attach(context.Background(), "client")
	if err != nil {
		t.Fatal(err)
	}
	// From another goroutine.
	other := make(chan error)
	go func() {
		delay.Msleep(c, 10_000) // would sleep 10 s: reported and refused
		other <- kernel.Detach(c)
	}()
	if err := <-other; err == nil || !errors.Is(err, kernel.EINVAL) {
		t.Fatalf("Detach from another goroutine: %v", err)
	}
	if !ktest.Contains(k, "BUG: attached task client/") || !ktest.Contains(k, "used from a goroutine other than the one that attached it") {
		t.Fatalf("no report of the other goroutine:\n%s", ktest.Dmesg(k))
	}
	if err := kernel.Detach(c); err != nil {
		t.Fatal(err)
	}
	if err := kernel.Detach(c); !errors.Is(err, kernel.ErrDetached) {
		t.Fatalf("second Detach: %v, want ErrDetached", err)
	}
	c2, _ := k.Attach(context.Background(), "late")
	kernel.Detach(c2)
	delay.Msleep(c2, 10_000) // after Detach: reported, does not sleep
	if !ktest.Contains(k, "BUG: attached task late/") || !ktest.Contains(k, "used after Detach") {
		t.Fatalf("no report of the use after Detach:\n%s", ktest.Dmesg(k))
	}
	if err := kernel.Detach(k.IdleCtx(0)); !errors.Is(err, kernel.EINVAL) {
		t.Fatalf("Detach of an idle context: %v", err)
	}
}

// TestAttachAfterShutdownFailsAndShutdownWakesAttachedTasks: Attach after
// Shutdown is ErrShutdown; a task attached before it is woken with SIGKILL
// and no longer sleeps; Detach still works.
func TestAttachAfterShutdownFailsAndShutdownWakesAttachedTasks(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true})
	c, err := k.Attach(context.Background(), "client")
	if err != nil {
		t.Fatal(err)
	}
	ret := make(chan int)
	go func() {
		c2, err := k.Attach(context.Background(), "sleeper")
		if err != nil {
			t.Error(err)
			ret <- 0
			return
		}
		var q wait.Queue
		r := wait.EventKillable(c2, &q, func() bool { return false })
		kernel.Detach(c2)
		ret <- r
	}()
	for k.FindTask(6) == nil || k.FindTask(6).State() == kernel.TaskRunning {
		time.Sleep(100 * time.Microsecond)
	}
	ktest.Shutdown(t, k)
	if r := <-ret; r != -512 {
		t.Fatalf("killable wait returned %d, want -ERESTARTSYS (-512)", r)
	}
	if !c.FatalSignalPending() {
		t.Fatal("no SIGKILL pending after Shutdown")
	}
	if _, err := k.Attach(context.Background(), "late"); !errors.Is(err, kernel.ErrShutdown) {
		t.Fatalf("Attach after Shutdown: %v", err)
	}
	if err := kernel.Detach(c); err != nil {
		t.Fatalf("Detach after Shutdown: %v", err)
	}
}

// TestCancellingTheParentContextKillsTheAttachedTask: the context given to
// Attach acts as a fatal signal when cancelled.
func TestCancellingTheParentContextKillsTheAttachedTask(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	c, err := k.Attach(ctx, "client")
	if err != nil {
		t.Fatal(err)
	}
	if c.Value(key{}) != "v" {
		t.Fatal("the parent's values are not visible")
	}
	var q wait.Queue
	cancel()
	if r := wait.EventInterruptible(c, &q, func() bool { return false }); r != -512 {
		t.Fatalf("interruptible wait after cancel returned %d, want -ERESTARTSYS", r)
	}
	if c.Err() == nil {
		t.Fatal("the task's context is not cancelled")
	}
	kernel.Detach(c)
}

// TestVirtualKernelHasOneDriverAtATime: while a goroutine is attached to a
// virtual kernel (it drives it), Run, RunTask and Attach from another
// goroutine fail with EBUSY; after Detach they work.
func TestVirtualKernelHasOneDriverAtATime(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	c, err := k.Attach(context.Background(), "driver")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	go func() {
		errs <- k.Run(context.Background(), time.Millisecond)
		_, err := k.RunTask(context.Background(), "x", func(*kernel.Ctx) int { return 0 })
		errs <- err
		_, err = k.Attach(context.Background(), "second")
		errs <- err
	}()
	for range 3 {
		err := <-errs
		var busy *kernel.DriverBusyError
		if !errors.Is(err, kernel.EBUSY) || !errors.As(err, &busy) || !strings.Contains(err.Error(), "driven by one goroutine at a time") {
			t.Fatalf("got %v, want a DriverBusyError", err)
		}
	}
	// The attached goroutine itself may use RunTask (it is the driver).
	if code, err := k.RunTask(context.Background(), "child", func(*kernel.Ctx) int { return 7 }); err != nil || code != 7 {
		t.Fatalf("RunTask from the driver: %d, %v", code, err)
	}
	kernel.Detach(c)
	go func() { errs <- k.Run(context.Background(), time.Millisecond) }()
	if err := <-errs; err != nil {
		t.Fatalf("Run after Detach: %v", err)
	}
}

// TestAttachedTaskDeadlockInVirtualTimeIsReportedNotHung: an attached task
// waiting for a completion nothing will complete would hang the kernel;
// in virtual time the driver sees nothing left to run, reports it, and the
// wait returns.
func TestAttachedTaskDeadlockInVirtualTimeIsReportedNotHung(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	c, err := k.Attach(context.Background(), "client")
	if err != nil {
		t.Fatal(err)
	}
	var done wait.Completion
	done.Init()
	done.WaitFor(c)
	if !ktest.Contains(k, "INFO: task client:4 blocked in virtual time with nothing left that can wake it (deadlock)") {
		t.Fatalf("deadlock not reported:\n%s", ktest.Dmesg(k))
	}
	kernel.Detach(c)
}
