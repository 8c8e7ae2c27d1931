package kernel_test

import (
	"context"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timer"
)

// These tests pin down details of kernel/softirq.c, kernel/irq/,
// kernel/sched/core.c and kernel/panic.c that an audit found kdefer
// getting wrong.

func has(lines []string, prefix string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// TestInterruptsOnTheIdleTaskCountItsDisabledPreemption: the idle task
// runs with PREEMPT_DISABLED, so a hardirq on it sees 0x10001 and the
// softirq run at irq_exit 0x101, as real "preempt_count: 101" reports show.
func TestInterruptsOnTheIdleTaskCountItsDisabledPreemption(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	var hard, soft uint32
	k.OpenSoftirq(kernel.TaskletSoftirq, func(c *kernel.Ctx) { soft = c.PreemptCount() })
	if err := k.RequestIRQ(1, func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn {
		hard = c.PreemptCount()
		kernel.RaiseSoftirqIrqoff(c, kernel.TaskletSoftirq)
		return kernel.IRQHandled
	}, 0, "probe", nil); err != nil {
		t.Fatal(err)
	}
	if err := k.GenerateIRQ(0, 1); err != nil {
		t.Fatal(err)
	}
	if hard != 0x10001 || soft != 0x101 || !k.IdleCtx(0).InAtomic() {
		t.Errorf("hardirq %#x, softirq %#x, idle in_atomic %t; want 0x10001, 0x101, true", hard, soft, k.IdleCtx(0).InAtomic())
	}
}

// TestCondReschedInAtomicContextReports: cond_resched() begins with
// __might_resched.
func TestCondReschedInAtomicContextReports(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	runTaskFn(t, k, func(c *kernel.Ctx) {
		var l kernel.SpinLock
		l.Lock(c)
		kernel.CondResched(c)
		l.Unlock(c)
	})
	if !has(logText(k), "BUG: sleeping function called from invalid context at kernel/audit_test.go:") {
		t.Errorf("no might_resched report:\n%s", strings.Join(logText(k), "\n"))
	}
}

// TestFirstWarningShowsNotTaintedAndWarnLevel: __warn taints only after
// its dump_stack, logs at KERN_WARNING, and dump_stack_print_info prints
// the taint columns and, once tainted, the verbose taint line.
func TestFirstWarningShowsNotTaintedAndWarnLevel(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	runTaskFn(t, k, func(c *kernel.Ctx) {
		kernel.WarnOn(c, true)
		kernel.WarnOn(c, true)
	})
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	var headers []string
	for _, r := range recs {
		if strings.HasPrefix(r.Text, "CPU: ") || strings.HasPrefix(r.Text, "Tainted: ") {
			headers = append(headers, r.Text)
		}
		if strings.HasPrefix(r.Text, "WARNING: CPU:") && r.Level != printk.LevelWarning {
			t.Errorf("%q logged at level %d, want KERN_WARNING", r.Text, r.Level)
		}
	}
	want := []string{
		"CPU: 0 UID: 0 PID: 4 Comm: t Not tainted kdefer-" + kernel.Version,
		"CPU: 0 UID: 0 PID: 4 Comm: t Tainted: G        W           kdefer-" + kernel.Version,
		"Tainted: [W]=WARN",
	}
	if !slices.Equal(headers, want) {
		t.Errorf("stack headers\n%q\nwant\n%q", headers, want)
	}
}

// TestIRQCornerCases: a flags mismatch is logged (genirq), a handler that
// enables interrupts is warned about once, a line without a handler is
// neither counted nor listed, and free_irq of a line that does not exist
// is quiet.
func TestIRQCornerCases(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	h := func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn { return kernel.IRQHandled }
	if err := k.RequestIRQ(5, h, kernel.IRQFShared, "a", 1); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestIRQ(5, h, 0, "b", 2); err == nil {
		t.Fatal("mismatched request_irq succeeded")
	}
	if err := k.RequestIRQ(6, func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn {
		kernel.LocalIRQEnable(c)
		return kernel.IRQHandled
	}, 0, "enabler", nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		k.GenerateIRQ(0, 6)
	}
	k.GenerateIRQ(0, 7) // nobody there
	if name := kernel.FreeIRQ(k.IdleCtx(0), 100000, nil); name != "" {
		t.Errorf("free_irq(100000) = %q", name)
	}
	lines := logText(k)
	if !slices.Contains(lines, "genirq: Flags mismatch irq 5. 00000000 (b) vs. 00000080 (a)") {
		t.Errorf("no flags mismatch line:\n%s", strings.Join(lines, "\n"))
	}
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "irq 6 handler ") && strings.HasSuffix(l, " enabled interrupts") {
			n++
		}
		if strings.Contains(l, "already-free") {
			t.Errorf("free_irq of a missing line warned: %q", l)
		}
	}
	if n != 1 {
		t.Errorf("%d 'enabled interrupts' warnings, want 1:\n%s", n, strings.Join(lines, "\n"))
	}
	for _, l := range k.IRQLines() {
		if l.IRQ == 7 {
			t.Errorf("line 7 without a handler is listed: %+v", l)
		}
	}
}

// TestSoftirqThatDisablesInterruptsIsNotAPreemptLeak: handle_softirqs
// compares preempt counts only.
func TestSoftirqThatDisablesInterruptsIsNotAPreemptLeak(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) { kernel.LocalIRQDisable(c) })
	runTaskFn(t, k, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.NetRXSoftirq)
		kernel.LocalBHEnable(c)
	})
	if has(logText(k), "huh, entered softirq") {
		t.Errorf("bogus preempt leak report:\n%s", strings.Join(logText(k), "\n"))
	}
}

