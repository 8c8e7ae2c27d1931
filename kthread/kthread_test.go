package kthread_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
)

// TestCreatedThreadNeverRunsItsFunctionWithoutAWakeUp: kthread_create
// leaves the thread sleeping in TASK_UNINTERRUPTIBLE, a child of kthreadd,
// however long the kernel runs.
func TestCreatedThreadNeverRunsItsFunctionWithoutAWakeUp(t *testing.T) {
	k := boot(t)
	ran := false
	var kt *kernel.Task
	do(t, k, func(c *kernel.Ctx) {
		var err error
		kt, err = kthread.Create(c, func(*kernel.Ctx) int { ran = true; return 0 }, "kt%d", 1)
		if err != nil {
			t.Errorf("Create: %v", err)
		}
	})
	ktest.Run(t, k, 10*time.Second)
	if ran {
		t.Fatal("the thread function ran without a wake-up")
	}
	if s := kt.State(); s != kernel.TaskUninterruptible || s.Letter() != 'D' {
		t.Errorf("state %v (%c), want TASK_UNINTERRUPTIBLE (D)", s, s.Letter())
	}
	if !kt.IsKthread() || kt.Parent() == nil || kt.Parent().PID() != 2 || kt.Parent().Comm() != "kthreadd" {
		t.Errorf("kthread %t, parent %v; want a kernel thread child of kthreadd (pid 2)", kt.IsKthread(), kt.Parent())
	}
	if k.FindTask(kt.PID()) != kt {
		t.Errorf("FindTask(%d) does not find the thread", kt.PID())
	}
}

// TestStopBeforeTheFirstWakeUpReturnsEINTRWithoutRunningTheFunction: the
// kernel's kthread() checks KTHREAD_SHOULD_STOP when first woken.
func TestStopBeforeTheFirstWakeUpReturnsEINTRWithoutRunningTheFunction(t *testing.T) {
	k := boot(t)
	ran := false
	ret := 0
	do(t, k, func(c *kernel.Ctx) {
		kt, err := kthread.Create(c, func(*kernel.Ctx) int { ran = true; return 0 }, "never")
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		ret = kthread.Stop(c, kt)
	})
	if ret != eintr || ran {
		t.Fatalf("kthread_stop = %d, function ran %t; want %d (-EINTR), false", ret, ran, eintr)
	}
}

// TestStopReturnsTheThreadFunctionsValue: kthread_stop sets should-stop,
// wakes the thread and passes on what the function returned.
func TestStopReturnsTheThreadFunctionsValue(t *testing.T) {
	k := boot(t)
	ret := 0
	var sawStop bool
	do(t, k, func(c *kernel.Ctx) {
		kt, err := kthread.Run(c, func(c *kernel.Ctx) int {
			sleeper(0)(c)
			sawStop = kthread.ShouldStop(c) && c.SignalPending()
			return 42
		}, "worker/%s", "a")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		delay.Msleep(c, 50)
		ret = kthread.Stop(c, kt)
	})
	if ret != 42 || !sawStop {
		t.Fatalf("kthread_stop = %d, thread saw should_stop+signal_pending %t; want 42, true", ret, sawStop)
	}
}

// TestStopWaitsInTheKernelInUninterruptibleSleep: the stopper is in D
// while the thread takes its time to finish.
func TestStopWaitsInTheKernelInUninterruptibleSleep(t *testing.T) {
	k := boot(t)
	var stopper *kernel.Task
	var during kernel.TaskState
	do(t, k, func(c *kernel.Ctx) {
		stopper = c.Current()
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			sleeper(0)(c)
			delay.Msleep(c, 100) // slow to exit
			during = stopper.State()
			return 7
		}, "slow")
		delay.Msleep(c, 10)
		if r := kthread.Stop(c, kt); r != 7 {
			t.Errorf("kthread_stop = %d, want 7", r)
		}
	})
	if during != kernel.TaskUninterruptible {
		t.Fatalf("the stopper was in %v while waiting, want TASK_UNINTERRUPTIBLE", during)
	}
}

// TestNamesAreFormattedAndTruncatedToFifteenBytes: TASK_COMM_LEN is 16.
func TestNamesAreFormattedAndTruncatedToFifteenBytes(t *testing.T) {
	k := boot(t)
	do(t, k, func(c *kernel.Ctx) {
		for _, tc := range []struct {
			format string
			args   []any
			comm   string
		}{
			{"llkd/%s", []any{"kt_simple"}, "llkd/kt_simple"},
			{"%skthread%d", []any{"my", 0}, "mykthread0"},
			{"%s/%s", []any{"sed2_drv", "worker"}, "sed2_drv/worker"}, // exactly 15
			{"%s/%s", []any{"sed2_driver", "worker"}, "sed2_driver/wor"},
		} {
			kt, err := kthread.Create(c, sleeper(0), tc.format, tc.args...)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			full := kthread.FullName(kt)
			if kt.Comm() != tc.comm || len(kt.Comm()) > 15 || !strings.HasPrefix(full, kt.Comm()) {
				t.Errorf("Create(%q, %v): comm %q, full name %q; want comm %q", tc.format, tc.args, kt.Comm(), full, tc.comm)
			}
			kthread.Stop(c, kt)
		}
	})
}

