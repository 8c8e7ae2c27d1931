package hrtimer

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
)

func bootReal(t *testing.T, cpus int) *kernel.Kernel {
	t.Helper()
	k, err := kernel.Boot(kernel.Config{CPUs: cpus, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return k
}

// Cancel must block while the callback runs on another CPU and return
// only after it has finished.
func TestCancelWaitsForCallbackRunningOnAnotherCPU(t *testing.T) {
	k := bootReal(t, 2)
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var tm HRTimer
	Setup(&tm, func(c *kernel.Ctx, t *HRTimer) HRTimerRestart {
		close(entered)
		<-release
		finished.Store(true)
		return Restart // re-queued at the expiry the releaser set
	}, ClockMonotonic, ModeRel)
	var ret int
	var fin bool
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := k.RunTask(ctx, "canceller", func(c *kernel.Ctx) int {
		Start(c, &tm, 1000, ModeRel)
		<-entered
		cb := tm.base.Load().cpu
		go func() {
			// Release the callback only once Cancel is waiting for it.
			for {
				cb.lock.Lock()
				w := cb.waiters
				cb.lock.Unlock()
				if w > 0 {
					break
				}
				runtime.Gosched()
			}
			// The callback returns Restart: requeue it far away so that
			// Cancel's retry finds it queued and removes it.
			SetExpires(&tm, 1<<60)
			close(release)
		}()
		ret = Cancel(c, &tm)
		fin = finished.Load()
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if !fin || ret != 1 {
		t.Fatalf("Cancel returned %d with callback finished=%v; want 1 (re-queued by Restart, then removed) after it finished", ret, fin)
	}
	if Active(&tm) {
		t.Fatal("timer active after Cancel")
	}
}

func TestHeapKeepsExpiryThenFIFOOrder(t *testing.T) {
	var b clockBase
	cb := &cpuBase{st: &hrtimerState{}}
	b.cpu = cb
	ts := make([]HRTimer, 200)
	for i := range ts {
		ts[i].expires = int64((i * 7919) % 31)
		b.enqueue(&ts[i])
	}
	// Remove every third from the middle of the heap.
	for i := 0; i < len(ts); i += 3 {
		if !b.remove(&ts[i], StateInactive) {
			t.Fatalf("timer %d not queued", i)
		}
	}
	var prev *HRTimer
	n := 0
	for len(b.q) > 0 {
		t0 := b.q[0]
		b.remove(t0, StateInactive)
		if prev != nil && less(t0, prev) {
			t.Fatalf("out of order: %d/%d after %d/%d", t0.expires, t0.seq, prev.expires, prev.seq)
		}
		if t0.heapIdx != -1 || t0.state.Load() != StateInactive {
			t.Fatal("removed timer still marked queued")
		}
		prev = t0
		n++
	}
	if want := len(ts) - (len(ts)+2)/3; n != want {
		t.Fatalf("popped %d, want %d", n, want)
	}
}
