package kernel_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestIRQRaisedOnItsOwnCPUFromAHandlerRunsAfterIt: a hardirq handler that
// raises another interrupt on its own CPU (as a device, or a self-IPI,
// does while the CPU has interrupts disabled) does not deadlock: the
// interrupt is latched and taken as soon as the running handler is done,
// before irq_exit runs softirqs, in both time modes.
func TestIRQRaisedOnItsOwnCPUFromAHandlerRunsAfterIt(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true, Virtual: virtual})
		var mu sync.Mutex
		var order []string
		note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
		k.OpenSoftirq(kernel.TaskletSoftirq, func(*kernel.Ctx) { note("softirq") })
		if err := k.RequestIRQ(5, func(c *kernel.Ctx, irq int, _ any) kernel.IRQReturn {
			note("irq5 enter")
			if err := c.Kernel().GenerateIRQ(c.CPU(), 6); err != nil {
				t.Errorf("GenerateIRQ from the handler: %v", err)
			}
			kernel.RaiseSoftirqIrqoff(c, kernel.TaskletSoftirq)
			note("irq5 exit")
			return kernel.IRQHandled
		}, 0, "outer", nil); err != nil {
			t.Fatal(err)
		}
		if err := k.RequestIRQ(6, func(c *kernel.Ctx, irq int, _ any) kernel.IRQReturn {
			if !c.InHardirq() {
				t.Errorf("irq 6 handler outside hardirq context")
			}
			note("irq6")
			return kernel.IRQHandled
		}, 0, "inner", nil); err != nil {
			t.Fatal(err)
		}
		ktest.InTask(t, k, func(c *kernel.Ctx) {
			if err := k.GenerateIRQ(1, 5); err != nil {
				t.Errorf("GenerateIRQ: %v", err)
			}
		})
		mu.Lock()
		want := []string{"irq5 enter", "irq5 exit", "irq6", "softirq"}
		if !slices.Equal(order, want) {
			t.Errorf("virtual=%t: order = %q, want %q", virtual, order, want)
		}
		mu.Unlock()
		for _, l := range k.IRQLines() {
			if l.IRQ == 6 && l.Counts[1] != 1 {
				t.Errorf("virtual=%t: irq 6 counted %v, want once on CPU 1", virtual, l.Counts)
			}
		}
	}
}

// TestIRQRaisedFromTheLocalTimerInterruptRunsAfterIt: the same from the
// CPU's own timer interrupt (a hard hrtimer callback raising an IRQ on its
// CPU): the idle loop's goroutine is the one in hardirq context.
func TestIRQRaisedFromTheLocalTimerInterruptRunsAfterIt(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 1, Quiet: true, Virtual: virtual})
		ran := make(chan struct{})
		if err := k.RequestIRQ(7, func(*kernel.Ctx, int, any) kernel.IRQReturn { close(ran); return kernel.IRQHandled }, 0, "dev", nil); err != nil {
			t.Fatal(err)
		}
		k.RegisterClockEvents(&raiseOnTick{irq: 7})
		if virtual {
			if err := k.Run(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
		}
		<-ran // the test's timeout bounds a deadlock
	}
}

// raiseOnTick is a clock event due at once whose interrupt raises irq on
// its own CPU, once.
type raiseOnTick struct {
	irq   int
	fired atomic.Bool
}

func (r *raiseOnTick) NextEvent(int) int64 {
	if r.fired.Load() {
		return kernel.NoEvent
	}
	return 0
}

func (r *raiseOnTick) Tick(c *kernel.Ctx) {
	if !r.fired.Swap(true) {
		c.Kernel().GenerateIRQ(c.CPU(), r.irq)
	}
}

// TestLatchedIRQsAreNeverLost: handlers on two CPUs raising interrupts on
// their own and the other CPU while tasks raise more: every interrupt
// raised is taken exactly once, and nothing deadlocks (a real-time race
// test; it asserts counts only).
func TestLatchedIRQsAreNeverLost(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	var inner atomic.Int64
	if err := k.RequestIRQ(8, func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		k.GenerateIRQ(c.CPU(), 9)
		k.GenerateIRQ(1-c.CPU(), 9)
		return kernel.IRQHandled
	}, 0, "outer", nil); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestIRQ(9, func(*kernel.Ctx, int, any) kernel.IRQReturn { inner.Add(1); return kernel.IRQHandled }, 0, "inner", nil); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var tasks []*kernel.Task
	for i := range 4 {
		tk, err := k.Spawn("raiser", func(*kernel.Ctx) int {
			for range n {
				k.GenerateIRQ(i%2, 8)
			}
			return 0
		})
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, tk)
	}
	for _, tk := range tasks {
		<-tk.Exited()
	}
	ktest.Shutdown(t, k) // the CPU loops are done too: nothing is in flight
	if got, want := inner.Load(), int64(2*4*n); got != want {
		t.Errorf("%d inner interrupts taken, want %d", got, want)
	}
}