// TestCreateOnCPUNamesTheThreadAfterTheCPUAndBindsIt.
func TestCreateOnCPUNamesTheThreadAfterTheCPUAndBindsIt(t *testing.T) {
	k := boot(t)
	cpus := map[int]int{}
	do(t, k, func(c *kernel.Ctx) {
		for cpu := range 2 {
			kt, err := kthread.CreateOnCPU(c, func(c *kernel.Ctx) int {
				cpus[cpu] = c.CPU()
				return 0
			}, cpu, "percpu/%d")
			if err != nil {
				t.Fatalf("CreateOnCPU: %v", err)
			}
			if want := "percpu/" + string(rune('0'+cpu)); kt.Comm() != want || kt.CPU() != cpu {
				t.Errorf("comm %q on CPU %d, want %q on CPU %d", kt.Comm(), kt.CPU(), want, cpu)
			}
			k.WakeUpProcess(kt)
		}
	})
	idle(t, k)
	if cpus[0] != 0 || cpus[1] != 1 || k.Warnings() != 0 {
		t.Fatalf("threads ran on CPUs %v with %d warnings, want 0→0, 1→1, none", cpus, k.Warnings())
	}
}

// TestBindAfterTheFirstWakeUpWarnsAndChangesNothing: kthread_bind needs a
// thread that is still sleeping since its creation.
func TestBindAfterTheFirstWakeUpWarnsAndChangesNothing(t *testing.T) {
	k := boot(t)
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Create(c, sleeper(0), "bindme")
		kthread.Bind(c, kt, 1) // fine: not woken yet
		if kt.CPU() != 1 || k.Warnings() != 0 {
			t.Errorf("before the wake-up: CPU %d, %d warnings; want 1, 0", kt.CPU(), k.Warnings())
		}
		k.WakeUpProcess(kt)
		delay.Msleep(c, 1)
		kthread.Bind(c, kt, 0)
		if kt.CPU() != 1 || k.Warnings() != 1 {
			t.Errorf("after the wake-up: CPU %d, %d warnings; want 1 (unchanged), 1", kt.CPU(), k.Warnings())
		}
		kthread.Stop(c, kt)
	})
	if !ktest.Contains(k, "WARNING: CPU:") {
		t.Fatalf("no WARN report in the log:\n%s", ktest.Text(k))
	}
}

// TestParkAndUnparkReturnValues: kthread_park returns 0 once the thread is
// parked (TASK_PARKED, ps P), -EBUSY when it is already parked, -ENOSYS
// once it exited; kthread_unpark lets it go on.
func TestParkAndUnparkReturnValues(t *testing.T) {
	k := boot(t)
	var loops, parks int
	var first, again, afterExit int
	var parkedState kernel.TaskState
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			for !kthread.ShouldStop(c) {
				if kthread.ShouldPark(c) {
					parks++
					kthread.Parkme(c)
					continue
				}
				loops++
				delay.MsleepInterruptible(c, 10)
			}
			return 0
		}, "parkable")
		delay.Msleep(c, 25)
		first = kthread.Park(c, kt)
		parkedState = kt.State()
		before := loops
		delay.Msleep(c, 100) // parked: it does not loop
		if loops != before {
			t.Errorf("the parked thread looped %d times", loops-before)
		}
		again = kthread.Park(c, kt)
		kthread.Unpark(c, kt)
		delay.Msleep(c, 25)
		if loops == before {
			t.Error("the unparked thread did not run again")
		}
		kthread.GetTaskStruct(kt)
		kthread.Stop(c, kt)
		afterExit = kthread.Park(c, kt)
		kthread.PutTaskStruct(c, kt)
	})
	if first != 0 || parkedState != kernel.TaskParked || parkedState.Letter() != 'P' || parks != 1 {
		t.Errorf("kthread_park = %d, state %v (%c), parked %d times; want 0, TASK_PARKED (P), 1",
			first, parkedState, parkedState.Letter(), parks)
	}
	if again != ebusy || afterExit != enosys {
		t.Errorf("park of a parked thread = %d, of an exited one = %d; want %d (-EBUSY), %d (-ENOSYS)", again, afterExit, ebusy, enosys)
	}
	if k.Warnings() != 2 {
		t.Errorf("%d warnings, want 2 (WARN_ON_ONCE for -EBUSY, WARN_ON for -ENOSYS)", k.Warnings())
	}
}

