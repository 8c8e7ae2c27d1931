package kernel_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kdefer/kdefer/kernel"
)

func TestSoftirqsRunLowestVectorFirst(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var order []string
	for _, nr := range []int{kernel.HISoftirq, kernel.TimerSoftirq, kernel.TaskletSoftirq, kernel.HRTimerSoftirq, kernel.RCUSoftirq} {
		k.OpenSoftirq(nr, func(c *kernel.Ctx) { order = append(order, kernel.SoftirqName(nr)) })
	}
	k.Spawn("raiser", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		for _, nr := range []int{kernel.RCUSoftirq, kernel.TaskletSoftirq, kernel.HISoftirq, kernel.HRTimerSoftirq, kernel.TimerSoftirq} {
			kernel.RaiseSoftirq(c, nr)
		}
		kernel.LocalBHEnable(c)
		return 0
	})
	run(t, k, 0)
	want := []string{"HI", "TIMER", "TASKLET", "HRTIMER", "RCU"}
	if !slices.Equal(order, want) {
		t.Fatalf("softirq order = %v, want %v", order, want)
	}
}

func TestSoftirqNamesAreTheKernels(t *testing.T) {
	want := []string{"HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU"}
	for nr, name := range want {
		if got := kernel.SoftirqName(nr); got != name {
			t.Errorf("SoftirqName(%d) = %q, want %q", nr, got, name)
		}
	}
	if kernel.NRSoftirqs != len(want) {
		t.Errorf("NRSoftirqs = %d, want %d", kernel.NRSoftirqs, len(want))
	}
}

func TestSoftirqRestartLimitHandsWorkToKsoftirqd(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	const total = 25
	var runners []string
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {
		runners = append(runners, c.Current().Comm())
		if len(runners) < total {
			kernel.RaiseSoftirq(c, kernel.NetRXSoftirq) // keeps re-raising itself
		}
	})
	k.Spawn("raiser", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.NetRXSoftirq)
		kernel.LocalBHEnable(c)
		return 0
	})
	run(t, k, 0)
	if len(runners) != total {
		t.Fatalf("handler ran %d times, want %d", len(runners), total)
	}
	for i, r := range runners {
		want := "ksoftirqd/0"
		if i < kernel.MaxSoftirqRestart {
			want = "raiser"
		}
		if r != want {
			t.Fatalf("run %d by %q, want %q (runs: %v)", i, r, want, runners)
		}
	}
	if got := k.SoftirqCount(kernel.NetRXSoftirq, 0); got != total {
		t.Errorf("kstat NET_RX = %d, want %d", got, total)
	}
}

func TestBHDisableNestingDefersPendingSoftirqs(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	var events []string
	k.OpenSoftirq(kernel.TaskletSoftirq, func(c *kernel.Ctx) {
		events = append(events, fmt.Sprintf("softirq by %s serving=%v task=%v", c.Current().Comm(), c.InServingSoftirq(), c.InTask()))
	})
	k.Spawn("nester", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.LocalBHDisable(c)
		events = append(events, fmt.Sprintf("count=%#x in_softirq=%v in_task=%v", c.PreemptCount(), c.InSoftirq(), c.InTask()))
		kernel.RaiseSoftirq(c, kernel.TaskletSoftirq)
		kernel.LocalBHEnable(c)
		events = append(events, "inner enable")
		kernel.LocalBHEnable(c)
		events = append(events, "outer enable")
		return 0
	})
	run(t, k, 0)
	want := []string{
		"count=0x400 in_softirq=true in_task=true",
		"inner enable",
		"softirq by nester serving=true task=false",
		"outer enable",
	}
	if !slices.Equal(events, want) {
		t.Fatalf("events:\n%q\nwant\n%q", events, want)
	}
}

func TestRaiseFromTaskContextWakesKsoftirqd(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, Quiet: true})
	var by string
	k.OpenSoftirq(kernel.BlockSoftirq, func(c *kernel.Ctx) { by = fmt.Sprintf("%s cpu%d", c.Current().Comm(), c.CPU()) })
	tk, _ := k.CreateTask(kernel.TaskOpts{Comm: "raiser", CPU: 1}, func(c *kernel.Ctx) int {
		kernel.RaiseSoftirq(c, kernel.BlockSoftirq)
		return 0
	})
	k.WakeUpProcess(tk)
	run(t, k, 0)
	if by != "ksoftirqd/1 cpu1" {
		t.Fatalf("softirq ran as %q, want ksoftirqd/1 cpu1", by)
	}
}

