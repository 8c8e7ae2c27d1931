package kthread_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
)

// freezableLoop is a freezable thread's loop: it counts its rounds and its
// trips to the refrigerator.
func freezableLoop(rounds, thaws *int) kthread.Func {
	return func(c *kernel.Ctx) int {
		kthread.SetFreezable(c)
		for !kthread.ShouldStop(c) {
			if kthread.TryToFreeze(c) {
				*thaws++
			}
			*rounds++
			delay.MsleepInterruptible(c, 10)
		}
		return 0
	}
}

// TestFreezeAndThawOfKernelThreads: freeze_kernel_threads puts every
// freezable thread in the refrigerator (TASK_FROZEN, ps D) and leaves the
// others alone; thaw_kernel_threads lets them go on.
func TestFreezeAndThawOfKernelThreads(t *testing.T) {
	k := boot(t)
	var fRounds, fThaws, nRounds, nThaws int
	var ret int
	var fz, nf *kernel.Task
	do(t, k, func(c *kernel.Ctx) {
		fz, _ = kthread.Run(c, freezableLoop(&fRounds, &fThaws), "freezable")
		nf, _ = kthread.Run(c, func(c *kernel.Ctx) int {
			for !kthread.ShouldStop(c) {
				if kthread.TryToFreeze(c) {
					nThaws++
				}
				nRounds++
				delay.MsleepInterruptible(c, 10)
			}
			return 0
		}, "nofreeze")
		delay.Msleep(c, 25)
		ret = kthread.FreezeKernelThreads(c)
		if s := fz.State(); s != kernel.TaskFrozen || s.Letter() != 'D' {
			t.Errorf("freezable thread in %v (%c), want TASK_FROZEN (D)", s, s.Letter())
		}
		if nf.State() == kernel.TaskFrozen {
			t.Error("a thread that did not call set_freezable froze")
		}
		fBefore, nBefore := fRounds, nRounds
		delay.Msleep(c, 100)
		if fRounds != fBefore || nRounds == nBefore {
			t.Errorf("while frozen: the freezable thread ran %d rounds, the other %d; want 0 and some", fRounds-fBefore, nRounds-nBefore)
		}
		kthread.ThawKernelThreads(c)
		delay.Msleep(c, 25)
		if fRounds == fBefore || fThaws != 1 || nThaws != 0 {
			t.Errorf("after the thaw: %d more rounds, %d thaws of the freezable thread, %d of the other; want some, 1, 0",
				fRounds-fBefore, fThaws, nThaws)
		}
		kthread.Stop(c, fz)
		kthread.Stop(c, nf)
	})
	if ret != 0 {
		t.Fatalf("freeze_kernel_threads = %d, want 0", ret)
	}
	log := ktest.Text(k)
	for _, want := range []string{
		"Freezing remaining freezable tasks\n",
		"Freezing remaining freezable tasks completed (elapsed 0.0",
		"Restarting kernel threads ... done.\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestFreezeFailsWithEBUSYAfterTheTimeoutAndThawsTheOthers: a freezable
// thread that never calls try_to_freeze makes freeze_kernel_threads give up
// after 20 s, name it, and thaw the threads that did freeze.
func TestFreezeFailsWithEBUSYAfterTheTimeoutAndThawsTheOthers(t *testing.T) {
	k := boot(t)
	var rounds, thaws int
	var ret int
	var start, end uint64
	do(t, k, func(c *kernel.Ctx) {
		good, _ := kthread.Run(c, freezableLoop(&rounds, &thaws), "good")
		bad, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			kthread.SetFreezable(c)
			for !kthread.ShouldStop(c) {
				delay.MsleepInterruptible(c, 10)
			}
			return 0
		}, "stubborn")
		delay.Msleep(c, 5)
		start = c.Jiffies()
		ret = kthread.FreezeKernelThreads(c)
		end = c.Jiffies()
		delay.Msleep(c, 25)
		if good.State() == kernel.TaskFrozen || thaws != 1 {
			t.Errorf("the thread that froze is in %v after %d thaws; want thawed once", good.State(), thaws)
		}
		kthread.Stop(c, good)
		kthread.Stop(c, bad)
	})
	if ret != ebusy {
		t.Fatalf("freeze_kernel_threads = %d, want %d (-EBUSY)", ret, ebusy)
	}
	if d := end - start; d < 20000 || d > 20100 {
		t.Errorf("gave up after %d jiffies, want about 20000 (20 s at HZ=1000)", d)
	}
	log := ktest.Text(k)
	for _, want := range []string{
		"Freezing remaining freezable tasks failed after 20.0",
		"(1 tasks refusing to freeze, wq_busy=0):",
		"task:stubborn        state:",
		"Restarting kernel threads ... done.",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestFreezableShouldStopLeavesTheRefrigeratorOnStop: the freezer and
// kthread_stop cannot deadlock with kthread_freezable_should_stop.
func TestFreezableShouldStopLeavesTheRefrigeratorOnStop(t *testing.T) {
	k := boot(t)
	var wasFrozen bool
	ret := -1
	do(t, k, func(c *kernel.Ctx) {
		kt, _ := kthread.Run(c, func(c *kernel.Ctx) int {
			kthread.SetFreezable(c)
			for {
				stop, frozen := kthread.FreezableShouldStop(c)
				wasFrozen = wasFrozen || frozen
				if stop {
					return 9
				}
				delay.MsleepInterruptible(c, 10)
			}
		}, "fstop")
		delay.Msleep(c, 5)
		if r := kthread.FreezeKernelThreads(c); r != 0 {
			t.Errorf("freeze_kernel_threads = %d", r)
		}
		// The frozen thread is not woken by kthread_stop's
		// wake_up_process; thaw it from another task meanwhile.
		thawer, _ := k.Spawn("thawer", func(c *kernel.Ctx) int {
			delay.Msleep(c, 50)
			kthread.ThawKernelThreads(c)
			return 0
		})
		ret = kthread.Stop(c, kt)
		kernel.WaitTaskExit(c, thawer)
	})
	if ret != 9 || !wasFrozen {
		t.Fatalf("kthread_stop = %d, was frozen %t; want 9, true", ret, wasFrozen)
	}
}

// TestFreezeWakesAnIdleFreezableWorkerSoThatItFreezes: an idle
// KTW_FREEZABLE worker sleeps with no timeout; freeze_task's wake-up is
// what brings it to try_to_freeze.
func TestFreezeWakesAnIdleFreezableWorkerSoThatItFreezes(t *testing.T) {
	k := boot(t)
	ret := -1
	var log []string
	do(t, k, func(c *kernel.Ctx) {
		w, err := kthread.RunWorker(c, kthread.KTWFreezable, "fworker")
		if err != nil {
			t.Fatalf("RunWorker: %v", err)
		}
		delay.Msleep(c, 5)
		ret = kthread.FreezeKernelThreads(c)
		if s := w.Task().State(); s != kernel.TaskFrozen {
			t.Errorf("the idle freezable worker is in %v, want TASK_FROZEN", s)
		}
		it := newItem("while-frozen", &log)
		kthread.QueueWork(c, w, &it.work)
		delay.Msleep(c, 50)
		if len(log) != 0 {
			t.Errorf("a frozen worker ran %v", log)
		}
		kthread.ThawKernelThreads(c)
		kthread.FlushWorker(c, w)
		kthread.DestroyWorker(c, w)
	})
	if ret != 0 || fmt.Sprint(log) != "[while-frozen]" {
		t.Fatalf("freeze_kernel_threads = %d, ran %v; want 0, [while-frozen] after the thaw", ret, log)
	}
}