// TestParkBeforeTheFirstWakeUpParksBeforeTheFunctionRuns: "This can also
// be called after kthread_create() instead of calling wake_up_process()".
func TestParkBeforeTheFirstWakeUpParksBeforeTheFunctionRuns(t *testing.T) {
	k := boot(t)
	ran := false
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Create(c, func(*kernel.Ctx) int { ran = true; return 5 }, "prepark")
		if r := kthread.Park(c, kt); r != 0 {
			t.Errorf("kthread_park = %d, want 0", r)
		}
		delay.Msleep(c, 10)
		if ran || kt.State() != kernel.TaskParked {
			t.Errorf("ran %t, state %v; want false, TASK_PARKED", ran, kt.State())
		}
		kthread.Unpark(c, kt)
		delay.Msleep(c, 10)
		if !ran {
			t.Error("the function did not run after kthread_unpark")
		}
	})
}

// TestSelfParkOnlySetsTheFlag: called by the thread on itself,
// kthread_park returns 0 at once; the thread parks in its kthread_parkme.
func TestSelfParkOnlySetsTheFlag(t *testing.T) {
	k := boot(t)
	var r int
	var should bool
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			r = kthread.Park(c, c.Current())
			should = kthread.ShouldPark(c)
			kthread.Parkme(c)
			return 0
		}, "selfpark")
		delay.Msleep(c, 10)
		if kt.State() != kernel.TaskParked {
			t.Errorf("state %v, want TASK_PARKED", kt.State())
		}
		kthread.Stop(c, kt)
	})
	if r != 0 || !should {
		t.Fatalf("self park = %d, should_park %t; want 0, true", r, should)
	}
}

// TestStopUnparksAParkedThread: kthread_stop calls kthread_unpark first.
func TestStopUnparksAParkedThread(t *testing.T) {
	k := boot(t)
	ret := -1
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			for !kthread.ShouldStop(c) {
				if kthread.ShouldPark(c) {
					kthread.Parkme(c)
					continue
				}
				delay.MsleepInterruptible(c, 10)
			}
			return 3
		}, "parked")
		kthread.Park(c, kt)
		ret = kthread.Stop(c, kt)
	})
	if ret != 3 {
		t.Fatalf("kthread_stop of a parked thread = %d, want 3", ret)
	}
}

// TestParkedThreadIgnoresSignalsAndPlainWakeUps: TASK_PARKED is woken by
// kthread_unpark only.
func TestParkedThreadIgnoresSignalsAndPlainWakeUps(t *testing.T) {
	k := boot(t)
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			kernel.AllowSignal(c, kernel.SIGINT)
			for !kthread.ShouldStop(c) {
				kthread.Parkme(c)
				delay.MsleepInterruptible(c, 10)
			}
			return 0
		}, "parked")
		delay.Msleep(c, 5)
		kthread.Park(c, kt)
		k.SendSignal(kt, kernel.SIGINT)
		if w := k.WakeUpProcess(kt); w != 0 {
			t.Errorf("wake_up_process of a parked thread = %d, want 0", w)
		}
		delay.Msleep(c, 5)
		if kt.State() != kernel.TaskParked {
			t.Errorf("state %v after a signal and a wake-up, want TASK_PARKED", kt.State())
		}
		kthread.Stop(c, kt)
	})
}

