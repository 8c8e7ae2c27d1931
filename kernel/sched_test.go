package kernel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

func TestWakeUpProcessReturnsWhetherItWoke(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var got []int
	var sleeper *kernel.Task
	sleeper, _ = k.Spawn("sleeper", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c)
		return 7
	})
	k.Spawn("waker", func(c *kernel.Ctx) int {
		got = append(got, k.WakeUpProcess(sleeper)) // sleeping: 1
		got = append(got, k.WakeUpProcess(sleeper)) // already running: 0
		got = append(got, k.WakeUpProcess(c.Current()))
		return 0
	})
	run(t, k, 0)
	if !slices.Equal(got, []int{1, 0, 0}) {
		t.Fatalf("wake_up_process returns %v, want [1 0 0]", got)
	}
	<-sleeper.Exited()
	if sleeper.ExitCode() != 7 || sleeper.State() != kernel.TaskDead {
		t.Fatalf("exit code %d state %#x", sleeper.ExitCode(), sleeper.State())
	}
}

func TestWakeUpStateOnlyWakesMatchingStates(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var res []int
	var d *kernel.Task
	d, _ = k.Spawn("dsleeper", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		kernel.Schedule(c)
		return 0
	})
	k.Spawn("waker", func(c *kernel.Ctx) int {
		res = append(res, k.WakeUpState(d, kernel.TaskInterruptible))
		res = append(res, int(d.State().Letter()))
		res = append(res, k.WakeUpState(d, kernel.TaskUninterruptible))
		return 0
	})
	run(t, k, 0)
	if !slices.Equal(res, []int{0, 'D', 1}) {
		t.Fatalf("got %v", res)
	}
}

func TestSetCurrentStateBeforeConditionCatchesEarlyWakeup(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	flag := false
	var w *kernel.Task
	returned := false
	w, _ = k.Spawn("waiter", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		// The waker runs between the state change and Schedule: here we
		// simulate that by waking ourselves, as an interrupt could.
		flag = true
		k.WakeUpProcess(c.Current())
		if !flag {
			kernel.Schedule(c)
		}
		kernel.Schedule(c) // state is RUNNING: must not sleep
		returned = true
		return 0
	})
	_ = w
	run(t, k, 0)
	if !returned {
		t.Fatal("Schedule slept although the task had been woken")
	}
}

func TestKthreadsIgnoreSignalsUnlessAllowed(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var events []string
	kt, _ := k.CreateTask(kernel.TaskOpts{Comm: "kt", Kthread: true, CPU: -1}, func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c)
		events = append(events, fmt.Sprintf("kt woke pending=%v err=%v", c.SignalPending(), c.Err()))
		kernel.AllowSignal(c, kernel.SIGUSR1)
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c)
		events = append(events, fmt.Sprintf("kt woke pending=%v signal=%v", c.SignalPending(), errors.Is(context.Cause(c), kernel.ErrSignal)))
		return 0
	})
	k.WakeUpProcess(kt)
	run(t, k, 0)
	if k.SendSignal(kt, kernel.SIGUSR1) {
		t.Fatal("kthread accepted a signal it did not allow")
	}
	k.WakeUpProcess(kt)
	run(t, k, 0)
	if !k.SendSignal(kt, kernel.SIGUSR1) {
		t.Fatal("allowed signal was not delivered")
	}
	run(t, k, 0)
	want := []string{"kt woke pending=false err=<nil>", "kt woke pending=true signal=true"}
	if !slices.Equal(events, want) {
		t.Fatalf("events %q, want %q", events, want)
	}
}

func TestSignalPendingStateFollowsTheKernelRules(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	type row struct {
		sig   kernel.Signal
		state kernel.TaskState
		want  bool
	}
	rows := []row{
		{kernel.SIGUSR1, kernel.TaskInterruptible, true},
		{kernel.SIGUSR1, kernel.TaskUninterruptible, false},
		{kernel.SIGUSR1, kernel.TaskKillable, false},
		{kernel.SIGKILL, kernel.TaskKillable, true},
		{kernel.SIGKILL, kernel.TaskUninterruptible, false},
		{kernel.SIGKILL, kernel.TaskInterruptible, true},
	}
	for _, r := range rows {
		var got bool
		ready := make(chan struct{})
		u, _ := k.Spawn("user", func(c *kernel.Ctx) int {
			<-ready
			got = c.SignalPendingState(r.state)
			kernel.FlushSignals(c)
			if c.SignalPending() || c.Err() != nil {
				t.Errorf("after FlushSignals: pending=%v err=%v", c.SignalPending(), c.Err())
			}
			return 0
		})
		k.SendSignal(u, r.sig)
		close(ready)
		run(t, k, 0)
		if got != r.want {
			t.Errorf("signal %d state %s: signal_pending_state = %v, want %v", r.sig, r.state.String(), got, r.want)
		}
	}
}

