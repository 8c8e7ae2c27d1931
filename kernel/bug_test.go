package kernel_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"
)

func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func TestSleepingInSoftirqReportsBugAtCallerLine(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var line int
	var allowed []bool
	k.OpenSoftirq(kernel.TimerSoftirq, func(c *kernel.Ctx) {
		line = thisLine() + 1
		allowed = append(allowed, kernel.MightSleep(c))
	})
	k.RequestIRQ(1, func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		kernel.RaiseSoftirqIrqoff(c, kernel.TimerSoftirq)
		return kernel.IRQHandled
	}, 0, "tick", nil)
	k.GenerateIRQ(0, 1)
	lines := logText(k)
	if len(lines) < 3 {
		t.Fatalf("log too short: %q", lines)
	}
	if want := fmt.Sprintf("BUG: sleeping function called from invalid context at kernel/bug_test.go:%d", line); lines[0] != want {
		t.Fatalf("first line = %q, want %q", lines[0], want)
	}
	if want := "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 0, name: swapper/0"; lines[1] != want {
		t.Fatalf("second line = %q, want %q", lines[1], want)
	}
	// swapper's PREEMPT_DISABLED plus SOFTIRQ_OFFSET, as real reports show.
	if want := "preempt_count: 101, expected: 0"; lines[2] != want {
		t.Fatalf("third line = %q, want %q", lines[2], want)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "Call Trace:") {
		t.Errorf("no stack in report:\n%s", strings.Join(lines, "\n"))
	}
	if k.Tainted()&kernel.TaintWarn == 0 {
		t.Error("kernel not tainted W after BUG report")
	}
	// The kernel keeps working: another interrupt runs the softirq again
	// (the report itself is rate-limited to once per second).
	k.GenerateIRQ(0, 1)
	if len(allowed) != 2 || allowed[0] || allowed[1] {
		t.Fatalf("MightSleep results = %v, want [false false]", allowed)
	}
	if got := k.Warnings(); got != 1 {
		t.Errorf("Warnings = %d, want 1 (second report within 1s rate-limited)", got)
	}
}

func TestScheduleInAtomicContextReportsAndReturns(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var lock kernel.SpinLock
	done := false
	k.Spawn("atomic", func(c *kernel.Ctx) int {
		lock.Lock(c)
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		kernel.Schedule(c) // BUG: returns without sleeping
		lock.Unlock(c)
		done = true
		return 0
	})
	run(t, k, 0)
	if !done {
		t.Fatal("task did not come back from Schedule in atomic context")
	}
	lines := logText(k)
	if !strings.HasPrefix(lines[0], "BUG: scheduling while atomic: atomic/") || !strings.HasSuffix(lines[0], "/0x00000002") { // the spinlock + schedule's own preempt_disable
		t.Fatalf("first line = %q", lines[0])
	}
}

func TestMutexInSoftirqIsReportedNotDeadlocked(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var m kernel.Mutex
	k.OpenSoftirq(kernel.HISoftirq, func(c *kernel.Ctx) {
		m.Lock(c)
		m.Unlock(c)
	})
	k.Spawn("t", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.HISoftirq)
		kernel.LocalBHEnable(c)
		return 0
	})
	run(t, k, 0)
	if lines := logText(k); len(lines) == 0 || !strings.HasPrefix(lines[0], "BUG: sleeping function called from invalid context at kernel/bug_test.go:") {
		t.Fatalf("log = %q", lines)
	}
}

func TestPanicOnWarnPanicsWithTheReport(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, PanicOnWarn: true})
	defer func() {
		r := recover()
		w, ok := r.(*kernel.Warning)
		if !ok {
			t.Fatalf("recovered %v (%T), want *kernel.Warning", r, r)
		}
		if w.Kind != "BUG" || !strings.Contains(w.Error(), "sleeping function called from invalid context") {
			t.Fatalf("warning = %q", w.Error())
		}
	}()
	k.OpenSoftirq(kernel.HISoftirq, func(c *kernel.Ctx) { kernel.MightSleep(c) })
	k.Spawn("t", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.HISoftirq)
		kernel.LocalBHEnable(c)
		return 0
	})
	run(t, k, 0)
	t.Fatal("Run returned without panicking")
}

func TestWarnPrintsCutHereReport(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	c := k.IdleCtx(0)
	line := thisLine() + 1
	kernel.Warn(c, "something odd: %d\n", 42)
	lines := logText(k)
	want := []string{
		"------------[ cut here ]------------",
		"something odd: 42",
		fmt.Sprintf("WARNING: CPU: 0 PID: 0 at kernel/bug_test.go:%d TestWarnPrintsCutHereReport", line),
		"Modules linked in:",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Fatalf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	if last := lines[len(lines)-1]; last != "---[ end trace 0000000000000000 ]---" {
		t.Errorf("last line = %q", last)
	}
}

func TestPanicInSoftirqHandlerIsAnOopsNotACrash(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	ran := 0
	k.OpenSoftirq(kernel.HISoftirq, func(c *kernel.Ctx) {
		ran++
		if ran == 1 {
			panic(errors.New("boom"))
		}
	})
	k.Spawn("t", func(c *kernel.Ctx) int {
		for i := 0; i < 2; i++ {
			kernel.LocalBHDisable(c)
			kernel.RaiseSoftirq(c, kernel.HISoftirq)
			kernel.LocalBHEnable(c)
		}
		return 0
	})
	run(t, k, 0)
	if ran != 2 {
		t.Fatalf("handler ran %d times, want 2", ran)
	}
	if lines := logText(k); !strings.HasPrefix(lines[0], "Oops: handler panicked: boom") {
		t.Fatalf("log = %q", lines)
	}
}
