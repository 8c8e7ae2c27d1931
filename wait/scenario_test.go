package wait_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

// TestLab6KthreadPatternTerminates runs the linux-kernel-labs deferred-work
// exercise 6: module init starts a kthread that waits on one queue for a
// stop flag; module exit sets the flag, wakes it, and waits on a second
// queue for the thread's "terminated" flag.
func TestLab6KthreadPatternTerminates(t *testing.T) {
	k := bootV(t)
	var wqStopThread, wqThreadTerminated wait.Queue
	var flagStopThread, flagThreadTerminated atomic.Int32
	var kt *kernel.Task

	myThreadF := func(c *kernel.Ctx) int {
		kernel.Printk(c, printk.LevelInfo, "[my_thread_f] Current process id is %d (%s)\n", c.Current().PID(), c.Current().Comm())
		wait.EventInterruptible(c, &wqStopThread, func() bool { return flagStopThread.Load() != 0 })
		flagThreadTerminated.Store(1)
		wait.WakeUpInterruptible(c, &wqThreadTerminated)
		kernel.Printk(c, printk.LevelInfo, "[my_thread_f] Exiting\n")
		return 0
	}
	runTask(t, k, func(c *kernel.Ctx) { // insmod
		kernel.Printk(c, printk.LevelInfo, "[kthread_init] Init module\n")
		wait.Init(&wqStopThread)
		flagStopThread.Store(0)
		wait.Init(&wqThreadTerminated)
		flagThreadTerminated.Store(0)
		var err error
		kt, err = k.CreateTask(kernel.TaskOpts{Comm: "mykthread0", Kthread: true, CPU: -1}, myThreadF)
		if err != nil {
			t.Error(err)
			return
		}
		k.WakeUpProcess(kt)
	})
	if err := k.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if s := kt.State(); s != kernel.TaskInterruptible {
		t.Fatalf("kthread state %s after a second, want TASK_INTERRUPTIBLE", s.String())
	}
	runTask(t, k, func(c *kernel.Ctx) { // rmmod
		flagStopThread.Store(1)
		wait.WakeUpInterruptible(c, &wqStopThread)
		wait.EventInterruptible(c, &wqThreadTerminated, func() bool { return flagThreadTerminated.Load() != 0 })
		kernel.Printk(c, printk.LevelInfo, "[kthread_exit] Exit module\n")
	})
	run(t, k)
	select {
	case <-kt.Exited():
	default:
		t.Fatal("kthread did not exit")
	}
	var got []string
	for _, l := range logLines(k) {
		if strings.HasPrefix(l, "[") {
			got = append(got, l)
		}
	}
	want := []string{
		"[kthread_init] Init module",
		"[my_thread_f] Current process id is " + itoa(kt.PID()) + " (mykthread0)",
		"[my_thread_f] Exiting",
		"[kthread_exit] Exit module",
	}
	if !slices.Equal(got, want) {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestCompleteFromATimerCallbackWakesTheWaiter(t *testing.T) {
	k := bootV(t)
	var x wait.Completion
	var tm timer.Timer
	var inSoftirq bool
	var ret int64
	var slept uint64
	runTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			inSoftirq = c.InServingSoftirq()
			x.Complete()
		}, 0)
		start := c.Jiffies()
		timer.Mod(c, &tm, start+25)
		ret = x.WaitForTimeout(c, 250)
		slept = c.Jiffies() - start
	})
	if !inSoftirq {
		t.Error("the timer callback did not run in softirq context")
	}
	if slept < 25 || slept > 26 || ret != int64(250-slept) {
		t.Errorf("woke after %d jiffies with %d left, want ~25 with 250-25", slept, ret)
	}
}