func TestMutexHandsOffInFIFOOrder(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var m kernel.Mutex
	var order []string
	k.Spawn("holder", func(c *kernel.Ctx) int {
		m.Lock(c)
		for i := 0; i < 3; i++ {
			kernel.CondResched(c) // let the others queue up
		}
		order = append(order, "holder")
		m.Unlock(c)
		return 0
	})
	for _, n := range []string{"a", "b", "c"} {
		k.Spawn(n, func(c *kernel.Ctx) int {
			m.Lock(c)
			order = append(order, n)
			m.Unlock(c)
			return 0
		})
	}
	run(t, k, 0)
	if !slices.Equal(order, []string{"holder", "a", "b", "c"}) {
		t.Fatalf("order %v", order)
	}
	if m.IsLocked() {
		t.Fatal("mutex still locked")
	}
}

// ticker is a ClockEvents source that fires every period on every CPU and
// raises a softirq, like a periodic device.
type ticker struct {
	k      *kernel.Kernel
	period int64
	next   []int64
}

func (tk *ticker) NextEvent(cpu int) int64 { return tk.next[cpu] }
func (tk *ticker) Tick(c *kernel.Ctx) {
	if c.Kernel().Now() >= tk.next[c.CPU()] {
		tk.next[c.CPU()] += tk.period
		kernel.RaiseSoftirqIrqoff(c, kernel.SchedSoftirq)
	}
}

// scenario runs a small reproducible workload for d of virtual time and
// returns the whole dmesg, timestamps included.
func scenario(t *testing.T, seed int64, d time.Duration, period time.Duration) (string, int) {
	k := boot(t, kernel.Config{CPUs: 2, HZ: 1000, Seed: seed})
	tk := &ticker{k: k, period: int64(period), next: []int64{int64(period), int64(period) + int64(period)/3}}
	k.RegisterClockEvents(tk)
	pr := kernel.PrFmt("scenario")
	var waiters []*kernel.Task
	woken := 0
	k.OpenSoftirq(kernel.SchedSoftirq, func(c *kernel.Ctx) {
		for _, w := range waiters {
			k.WakeUpProcess(w)
		}
	})
	for i := 0; i < 3; i++ {
		w, _ := k.CreateTask(kernel.TaskOpts{Comm: fmt.Sprintf("worker/%d", i), Kthread: true, CPU: i % 2}, func(c *kernel.Ctx) int {
			for !k.ShuttingDown() {
				kernel.SetCurrentState(c, kernel.TaskInterruptible)
				kernel.Schedule(c)
				woken++
				if woken%500 == 1 {
					pr.Info(c, "woken %d times, jiffies=%d\n", woken, c.Jiffies())
					pr.Info(c, "%s on cpu %d, preempt_count %#x\n", c.Current().Comm(), c.CPU(), c.PreemptCount())
				}
			}
			return 0
		})
		waiters = append(waiters, w)
		k.WakeUpProcess(w)
	}
	run(t, k, d)
	return dmesg(k), woken
}

func TestVirtualRunsAreByteIdentical(t *testing.T) {
	a, na := scenario(t, 1, 10*time.Second, 10*time.Millisecond)
	b, nb := scenario(t, 1, 10*time.Second, 10*time.Millisecond)
	if a != b || na != nb {
		t.Fatalf("two runs differ (%d vs %d wakeups):\n%s\n----\n%s", na, nb, a, b)
	}
	if na < 2000 {
		t.Fatalf("only %d wakeups", na)
	}
}

func TestSimulatedHourFinishesQuickly(t *testing.T) {
	start := time.Now()
	log, n := scenario(t, 2, time.Hour, time.Second)
	if n != 3*(3600+3599) { // CPU0 ticks at 1..3600 s, CPU1 at 1.33..3599.33 s
		t.Fatalf("%d wakeups in a simulated hour, want %d", n, 3*(3600+3599))
	}
	// Speed is a benchmark matter; this only logs it (no wall-clock assertion).
	t.Logf("one simulated hour: %d wakeups, %d log bytes, %v real time", n, len(log), time.Since(start))
}

func TestSlogHandlerWritesIntoTheRing(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	h := printk.NewHandler(k.Log(), printk.HandlerOptions{Now: k.Now})
	h.Handle(context.Background(), newRecord("hello"))
	if lines := logText(k); len(lines) != 1 || lines[0] != "hello" {
		t.Fatalf("log %q", lines)
	}
}

func TestRunTaskReturnsTheExitCode(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	code, err := k.RunTask(context.Background(), "insmod", func(c *kernel.Ctx) int { return 42 })
	if err != nil || code != 42 {
		t.Fatalf("RunTask = %d, %v; want 42, nil", code, err)
	}
	_, err = k.RunTask(context.Background(), "stuck", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		kernel.Schedule(c)
		return 0
	})
	if e, _ := kernel.AsErrno(err); e != kernel.EDEADLK {
		t.Fatalf("RunTask of a task nothing can wake: %v, want EDEADLK", err)
	}
}

