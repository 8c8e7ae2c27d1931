package kernel_test

import (
	"context"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
)

func TestVirtualKernelBootsAndShutsDownWithoutLeaks(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2})
	run(t, k, time.Second)
	if got := k.Now(); got != int64(time.Second) {
		t.Fatalf("Now after Run(1s) = %d, want %d", got, time.Second)
	}
	var names []string
	for _, tk := range k.Tasks() {
		names = append(names, tk.Comm())
	}
	t.Logf("tasks: %v", names)
	t.Log(dmesg(k))
}

func TestRealKernelBootsAndShutsDown(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTwoKernelsInOneProcessShareNothing(t *testing.T) {
	a := boot(t, kernel.Config{CPUs: 1, HZ: 100, Quiet: true})
	b := boot(t, kernel.Config{CPUs: 3, HZ: 1000, Quiet: true})
	ranA, ranB := 0, 0
	a.OpenSoftirq(kernel.HISoftirq, func(*kernel.Ctx) { ranA++ })
	b.OpenSoftirq(kernel.HISoftirq, func(*kernel.Ctx) { ranB++ })
	a.RunTask(context.Background(), "app", func(c *kernel.Ctx) int {
		kernel.PrFmt("a").Info(c, "hello from a\n")
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.HISoftirq)
		kernel.LocalBHEnable(c)
		return 0
	})
	run(t, b, 5*time.Second)
	if ranA != 1 || ranB != 0 {
		t.Fatalf("softirq ran a=%d b=%d, want 1 and 0", ranA, ranB)
	}
	if la, lb := logText(a), logText(b); len(la) != 1 || len(lb) != 0 {
		t.Fatalf("logs a=%q b=%q", la, lb)
	}
	if a.Now() != 0 || b.Now() != int64(5*time.Second) {
		t.Fatalf("clocks a=%d b=%d", a.Now(), b.Now())
	}
	if a.HZ() != 100 || b.Jiffies() != b.InitialJiffies()+5000 {
		t.Fatalf("HZ a=%d, jiffies b=%d", a.HZ(), b.Jiffies())
	}
	if a.SoftirqCount(kernel.HISoftirq, 0) != 1 || b.SoftirqCount(kernel.HISoftirq, 0) != 0 {
		t.Fatal("softirq statistics leaked between kernels")
	}
}

func TestBootRejectsBadConfig(t *testing.T) {
	for _, cfg := range []kernel.Config{{HZ: 123}, {CPUs: -1}, {CPUs: kernel.NRCPUs + 1}} {
		if _, err := kernel.Boot(cfg); err == nil {
			t.Errorf("Boot(%+v) succeeded", cfg)
		}
	}
}
