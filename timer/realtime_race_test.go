package timer_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// Real-time regression tests for races a concurrency audit found. They
// assert no timing.

func bootRealtime(t *testing.T, cpus int) *kernel.Kernel {
	t.Helper()
	return ktest.Boot(t, kernel.Config{CPUs: cpus, HZ: 1000, Quiet: true})
}

// TestShutdownSyncRacingTheFirstArmNeverLeavesItPending: ShutdownSync of a
// timer that was never armed, racing its first Mod on another CPU.
func TestShutdownSyncRacingTheFirstArmNeverLeavesItPending(t *testing.T) {
	k := bootRealtime(t, 2)
	for i := range 300 {
		var tm timer.Timer
		timer.Setup(nil, &tm, func(*kernel.Ctx, *timer.Timer) {}, 0)
		var start sync.WaitGroup
		start.Add(1)
		a := ktest.OnCPU(t, k, "mod", 0, func(c *kernel.Ctx) { start.Wait(); timer.Mod(c, &tm, c.Jiffies()+1000) })
		b := ktest.OnCPU(t, k, "shut", 1, func(c *kernel.Ctx) { start.Wait(); timer.ShutdownSync(c, &tm) })
		start.Done()
		<-a.Exited()
		<-b.Exited()
		if timer.Pending(&tm) {
			t.Fatalf("round %d: pending after timer_shutdown_sync returned", i)
		}
	}
}

// TestIRQSafeTimerDeleteSyncFromHardirqWaitsForItsCallback: FlagIRQSafe is
// what makes timer_delete_sync legal in hardirq context, so it must wait
// for a running callback there too.
func TestIRQSafeTimerDeleteSyncFromHardirqWaitsForItsCallback(t *testing.T) {
	k := bootRealtime(t, 2)
	var tm timer.Timer
	var running atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	timer.Setup(nil, &tm, func(*kernel.Ctx, *timer.Timer) {
		running.Store(true)
		close(entered)
		<-release
		running.Store(false)
	}, timer.FlagIRQSafe)
	ktest.OnCPU(t, k, "arm", 0, func(c *kernel.Ctx) { timer.Mod(c, &tm, c.Jiffies()+1) })
	<-entered
	var after atomic.Bool
	if err := k.RequestIRQ(40, func(c *kernel.Ctx, irq int, dev any) kernel.IRQReturn {
		timer.DeleteSync(c, &tm)
		after.Store(running.Load())
		return kernel.IRQHandled
	}, 0, "deleter", nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { k.GenerateIRQ(0, 40); close(done) }()
	select {
	case <-done:
		t.Fatal("timer_delete_sync returned while the callback was still blocked")
	case <-time.After(20 * time.Millisecond): // still waiting, as it must
	}
	close(release)
	<-done
	if after.Load() {
		t.Error("timer_delete_sync returned while the callback ran")
	}
}
