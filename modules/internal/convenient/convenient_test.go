package convenient_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/modules/internal/convenient"
)

func logText(k *kernel.Kernel) string { return strings.Join(ktest.Lines(k), "\n") + "\n" }

func TestPrintCtxMatchesSeedFormatInEveryContext(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	pr := kernel.PrFmt("ctxdemo")
	k.OpenSoftirq(kernel.TimerSoftirq, func(c *kernel.Ctx) { ding(pr, c) })
	k.RequestIRQ(11, func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		irqHandler(pr, c)
		kernel.RaiseSoftirqIrqoff(c, kernel.TimerSoftirq)
		return kernel.IRQHandled
	}, 0, "ctxdemo", nil)
	kt, _ := k.CreateTask(kernel.TaskOpts{Comm: "llkd/kt_simple", Kthread: true, CPU: 0}, func(c *kernel.Ctx) int {
		simpleKthread(pr, c)
		return 0
	})
	k.WakeUpProcess(kt)
	ktest.Run(t, k, 0)
	k.GenerateIRQ(1, 11)
	ut, _ := k.CreateTask(kernel.TaskOpts{Comm: "userapp_sed2", CPU: 1}, func(c *kernel.Ctx) int {
		openMiscdrv(pr, c)
		var l kernel.SpinLock
		l.LockBH(c)
		underLock(pr, c)
		l.UnlockBH(c)
		return 0
	})
	k.WakeUpProcess(ut)
	ktest.Run(t, k, 0)
	golden.Check(t, "testdata/printctx.golden", logText(k))
}

func ding(pr kernel.Logger, c *kernel.Ctx)          { convenient.PrintCtx(c, pr) }
func irqHandler(pr kernel.Logger, c *kernel.Ctx)    { convenient.PrintCtx(c, pr) }
func simpleKthread(pr kernel.Logger, c *kernel.Ctx) { convenient.PrintCtx(c, pr) }
func openMiscdrv(pr kernel.Logger, c *kernel.Ctx)   { convenient.PrintCtx(c, pr) }
func underLock(pr kernel.Logger, c *kernel.Ctx)     { convenient.PrintCtx(c, pr) }

func TestPrintCtxIsSilentWithNoDebugAndUnprefixedWithoutModule(t *testing.T) {
	k := ktest.Virtual(t, 1, 0)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		convenient.PrintCtx(c, kernel.Logger{Module: "m", NoDebug: true})
		convenient.PrintCtx(c, kernel.Logger{})
	})
	lines := ktest.Lines(k)
	// A closure reports its enclosing function, as __func__ would.
	want := "000)  test :4   |  ...0   /* TestPrintCtxIsSilentWithNoDebugAndUnprefixedWithoutModule() */"
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("log = %q, want only %q", lines, want)
	}
}

func TestCtxLineMarksHardirqNestedInSoftirq(t *testing.T) {
	k := ktest.Virtual(t, 1, 0)
	var line string
	k.RequestIRQ(5, func(c *kernel.Ctx, irq int, _ any) kernel.IRQReturn {
		line = convenient.CtxLine(c, "irqfn")
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
	ktest.Run(t, k, 0)
	if want := "000) [swapper/0]:0   |  d.H1   /* irqfn() */"; line != want {
		t.Fatalf("PRINT_CTX in nested hardirq = %q, want %q", line, want)
	}
}

func TestShowDeltaFormats(t *testing.T) {
	k := ktest.Virtual(t, 1, 0)
	c := k.IdleCtx(0)
	pr := kernel.PrFmt("workq_simple")
	convenient.ShowDelta(c, pr, 1850, 1000)
	pr.Info(c, "next\n")
	convenient.ShowDelta(c, pr, 52361, 0)
	convenient.ShowDelta(c, pr, 2071234+5, 5)
	convenient.ShowDelta(c, pr, 5, 10)
	convenient.ShowDelta(c, pr, 7, 7)
	convenient.ShowDeltaBook(c, pr, 38123, 0)
	convenient.ShowDeltaBook(c, pr, 1, 2)
	golden.Check(t, "testdata/showdelta.golden", logText(k))
}