func TestWakeUpFromATimerCallbackEndsWaitEventInterruptibleTimeout(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var flag atomic.Bool
	var tm timer.Timer
	var ret int64
	runTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			flag.Store(true)
			wait.WakeUpInterruptible(c, &q)
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
		ret = wait.EventInterruptibleTimeout(c, &q, flag.Load, 50)
	})
	if ret <= 1 || ret >= 50 {
		t.Errorf("ret=%d, want the jiffies left (~44)", ret)
	}
}

// TestWaitsInAtomicContextReportAndReturnFailure: sleeping in atomic
// context is the classic bug; kdefer reports it and the wait gives up.
func TestWaitsInAtomicContextReportAndReturnFailure(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var x wait.Completion
	never := func() bool { return false }
	var rets []int64
	runTask(t, k, func(c *kernel.Ctx) {
		var lock kernel.SpinLock
		lock.Lock(c)
		wait.Event(c, &q, never)
		rets = append(rets,
			wait.EventTimeout(c, &q, never, 10),
			int64(wait.EventInterruptible(c, &q, never)),
			int64(wait.EventKillable(c, &q, never)),
			wait.EventInterruptibleTimeout(c, &q, never, 10),
			int64(wait.EventInterruptible(c, &q, func() bool { return true })),
		)
		x.WaitFor(c)
		rets = append(rets,
			x.WaitForTimeout(c, 10),
			int64(x.WaitForInterruptible(c)),
			int64(x.WaitForKillable(c)),
		)
		x.Complete()
		rets = append(rets, x.WaitForTimeout(c, 10)) // done: consumed even here
		lock.Unlock(c)
	})
	want := []int64{0, erestartsys, erestartsys, erestartsys, 0, 0, erestartsys, erestartsys, 10}
	if !slices.Equal(rets, want) {
		t.Errorf("returns %v, want %v", rets, want)
	}
	if !logHas(k, "BUG: sleeping function called from invalid context at wait/scenario_test.go:") {
		t.Errorf("no might_sleep report naming the caller; log:\n%s", strings.Join(logLines(k), "\n"))
	}
	if x.Done() {
		t.Error("the completion was not consumed")
	}
}

func TestWaitInSoftirqIsReportedAndDoesNotSleep(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var tm timer.Timer
	ret := int64(1)
	runTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			ret = wait.EventTimeout(c, &q, func() bool { return false }, 100)
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	run(t, k)
	if ret != 0 || !logHas(k, "BUG: sleeping function called from invalid context") {
		t.Errorf("ret=%d, reported=%v; want 0 and a BUG report", ret, logHas(k, "BUG: sleeping"))
	}
}

// TestShutdownEndsEveryWait: while the kernel shuts down no task sleeps;
// the waits return their failure values and the tasks run to their end.
func TestShutdownEndsEveryWait(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	var q wait.Queue
	var x wait.Completion
	never := func() bool { return false }
	var rets [6]atomic.Int64
	for i := range rets {
		rets[i].Store(42)
	}
	waits := []func(c *kernel.Ctx) int64{
		func(c *kernel.Ctx) int64 { wait.Event(c, &q, never); return 0 },
		func(c *kernel.Ctx) int64 { return wait.EventTimeout(c, &q, never, 1000000) },
		func(c *kernel.Ctx) int64 { return int64(wait.EventInterruptible(c, &q, never)) },
		func(c *kernel.Ctx) int64 { return int64(wait.EventKillableExclusive(c, &q, never)) },
		func(c *kernel.Ctx) int64 { return x.WaitForTimeout(c, 1000000) },
		func(c *kernel.Ctx) int64 { return int64(x.WaitForInterruptible(c)) },
	}
	for i, w := range waits {
		spawn(t, k, "waiter", func(c *kernel.Ctx) { rets[i].Store(w(c)) })
	}
	run(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want := []int64{0, 0, erestartsys, erestartsys, 0, erestartsys}
	for i, w := range want {
		if got := rets[i].Load(); got != w {
			t.Errorf("wait %d returned %d on shutdown, want %d", i, got, w)
		}
	}
}
