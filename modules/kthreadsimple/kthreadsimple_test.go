package kthreadsimple_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/kthreadsimple"
)

const prefix = "kthread_simple:simple_kthread(): "

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true}, kthreadsimple.Info)
}

// load inserts the module, lets its thread go to sleep and returns the
// thread.
func load(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, args ...string) *kernel.Task {
	t.Helper()
	demotest.Insmod(t, k, ld, kthreadsimple.Name, args...)
	demotest.RunFor(t, k, 100*time.Millisecond)
	th := demotest.FindTask(k, kthreadsimple.ThreadComm)
	if th == nil {
		t.Fatalf("no task %s", kthreadsimple.ThreadComm)
	}
	return th
}

// kill sends sig to th from a user task, as kill(1) does, and lets the
// kernel run a little.
func kill(t *testing.T, k *kernel.Kernel, th *kernel.Task, sig kernel.Signal) {
	t.Helper()
	demotest.Run(t, k, "kill", func(c *kernel.Ctx) int { k.SendSignal(th, sig); return 0 })
	demotest.RunFor(t, k, 100*time.Millisecond)
}

func count(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

func TestUnloadStopsTheSleepingThread(t *testing.T) {
	k, ld := boot(t)
	th := load(t, k, ld)
	demotest.RunFor(t, k, time.Second)
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
	golden.Check(t, "testdata/unload.golden", demotest.Dmesg(k, 0))
	if !th.HasExited() || th.ExitCode() != 0 {
		t.Errorf("after rmmod the thread has exited %v with %d, want exited with 0", th.HasExited(), th.ExitCode())
	}
}

// The book's session: kill -9 does nothing, a plain wake-up only sends it
// back to sleep, kill -INT ends it, and rmmod after that is clean.
func TestSigintEndsTheThreadAndUnloadIsStillClean(t *testing.T) {
	k, ld := boot(t)
	th := load(t, k, ld)
	kill(t, k, th, kernel.SIGKILL)
	demotest.Run(t, k, "wake", func(c *kernel.Ctx) int { k.WakeUpProcess(th); return 0 })
	demotest.RunFor(t, k, 100*time.Millisecond)
	kill(t, k, th, kernel.SIGINT)
	if !th.HasExited() {
		t.Fatalf("thread still %c after SIGINT", th.State().Letter())
	}
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
	golden.Check(t, "testdata/sigint.golden", demotest.Dmesg(k, 0))
	if w := k.Warnings(); w != 0 {
		t.Errorf("%d warnings: rmmod after the thread exited is not clean", w)
	}
}

func TestSigquitEndsTheThread(t *testing.T) {
	k, ld := boot(t)
	th := load(t, k, ld)
	seq := k.Log().NextSeq()
	kill(t, k, th, kernel.SIGQUIT)
	want := prefix + "FYI, I, kernel thread PID " + itoa(th.PID()) + ", have been rudely awoken; I shall now exit... Good day Sir!"
	if got := demotest.Lines(k, seq); len(got) != 1 || got[0] != want || !th.HasExited() {
		t.Errorf("after SIGQUIT: exited %v, log %q, want %q", th.HasExited(), got, want)
	}
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
}

func TestPlainWakeupSendsItBackToSleep(t *testing.T) {
	k, ld := boot(t)
	th := load(t, k, ld)
	seq := k.Log().NextSeq()
	for range 3 {
		demotest.Run(t, k, "wake", func(c *kernel.Ctx) int { k.WakeUpProcess(th); return 0 })
		demotest.RunFor(t, k, 10*time.Millisecond)
	}
	sleeping := prefix + "FYI, I, kernel thread PID " + itoa(th.PID()) + ", am going to sleep now..."
	if got := demotest.Lines(k, seq); count(got, sleeping) != 3 || len(got) != 3 {
		t.Errorf("three wake-ups logged %q, want three %q", got, sleeping)
	}
	if th.HasExited() || th.State() != kernel.TaskInterruptible {
		t.Errorf("thread state %c, want S", th.State().Letter())
	}
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
}

func TestSignalsItDidNotAllowAreIgnored(t *testing.T) {
	k, ld := boot(t)
	th := load(t, k, ld)
	seq := k.Log().NextSeq()
	for _, sig := range []kernel.Signal{kernel.SIGKILL, kernel.SIGTERM, kernel.SIGHUP, kernel.SIGUSR1} {
		kill(t, k, th, sig)
	}
	if got := demotest.Lines(k, seq); len(got) != 0 || th.HasExited() || th.State() != kernel.TaskInterruptible {
		t.Errorf("after SIGKILL, SIGTERM, SIGHUP, SIGUSR1: state %c, log %q; want S and nothing", th.State().Letter(), got)
	}
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
}

func TestTheThreadIsAKernelThreadOfKthreadd(t *testing.T) {
	k, ld := boot(t)
	th := load(t, k, ld)
	if !th.IsKthread() || th.Parent() != k.Kthreadd() || th.Comm() != "llkd/kt_simple" {
		t.Errorf("thread %s: kthread %v, parent %v", th, th.IsKthread(), th.Parent())
	}
	line := demotest.Lines(k, 0)[4]
	want := prefix + "00" // CPU
	if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, "[llkd/kt_simple]:"+itoa(th.PID())+"   |  ...0   /* simple_kthread() */") {
		t.Errorf("PRINT_CTX = %q, want the kernel thread in process context", line)
	}
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
}

func TestDebugOffHidesPrintCtx(t *testing.T) {
	k, ld := boot(t)
	load(t, k, ld, "debug=N")
	for _, l := range demotest.Lines(k, 0) {
		if strings.Contains(l, "/* simple_kthread() */") {
			t.Errorf("debug=N logged %q", l)
		}
	}
	demotest.Rmmod(t, k, ld, kthreadsimple.Name)
}

func TestTaskPointersAreStableAndHashed(t *testing.T) {
	k1, ld1 := boot(t)
	k2, ld2 := boot(t)
	load(t, k1, ld1)
	load(t, k2, ld2)
	l1, l2 := demotest.Lines(k1, 0)[2], demotest.Lines(k2, 0)[2]
	if l1 != l2 {
		t.Errorf("same seed, different lines:\n%s\n%s", l1, l2)
	}
	th := demotest.FindTask(k1, kthreadsimple.ThreadComm)
	if h := kthreadsimple.HashedPtr(k1, kthreadsimple.TaskAddr(th)); h>>32 != 0 || h == kthreadsimple.TaskAddr(th) {
		t.Errorf("hashed %#x", h)
	}
	demotest.Rmmod(t, k1, ld1, kthreadsimple.Name)
	demotest.Rmmod(t, k2, ld2, kthreadsimple.Name)
}
