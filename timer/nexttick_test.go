package timer_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

var everyHZ = []jiffies.HZ{jiffies.HZ100, jiffies.HZ250, jiffies.HZ300, jiffies.HZ1000}

// TestPastExpiryArmedFromProcessContextFiresOnTheNextTickInVirtualTime:
// mod_timer(t, jiffies - 5) from a task queues t in the wheel's current
// bucket, which the kernel's timer softirq runs from the next tick (the
// tick of the current jiffy has run before process context sees it), not
// in the jiffy it was armed in.
func TestPastExpiryArmedFromProcessContextFiresOnTheNextTickInVirtualTime(t *testing.T) {
	for _, hz := range everyHZ {
		k := bootK(t, kernel.Config{Virtual: true, HZ: hz})
		var tm timer.Timer
		var armedAt, firedAt uint64
		fired := 0
		task(t, k, func(c *kernel.Ctx) {
			timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) { fired++; firedAt = c.Jiffies() }, 0)
			// Away from the boot jiffy, so jiffies-5 is a real past.
			kernel.Spin(c, 7*k.TickNsec())
			armedAt = c.Jiffies()
			timer.Mod(c, &tm, armedAt-5)
		})
		if err := k.Run(context.Background(), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if fired != 1 || firedAt != armedAt+1 {
			t.Errorf("HZ=%d: armed at jiffy %d for jiffies-5: fired %d times, at jiffy %d; want once, at %d (the next tick)",
				hz, armedAt, fired, firedAt, armedAt+1)
		}
	}
}

// TestPastExpiryArmedFromProcessContextFiresOnTheNextTickInRealTime is the
// same on the monotonic clock, repeated so that arms land everywhere in
// a jiffy. It asserts only a lower bound (never in the arm jiffy), which
// a loaded machine can only make easier to meet.
func TestPastExpiryArmedFromProcessContextFiresOnTheNextTickInRealTime(t *testing.T) {
	const rounds = 12
	for _, hz := range everyHZ {
		k := bootK(t, kernel.Config{CPUs: 1, HZ: hz})
		var tm timer.Timer
		var firedAt atomic.Uint64
		var fired atomic.Int32
		timer.Setup(nil, &tm, func(c *kernel.Ctx, _ *timer.Timer) { firedAt.Store(c.Jiffies()); fired.Add(1) }, 0)
		task(t, k, func(c *kernel.Ctx) {
			for i := range rounds {
				armedAt := c.Jiffies()
				timer.Mod(c, &tm, armedAt-5)
				deadline := time.Now().Add(10 * time.Second) // a hang guard, not a timing claim
				for fired.Load() == int32(i) {
					if time.Now().After(deadline) {
						t.Errorf("HZ=%d round %d: the timer never fired", hz, i)
						return
					}
					runtime.Gosched()
				}
				if got := firedAt.Load(); got <= armedAt {
					t.Errorf("HZ=%d round %d: armed at jiffy %d for jiffies-5, fired at jiffy %d: in the arm jiffy, before the next tick",
						hz, i, armedAt, got)
				}
			}
		})
	}
}

// TestTimerArmedForJiffiesPlusNNeverRunsBeforeNMinusOneJiffiesUnderLoad:
// a timer armed at real time T with timer.Mod(c, t, c.Jiffies()+n) must
// not run before T + (n-1) jiffies, as in the kernel, at every HZ and
// with every core busy. This is the constraint on any cached or cheaper
// reading of jiffies on the arm path: a value that lags the clock by more
// than a jiffy would fire the timer early. Only the lower bound is
// asserted.
func TestTimerArmedForJiffiesPlusNNeverRunsBeforeNMinusOneJiffiesUnderLoad(t *testing.T) {
	stop := make(chan struct{})
	var burners sync.WaitGroup
	for range runtime.GOMAXPROCS(0) + 1 {
		burners.Add(1)
		go func() {
			defer burners.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1e5; i++ {
				}
			}
		}()
	}
	defer func() { close(stop); burners.Wait() }()

	ns := []uint64{0, 1, 2, 3, 5, 8}
	for _, hz := range everyHZ {
		k := bootK(t, kernel.Config{CPUs: 2, HZ: hz})
		tick := k.TickNsec()
		type rec struct {
			n           uint64
			armNs, runs int64
		}
		const perN = 6
		recs := make([]rec, len(ns)*perN)
		timers := make([]timer.Timer, len(recs))
		var left sync.WaitGroup
		left.Add(len(recs))
		for i := range timers {
			r := &recs[i]
			timer.Setup(nil, &timers[i], func(c *kernel.Ctx, _ *timer.Timer) { r.runs = k.Now(); left.Done() }, 0)
		}
		task(t, k, func(c *kernel.Ctx) {
			for i := range recs {
				r := &recs[i]
				r.n = ns[i%len(ns)]
				r.armNs = k.Now()
				timer.Mod(c, &timers[i], c.Jiffies()+r.n)
				// Arm the next one a little later, somewhere else in the jiffy.
				kernel.Spin(c, tick/3)
			}
		})
		left.Wait()
		for _, r := range recs {
			if min := r.armNs + int64(r.n-1)*tick; r.n > 0 && r.runs < min {
				t.Errorf("HZ=%d: armed at %d ns for jiffies+%d, ran at %d ns, %d ns before T+(n-1) jiffies",
					hz, r.armNs, r.n, r.runs, min-r.runs)
			}
		}
		for i := range timers {
			timer.DeleteSync(k.IdleCtx(0), &timers[i])
		}
	}
}

// TestPastExpiryArmedWithAnOldJiffiesReadStillWaitsForTheNextTick: Mod
// forwards the wheel with the jiffies value the caller last read
// (Ctx.ArmJiffies), which may be jiffies old by the time it arms; a timer
// it queues in an already-due bucket must still wait for the tick after
// the jiffy it is really armed in. Real time, lower bound only.
func TestPastExpiryArmedWithAnOldJiffiesReadStillWaitsForTheNextTick(t *testing.T) {
	k := bootK(t, kernel.Config{CPUs: 1, HZ: jiffies.HZ1000})
	var tm timer.Timer
	var firedAt atomic.Uint64
	var fired atomic.Int32
	timer.Setup(nil, &tm, func(c *kernel.Ctx, _ *timer.Timer) { firedAt.Store(c.Jiffies()); fired.Add(1) }, 0)
	task(t, k, func(c *kernel.Ctx) {
		for i := range 8 {
			seen := c.Jiffies()
			for k.Jiffies() < seen+2 { // let the value the context holds age
				runtime.Gosched()
			}
			armedAt := k.Jiffies()
			timer.Mod(c, &tm, seen-5)
			deadline := time.Now().Add(10 * time.Second) // a hang guard, not a timing claim
			for fired.Load() == int32(i) {
				if time.Now().After(deadline) {
					t.Errorf("round %d: the timer never fired", i)
					return
				}
				runtime.Gosched()
			}
			if got := firedAt.Load(); got <= armedAt {
				t.Errorf("round %d: read jiffies %d, armed at jiffy %d, fired at %d: before the next tick", i, seen, armedAt, got)
			}
		}
	})
}