// TestSignalsAreIgnoredUnlessAllowed: kernel threads ignore every signal
// (kthreadd's ignore_signals) until allow_signal; delivery is by pid.
func TestSignalsAreIgnoredUnlessAllowed(t *testing.T) {
	k := boot(t)
	allowed := false
	wokeBy := kernel.Signal(0)
	var kt *kernel.Task
	do(t, k, func(c *kernel.Ctx) {
		kt, _ = kthread.Run(c, func(c *kernel.Ctx) int {
			for !allowed {
				delay.MsleepInterruptible(c, 10)
			}
			kernel.AllowSignal(c, kernel.SIGINT)
			kernel.AllowSignal(c, kernel.SIGQUIT)
			for !kthread.ShouldStop(c) {
				kernel.SetCurrentState(c, kernel.TaskInterruptible)
				kernel.Schedule(c)
				if c.SignalPending() {
					var se *kernel.SignalError
					if errors.As(context.Cause(c), &se) {
						wokeBy = se.Sig
					}
					break
				}
			}
			return 0
		}, "sigtest")
	})
	ktest.Run(t, k, 20*time.Millisecond)
	p := k.FindTask(kt.PID())
	if p != kt {
		t.Fatalf("FindTask(%d) = %v", kt.PID(), p)
	}
	if k.SendSignal(p, kernel.SIGINT) || k.SendSignal(p, kernel.SIGKILL) {
		t.Fatal("a kernel thread accepted a signal it did not allow")
	}
	allowed = true
	ktest.Run(t, k, 20*time.Millisecond)
	if k.SendSignal(p, kernel.SIGKILL) {
		t.Error("SIGKILL was delivered though only SIGINT and SIGQUIT were allowed")
	}
	ktest.Run(t, k, 20*time.Millisecond)
	if kt.HasExited() {
		t.Fatal("the thread exited on an ignored signal")
	}
	if !k.SendSignal(p, kernel.SIGQUIT) {
		t.Fatal("an allowed signal was not delivered")
	}
	idle(t, k)
	if !kt.HasExited() || wokeBy != kernel.SIGQUIT {
		t.Fatalf("exited %t, woken by signal %d; want true, %d", kt.HasExited(), wokeBy, kernel.SIGQUIT)
	}
}

// TestFatalSignalPendingMakesCreateFailWithEINTR: the creator's killable
// wait for kthreadd ends with -EINTR.
func TestFatalSignalPendingMakesCreateFailWithEINTR(t *testing.T) {
	k := boot(t)
	var err error
	do(t, k, func(c *kernel.Ctx) {
		k.SendSignal(c.Current(), kernel.SIGKILL)
		_, err = kthread.Create(c, sleeper(0), "doomed")
	})
	if !errors.Is(err, kernel.EINTR) {
		t.Fatalf("Create with SIGKILL pending: %v, want an error wrapping EINTR", err)
	}
}

// TestStopOfAThreadThatReturnedOnItsOwnIsSafeWithAReference: the
// get_task_struct / kthread_stop_put pairing the kernel documents.
func TestStopOfAThreadThatReturnedOnItsOwnIsSafeWithAReference(t *testing.T) {
	k := boot(t)
	ret := 0
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Create(c, func(*kernel.Ctx) int { return 11 }, "quick")
		kthread.GetTaskStruct(kt)
		k.WakeUpProcess(kt)
		delay.Msleep(c, 10)
		if !kt.HasExited() || k.FindTask(kt.PID()) != nil {
			t.Errorf("the thread has not exited and been reaped")
		}
		ret = kthread.StopPut(c, kt)
	})
	if ret != 11 || k.Warnings() != 0 {
		t.Fatalf("kthread_stop_put = %d with %d warnings, want 11 and none:\n%s", ret, k.Warnings(), ktest.Text(k))
	}
}

// TestStopOfAReapedThreadWithoutAReferenceIsReportedAsUseAfterFree: the
// kernel's refcount code catches get_task_struct on a freed task.
func TestStopOfAReapedThreadWithoutAReferenceIsReportedAsUseAfterFree(t *testing.T) {
	k := boot(t)
	ret := 0
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(*kernel.Ctx) int { return 12 }, "gone")
		delay.Msleep(c, 10)
		ret = kthread.Stop(c, kt)
	})
	if ret != 12 || !ktest.Contains(k, "refcount_t: addition on 0; use-after-free.") {
		t.Fatalf("kthread_stop = %d; want 12 and the refcount report in:\n%s", ret, ktest.Text(k))
	}
}

// TestStopOfItselfIsReportedInsteadOfHanging.
func TestStopOfItselfIsReportedInsteadOfHanging(t *testing.T) {
	k := boot(t)
	ret := 0
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			ret = kthread.Stop(c, c.Current())
			return 0
		}, "suicidal")
		delay.Msleep(c, 10)
		if !kt.HasExited() {
			t.Error("the thread did not go on after stopping itself")
		}
	})
	if ret != -int(kernel.EDEADLK) || k.Warnings() != 1 {
		t.Fatalf("kthread_stop(current) = %d with %d warnings, want %d and 1", ret, k.Warnings(), -int(kernel.EDEADLK))
	}
}

// TestStopFiresTheSchedKthreadStopTracepoints.
func TestStopFiresTheSchedKthreadStopTracepoints(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, Quiet: true, TraceEvents: "sched_kthread_stop,sched_kthread_stop_ret"})
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, sleeper(-5), "traced")
		delay.Msleep(c, 1)
		kthread.Stop(c, kt)
	})
	var b strings.Builder
	if err := k.Tracer().Report(&b); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{"sched_kthread_stop: comm=traced pid=", "sched_kthread_stop_ret: ret=-5"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace report lacks %q:\n%s", want, out)
		}
	}
}