func runTaskFn(t *testing.T, k *kernel.Kernel, fn func(c *kernel.Ctx)) {
	t.Helper()
	ktest.RunAs(t, k, "t", fn)
}

// TestStuckInterruptNobodyCaresIsDisabled: note_interrupt disables a line
// after more than 99,900 of 100,000 interrupts went unhandled, with the
// "nobody cared" report; requesting a handler again re-enables it.
func TestStuckInterruptNobodyCaresIsDisabled(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	calls := 0
	none := func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn { calls++; return kernel.IRQNone }
	if err := k.RequestIRQ(9, none, kernel.IRQFShared, "deaf", 1); err != nil {
		t.Fatal(err)
	}
	for range 100001 {
		k.GenerateIRQ(0, 9)
	}
	lines := logText(k)
	if calls != 100000 || !slices.Contains(lines, `irq 9: nobody cared (try booting with the "irqpoll" option)`) ||
		!slices.Contains(lines, "Disabling IRQ #9") || !slices.Contains(lines, "handlers:") {
		t.Fatalf("%d handler calls (want 100000), log:\n%s", calls, strings.Join(lines, "\n"))
	}
	if err := k.RequestIRQ(9, none, kernel.IRQFShared, "deaf2", 2); err != nil {
		t.Fatal(err)
	}
	k.GenerateIRQ(0, 9)
	if calls != 100002 {
		t.Errorf("after a new request_irq the line ran %d handlers, want both", calls-100000)
	}
}

// TestMostlyHandledInterruptsStayEnabled: occasional unhandled interrupts
// (shared lines, another device's) never trip the detector.
func TestMostlyHandledInterruptsStayEnabled(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	n := 0
	h := func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn {
		n++
		if n%2 == 0 {
			return kernel.IRQNone
		}
		return kernel.IRQHandled
	}
	if err := k.RequestIRQ(10, h, 0, "half", nil); err != nil {
		t.Fatal(err)
	}
	for range 200001 {
		k.GenerateIRQ(0, 10)
	}
	if n != 200001 || has(logText(k), "irq 10: nobody cared") {
		t.Errorf("%d calls; log:\n%s", n, strings.Join(logText(k), "\n"))
	}
}

// TestMisuseIsReportedNotFatal: a bad softirq vector, a task function that
// ends its goroutine with runtime.Goexit, free_irq from the line's own
// handler, and a Run of "forever" neither crash nor wedge the kernel.
func TestMisuseIsReportedNotFatal(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1})
	runTaskFn(t, k, func(c *kernel.Ctx) { kernel.RaiseSoftirq(c, 12) })
	code, err := k.RunTask(context.Background(), "goexit", func(*kernel.Ctx) int { runtime.Goexit(); return 0 })
	if err != nil || code != -int(kernel.EFAULT) {
		t.Errorf("RunTask of a Goexit task = %d, %v; want -EFAULT, nil", code, err)
	}
	if err := k.RequestIRQ(4, func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn {
		kernel.FreeIRQ(c, irq, dev)
		return kernel.IRQHandled
	}, 0, "selffree", "dev"); err != nil {
		t.Fatal(err)
	}
	k.GenerateIRQ(0, 4)
	var fired bool
	runTaskFn(t, k, func(c *kernel.Ctx) {
		var tm timer.Timer
		timer.Setup(c, &tm, func(*kernel.Ctx, *timer.Timer) { fired = true }, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	if err := k.Run(context.Background(), time.Duration(math.MaxInt64)); err != nil {
		t.Fatal(err)
	}
	if !fired {
		t.Error("a timer armed after the misuse never fired")
	}
	lines := logText(k)
	for _, want := range []string{"raise_softirq: bad vector 12", "goexit[", "BUG: sleeping function called from invalid context"} {
		if !has(lines, want) && !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("log lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if got := k.JiffiesToNs(math.MaxUint64 / 2); got != kernel.NoEvent {
		t.Errorf("JiffiesToNs(huge) = %d, want NoEvent", got)
	}
}

// TestMutexLockUnderASpinlockReportsOnceAndSleeps: mutex_lock in atomic
// process context gets the might_sleep and "scheduling while atomic"
// reports, then sleeps as the kernel does, instead of spinning and
// reporting forever.
func TestMutexLockUnderASpinlockReportsOnceAndSleeps(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2})
	var m kernel.Mutex
	var got bool
	owner, err := k.Spawn("owner", func(c *kernel.Ctx) int {
		m.Lock(c)
		kernel.Spin(c, 0)
		kernel.SetCurrentState(c, kernel.TaskUninterruptible)
		kernel.Schedule(c) // woken below
		m.Unlock(c)
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, k, time.Millisecond)
	waiter, err := k.Spawn("waiter", func(c *kernel.Ctx) int {
		var l kernel.SpinLock
		l.Lock(c)
		m.Lock(c)
		got = true
		m.Unlock(c)
		l.Unlock(c)
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, k, time.Millisecond)
	k.WakeUpProcess(owner)
	run(t, k, time.Millisecond)
	<-waiter.Exited()
	n := 0
	for _, l := range logText(k) {
		if strings.HasPrefix(l, "BUG: scheduling while atomic") {
			n++
		}
	}
	if !got || n != 1 {
		t.Errorf("lock taken %t, %d 'scheduling while atomic' reports; want true, 1", got, n)
	}
}