func TestScheduleDoesNotSleepWithAnAllowedSignalPending(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var states []string
	u, _ := k.Spawn("u", func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c) // SIGUSR1 is pending: must not sleep
		states = append(states, c.Current().State().String())
		return 0
	})
	k.SendSignal(u, kernel.SIGUSR1)
	run(t, k, 0)
	if len(states) != 1 || states[0] != "TASK_RUNNING" {
		t.Fatalf("states %v", states)
	}
}

// TestSignalNumbersRunFromOneToSixtyFour: valid_signal accepts 1.._NSIG
// (64, SIGRTMAX); 0 and 65 are refused.
func TestSignalNumbersRunFromOneToSixtyFour(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var pending []bool
	u, _ := k.CreateTask(kernel.TaskOpts{Comm: "user", CPU: -1}, func(c *kernel.Ctx) int {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		kernel.Schedule(c)
		pending = append(pending, c.SignalPending(), c.FatalSignalPending())
		return 0
	})
	k.WakeUpProcess(u)
	run(t, k, 0)
	for _, sig := range []kernel.Signal{0, 65} {
		if k.SendSignal(u, sig) {
			t.Errorf("signal %d was accepted", sig)
		}
	}
	if !k.SendSignal(u, 64) {
		t.Fatal("signal 64 was refused")
	}
	run(t, k, 0)
	if !slices.Equal(pending, []bool{true, false}) {
		t.Errorf("signal_pending, fatal_signal_pending = %v, want [true false]", pending)
	}
}

// TestContextSwitchesCountSleepsAndYields: every sleep in schedule() is a
// voluntary switch; a yield that lets another task run is an involuntary
// one (virtual time); a busy-wait is neither.
func TestContextSwitchesCountSleepsAndYields(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, HZ: 1000})
	sleeper, _ := k.Spawn("sleeper", func(c *kernel.Ctx) int {
		for range 3 {
			delay.Msleep(c, 1)
		}
		kernel.Spin(c, int64(time.Millisecond))
		kernel.CondResched(c) // nobody else is runnable: no switch
		return 0
	})
	run(t, k, time.Second)
	if v, iv := sleeper.ContextSwitches(); v != 3 || iv != 0 {
		t.Errorf("sleeper: %d voluntary, %d involuntary; want 3, 0", v, iv)
	}

	// Two tasks that yield in turn: each yield hands the CPU over.
	k = boot(t, kernel.Config{CPUs: 1, HZ: 1000})
	yielder := func(c *kernel.Ctx) int {
		for range 3 {
			kernel.CondResched(c)
		}
		return 0
	}
	a, _ := k.Spawn("a", yielder)
	b, _ := k.Spawn("b", yielder)
	run(t, k, time.Millisecond)
	for _, task := range []*kernel.Task{a, b} {
		if v, iv := task.ContextSwitches(); v != 0 || iv != 3 {
			t.Errorf("%s: %d voluntary, %d involuntary; want 0, 3", task.Comm(), v, iv)
		}
	}
}

// TestSignalsToInitAreIgnored: init has no task function; a signal to it
// is ignored (the kernel's SIGNAL_UNKILLABLE), instead of waking a task
// that cannot run (in virtual time the scheduler would hand it the CPU and
// hang). Real time, so that the old behaviour fails instead of hanging.
func TestSignalsToInitAreIgnored(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 1, Quiet: true})
	for _, sig := range []kernel.Signal{kernel.SIGTERM, kernel.SIGKILL, kernel.SIGINT} {
		if k.SendSignal(k.InitTask(), sig) {
			t.Errorf("signal %d to init was delivered", sig)
		}
	}
	if s := k.InitTask().State(); s != kernel.TaskInterruptible {
		t.Fatalf("init is in %v after the signals", s)
	}
}

// TestScheduleNoSpinLosesNoWakeupInRealTime: two real-time tasks hand a
// turn to each other 2,000 times each, sleeping in ScheduleNoSpin (which
// parks at once) until the other wakes them; every wakeup is seen and both
// finish.
func TestScheduleNoSpinLosesNoWakeupInRealTime(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true})
	var tasks [2]*kernel.Task
	fns := ktest.PingPong(k, 2000, kernel.ScheduleNoSpin, &tasks)
	for i := range tasks {
		var err error
		if tasks[i], err = k.CreateTask(kernel.TaskOpts{Comm: "player", CPU: i}, fns[i]); err != nil {
			t.Fatal(err)
		}
	}
	k.WakeUpProcess(tasks[0])
	k.WakeUpProcess(tasks[1])
	for _, tk := range tasks {
		select {
		case <-tk.Exited():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s[%d] is stuck in state %c", tk.Comm(), tk.PID(), tk.State().Letter())
		}
	}
}
