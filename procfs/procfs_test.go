package procfs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
	"github.com/kdefer/kdefer/timer"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// activity boots a 2-CPU virtual kernel and makes some softirqs and
// interrupts happen deterministically.
func activity(t *testing.T) *kernel.Kernel {
	k := ktest.Virtual(t, 2, 0)
	k.OpenSoftirq(kernel.TaskletSoftirq, func(*kernel.Ctx) {})
	k.OpenSoftirq(kernel.TimerSoftirq, func(*kernel.Ctx) {})
	k.RequestIRQ(1, func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		kernel.RaiseSoftirqIrqoff(c, kernel.TaskletSoftirq)
		return kernel.IRQHandled
	}, 0, "i8042", nil)
	d1, d2 := new(int), new(int)
	h := func(c *kernel.Ctx, _ int, _ any) kernel.IRQReturn {
		kernel.RaiseSoftirqIrqoff(c, kernel.TimerSoftirq)
		return kernel.IRQHandled
	}
	k.RequestIRQ(16, h, kernel.IRQFShared, "eth0", d1)
	k.RequestIRQ(16, h, kernel.IRQFShared, "ahci[0000:00:1f.2]", d2)
	for i := 0; i < 3; i++ {
		k.GenerateIRQ(0, 1)
	}
	for i := 0; i < 1234567; i += 100000 {
		k.GenerateIRQ(1, 16)
	}
	k.GenerateIRQ(0, 16)
	return k
}

func TestSoftirqsTextMatchesKernelFormat(t *testing.T) {
	golden.Check(t, "testdata/softirqs.golden", procfs.Softirqs(activity(t)))
}

func TestInterruptsTextMatchesKernelFormat(t *testing.T) {
	golden.Check(t, "testdata/interrupts.golden", procfs.Interrupts(activity(t)))
}

func TestTimerViewsListArmedTimers(t *testing.T) {
	k := activity(t)
	var tm timer.Timer
	k.RunTask(context.Background(), "arm", func(c *kernel.Ctx) int {
		timer.Setup(c, &tm, wheelFn, 0)
		timer.Mod(c, &tm, c.Jiffies()+1000)
		return 0
	})
	if w := procfs.TimerWheel(k); !strings.Contains(w, "fn=procfs_test.wheelFn") {
		t.Errorf("wheel dump lacks the timer:\n%s", w)
	}
	if l := procfs.TimerList(k); !strings.HasPrefix(l, "Timer List Version: v0.9\nHRTIMER_MAX_CLOCK_BASES: 8\n") {
		t.Errorf("timer_list:\n%s", l)
	}
	timer.Delete(&tm)
}

func wheelFn(*kernel.Ctx, *timer.Timer) {}

func TestTimerWheelAndTimerListAreGolden(t *testing.T) {
	k := ktest.Virtual(t, 2, 250)
	var near, far timer.Timer
	k.RunTask(context.Background(), "arm", func(c *kernel.Ctx) int {
		timer.Setup(c, &near, wheelFn, 0)
		timer.Setup(c, &far, wheelFn, 0)
		timer.Mod(c, &near, c.Jiffies()+10)
		timer.Mod(c, &far, c.Jiffies()+5000)
		return 0
	})
	golden.Check(t, "testdata/timer_wheel.golden", procfs.TimerWheel(k))
	golden.Check(t, "testdata/timer_list.golden", procfs.TimerList(k))
	timer.Delete(&near)
	timer.Delete(&far)
}
