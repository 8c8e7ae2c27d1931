package lab6kthread_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/lab6kthread"
)

func boot(t *testing.T, cfg kernel.Config) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, cfg, lab6kthread.Info)
}

func TestLoadUnloadLogMatchesGolden(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	demotest.Insmod(t, k, ld, lab6kthread.Name)
	demotest.RunFor(t, k, time.Second)
	demotest.Rmmod(t, k, ld, lab6kthread.Name)
	golden.Check(t, "testdata/load_unload.golden", demotest.Dmesg(k, 0))
}

func TestTheThreadPrintsItsPidAndWaitsInS(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	demotest.Insmod(t, k, ld, lab6kthread.Name)
	demotest.RunFor(t, k, 5*time.Second)
	th := demotest.FindTask(k, lab6kthread.ThreadComm)
	if th == nil || !th.IsKthread() || th.Parent() != k.Kthreadd() {
		t.Fatalf("no kernel thread %s: %v", lab6kthread.ThreadComm, th)
	}
	if th.State() != kernel.TaskInterruptible {
		t.Errorf("thread state %c, want S (wait_event_interruptible)", th.State().Letter())
	}
	want := fmt.Sprintf("[my_thread_f] Current process id is %d (mykthread0)", th.PID())
	if !demotest.Has(demotest.Lines(k, 0), want) {
		t.Errorf("log lacks %q", want)
	}
	// Signals do not end the wait: a kernel thread ignores them.
	demotest.Run(t, k, "kill", func(c *kernel.Ctx) int { k.SendSignal(th, kernel.SIGKILL); return 0 })
	demotest.RunFor(t, k, time.Second)
	if th.HasExited() {
		t.Errorf("SIGKILL ended the thread")
	}
	demotest.Rmmod(t, k, ld, lab6kthread.Name)
}

func TestUnloadWaitsForTheThread(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	demotest.Insmod(t, k, ld, lab6kthread.Name)
	demotest.RunFor(t, k, time.Second)
	th := demotest.FindTask(k, lab6kthread.ThreadComm)
	demotest.Rmmod(t, k, ld, lab6kthread.Name)
	if !th.HasExited() || th.ExitCode() != 0 {
		t.Errorf("rmmod returned before the thread exited (exited %v, code %d)", th.HasExited(), th.ExitCode())
	}
	lines := demotest.Lines(k, 0)
	i, j := demotest.Index(lines, 0, "[my_thread_f] Exiting"), demotest.Index(lines, 0, "[kthread_exit] Exit module")
	if i < 0 || j < 0 {
		t.Errorf("log %q lacks the exit lines", lines)
	}
}

// In real time the two last lines may come in either order (the lab's own
// window); both must come, and rmmod must wait for the thread's flag.
func TestRealTimeUnloadIsRaceFree(t *testing.T) {
	for range 20 {
		k, ld := boot(t, kernel.Config{CPUs: 2, Quiet: true})
		demotest.Insmod(t, k, ld, lab6kthread.Name)
		demotest.Rmmod(t, k, ld, lab6kthread.Name)
		got := strings.Join(demotest.Lines(k, 0), "\n")
		if !strings.Contains(got, "[kthread_exit] Exit module") {
			t.Fatalf("log:\n%s", got)
		}
		demotest.Shutdown(t, k)
		if !strings.Contains(strings.Join(demotest.Lines(k, 0), "\n"), "[my_thread_f] Exiting") {
			t.Fatalf("thread did not log its exit")
		}
	}
}

func TestTwoKernelsHaveTheirOwnFlags(t *testing.T) {
	k1, ld1 := boot(t, kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	k2, ld2 := boot(t, kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	demotest.Insmod(t, k1, ld1, lab6kthread.Name)
	demotest.Insmod(t, k2, ld2, lab6kthread.Name)
	demotest.Rmmod(t, k1, ld1, lab6kthread.Name)
	demotest.RunFor(t, k2, time.Second)
	if th := demotest.FindTask(k2, lab6kthread.ThreadComm); th == nil {
		t.Errorf("unloading in kernel 1 ended kernel 2's thread")
	}
	demotest.Rmmod(t, k2, ld2, lab6kthread.Name)
}
