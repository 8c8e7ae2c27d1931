package kernel_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -rewrite.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -args -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestPrintCtxMatchesSeedFormatInEveryContext(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2, Quiet: true})
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
	run(t, k, 0)
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
	run(t, k, 0)
	golden(t, "printctx.golden", strings.Join(logText(k), "\n")+"\n")
}

func ding(pr kernel.Logger, c *kernel.Ctx)          { pr.PrintCtx(c) }
func irqHandler(pr kernel.Logger, c *kernel.Ctx)    { pr.PrintCtx(c) }
func simpleKthread(pr kernel.Logger, c *kernel.Ctx) { pr.PrintCtx(c) }
func openMiscdrv(pr kernel.Logger, c *kernel.Ctx)   { pr.PrintCtx(c) }
func underLock(pr kernel.Logger, c *kernel.Ctx)     { pr.PrintCtx(c) }

func TestShowDeltaFormats(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	c := k.IdleCtx(0)
	pr := kernel.PrFmt("workq_simple")
	pr.ShowDelta(c, 1850, 1000)
	pr.Info(c, "next\n")
	pr.ShowDelta(c, 52361, 0)
	pr.ShowDelta(c, 2071234+5, 5)
	pr.ShowDelta(c, 5, 10)
	pr.ShowDelta(c, 7, 7)
	pr.ShowDeltaBook(c, 38123, 0)
	pr.ShowDeltaBook(c, 1, 2)
	golden(t, "showdelta.golden", strings.Join(logText(k), "\n")+"\n")
}