func TestHardirqExitRunsRaisedSoftirqInOrder(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, Quiet: true})
	var events []string
	k.OpenSoftirq(kernel.TaskletSoftirq, func(c *kernel.Ctx) {
		events = append(events, fmt.Sprintf("softirq cpu%d %s/%d hardirq=%v serving=%v", c.CPU(), c.Current().Comm(), c.Current().PID(), c.InHardirq(), c.InServingSoftirq()))
	})
	dev := new(int)
	err := k.RequestIRQ(17, func(c *kernel.Ctx, irq int, devID any) kernel.IRQReturn {
		events = append(events, fmt.Sprintf("hardirq %d cpu%d irqs_disabled=%v in_interrupt=%v", irq, c.CPU(), c.IRQsDisabled(), c.InInterrupt()))
		kernel.RaiseSoftirqIrqoff(c, kernel.TaskletSoftirq)
		events = append(events, "hardirq done")
		return kernel.IRQHandled
	}, 0, "testdev", dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.GenerateIRQ(1, 17); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"hardirq 17 cpu1 irqs_disabled=true in_interrupt=true",
		"hardirq done",
		"softirq cpu1 swapper/1/0 hardirq=false serving=true",
	}
	if !slices.Equal(events, want) {
		t.Fatalf("events:\n%q\nwant\n%q", events, want)
	}
	lines := k.IRQLines()
	if len(lines) != 1 || lines[0].IRQ != 17 || lines[0].Counts[1] != 1 || lines[0].Names[0] != "testdev" {
		t.Fatalf("IRQLines = %+v", lines)
	}
}

func TestHardirqDuringSoftirqIsMarkedNested(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var line string
	k.RequestIRQ(5, func(c *kernel.Ctx, irq int, _ any) kernel.IRQReturn {
		line = fmt.Sprintf("%s/%d hardirq=%t serving_softirq=%t irqs_disabled=%t preempt_count=%#x",
			c.Current().Comm(), c.Current().PID(), c.InHardirq(), c.InServingSoftirq(), c.IRQsDisabled(), c.PreemptCount())
		return kernel.IRQHandled
	}, 0, "nested", nil)
	k.OpenSoftirq(kernel.NetTXSoftirq, func(c *kernel.Ctx) {
		c.Kernel().GenerateIRQ(0, 5)
	})
	k.Spawn("t", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.NetTXSoftirq)
		kernel.LocalBHEnable(c)
		return 0
	})
	run(t, k, 0)
	// The interrupt arrives on the idle task (GenerateIRQ) while the CPU
	// serves the softirq from local_bh_enable: HARDIRQ_OFFSET on top of
	// SOFTIRQ_OFFSET and the one preempt count local_bh_enable keeps while
	// it runs do_softirq (it subtracts SOFTIRQ_DISABLE_OFFSET - 1 first).
	if want := "swapper/0/0 hardirq=true serving_softirq=true irqs_disabled=true preempt_count=0x10101"; line != want {
		t.Fatalf("nested hardirq context = %q, want %q", line, want)
	}
}

func TestRequestIRQRejectsBusyLineAndBadArguments(t *testing.T) {
	k := boot(t, kernel.Config{Quiet: true})
	h := func(*kernel.Ctx, int, any) kernel.IRQReturn { return kernel.IRQHandled }
	if err := k.RequestIRQ(3, h, 0, "a", nil); err != nil {
		t.Fatal(err)
	}
	if e, _ := kernel.AsErrno(k.RequestIRQ(3, h, 0, "b", nil)); e != kernel.EBUSY {
		t.Errorf("second non-shared request: %v, want EBUSY", e)
	}
	if e, _ := kernel.AsErrno(k.RequestIRQ(-1, h, 0, "c", nil)); e != kernel.EINVAL {
		t.Errorf("bad line: %v, want EINVAL", e)
	}
	if e, _ := kernel.AsErrno(k.RequestIRQ(4, nil, 0, "c", nil)); e != kernel.EINVAL {
		t.Errorf("nil handler: %v, want EINVAL", e)
	}
	d1, d2 := new(int), new(int)
	if err := k.RequestIRQ(9, h, kernel.IRQFShared, "s1", d1); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestIRQ(9, h, kernel.IRQFShared, "s2", d2); err != nil {
		t.Fatalf("shared second: %v", err)
	}
	c := k.IdleCtx(0)
	if name := kernel.FreeIRQ(c, 9, d1); name != "s1" {
		t.Errorf("FreeIRQ = %q, want s1", name)
	}
}
