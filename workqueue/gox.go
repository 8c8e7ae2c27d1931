package workqueue

import (
	"fmt"
	"math/bits"
	"sync"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

// --- per-queue counters ---

// latencyBuckets is the resolution of the queue-to-start histogram: bucket
// i counts latencies in [2^(i-1), 2^i) ns.
const latencyBuckets = 48

// pwqStats are a pwq's counters (the kernel's pwq->stats[] and kdefer's
// additions), guarded by the pool lock.
type pwqStats struct {
	queued, started, completed uint64
	cpuIntensive, cmWakeups    uint64
	mayday, rescued            uint64
	maxRun                     int64
	latCount, latSum, latMax   int64
	latHist                    [latencyBuckets]uint64
}

func (st *pwqStats) observeLatency(ns int64) {
	if ns < 0 {
		ns = 0
	}
	st.latCount++
	st.latSum += ns
	if ns > st.latMax {
		st.latMax = ns
	}
	b := bits.Len64(uint64(ns))
	if b >= latencyBuckets {
		b = latencyBuckets - 1
	}
	st.latHist[b]++
}

// Stats is a snapshot of a workqueue's counters, summed over its pwqs (the
// kernel's PWQ_STAT_* as tools/workqueue/wq_monitor.py shows them, plus
// what Go pool users ask for: depth, in-flight, longest running and
// queue-to-start latency). Times are on the kernel's clock.
type Stats struct {
	// Queued counts successful queueings onto the workqueue's pools
	// (a delayed item counts when its timer queues it).
	Queued uint64
	// Started and Completed count executions begun and finished
	// (PWQ_STAT_STARTED, PWQ_STAT_COMPLETED).
	Started, Completed uint64
	// InFlight is the number of items queued or running now (flush
	// barriers included); Active of them count against max_active and
	// Inactive wait for it. Delayed is the number of delayed items whose
	// timer is armed.
	InFlight, Active, Inactive, Delayed int
	// Running is the number of items running now.
	Running int
	// CPUIntensive counts items marked CPU_INTENSIVE for hogging their
	// CPU; CMWakeups the workers woken by concurrency management;
	// Mayday and Rescued the rescuer's calls and items
	// (PWQ_STAT_CPU_INTENSIVE, _CM_WAKEUP, _MAYDAY, _RESCUED).
	CPUIntensive, CMWakeups, Mayday, Rescued uint64
	// LongestRunning is how long the longest-running current item has
	// been running; MaxRunTime the longest completed execution of a
	// measured item (see QueueLatency).
	LongestRunning, MaxRunTime time.Duration
	// QueueLatency summarises the time from queueing to the start of
	// execution of the measured items that started: every item queued
	// while the workqueue had nothing queued or running on its pool, and
	// one in 128 of the others (measuring an item reads the clock twice,
	// which would otherwise add to every item's cost and latency).
	QueueLatency Latency
}

// Latency summarises durations: count, mean, maximum, and the 50th and
// 99th percentiles (upper bounds from a power-of-two histogram).
type Latency struct {
	Count     uint64
	Mean, Max time.Duration
	P50, P99  time.Duration
}

// Snapshot returns wq's counters now.
func Snapshot(wq *Workqueue) Stats {
	var st Stats
	var hist [latencyBuckets]uint64
	var latSum int64
	now := wq.sys.k.Now()
	for _, p := range wq.pwqs {
		pool := p.pool
		pool.lock()
		s := &p.stats
		st.Queued += s.queued
		st.Started += s.started
		st.Completed += s.completed
		st.CPUIntensive += s.cpuIntensive
		st.CMWakeups += s.cmWakeups
		st.Mayday += s.mayday
		st.Rescued += s.rescued
		for _, n := range p.nrInFlight {
			st.InFlight += n
		}
		st.Active += p.nrActive
		for w := p.inactive.head; w != nil; w = w.next {
			st.Inactive++
		}
		for _, wk := range pool.busy {
			if wk.currentPwq == p {
				st.Running++
				if d := time.Duration(now - wk.startAt); d > st.LongestRunning {
					st.LongestRunning = d
				}
			}
		}
		st.MaxRunTime = max(st.MaxRunTime, time.Duration(s.maxRun))
		st.QueueLatency.Count += uint64(s.latCount)
		latSum += s.latSum
		st.QueueLatency.Max = max(st.QueueLatency.Max, time.Duration(s.latMax))
		for i, n := range s.latHist {
			hist[i] += n
		}
		pool.mu.Unlock()
	}
	wq.delayedMu.Lock()
	st.Delayed = wq.nrDelayed
	wq.delayedMu.Unlock()
	if n := st.QueueLatency.Count; n > 0 {
		st.QueueLatency.Mean = time.Duration(latSum / int64(n))
		st.QueueLatency.P50 = percentile(hist[:], n, 50)
		st.QueueLatency.P99 = percentile(hist[:], n, 99)
	}
	return st
}

// percentile returns the upper bound of the histogram bucket holding the
// pct-th percentile of n observations.
func percentile(hist []uint64, n uint64, pct uint64) time.Duration {
	rank := (n*pct + 99) / 100
	var seen uint64
	for i, c := range hist {
		seen += c
		if seen >= rank {
			if i == 0 {
				return 0
			}
			return time.Duration(uint64(1)<<uint(i) - 1)
		}
	}
	return 0
}

// --- shutdown ---

// ShutdownMode says what Shutdown does with the items still queued.
type ShutdownMode int

const (
	// Drain runs everything: queued items, delayed items (their timers
	// are cut short, as flush_delayed_work does) and what they chain.
	Drain ShutdownMode = iota
	// Cancel cancels every pending item (queued or delayed) and waits
	// only for the ones already running.
	Cancel
)

// String names the mode.
func (m ShutdownMode) String() string {
	if m == Cancel {
		return "cancel"
	}
	return "drain"
}

func (wq *Workqueue) wakeClosers(c *kernel.Ctx) { wait.WakeUpAll(c, &wq.closeq) }

// closedEmpty reports whether nothing is in flight on wq and no delayed
// item of it is armed. The delayed items are looked at first: none can be
// armed once wq is closed, and one whose timer fires is counted until it
// is queued.
func (wq *Workqueue) closedEmpty() bool {
	wq.delayedMu.Lock()
	delayed := wq.nrDelayed + wq.nrFiring
	wq.delayedMu.Unlock()
	if delayed != 0 {
		return false
	}
	for _, p := range wq.pwqs {
		p.pool.lock()
		busy := p.busy()
		p.pool.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}

// Shutdown closes wq for a Go program's orderly exit and destroys it: from
// the call on, queueing onto wq fails (returns false) except chained
// queueing by wq's own items while draining (delayed queueing fails
// too, chained or not); then either every item runs
// (Drain) or every pending item is cancelled and the running ones are
// waited for (Cancel). It waits at most timeout of kernel time (0: no
// limit) and gives up early when c is cancelled — a signal, or for a
// goroutine attached with kernel.Attach, its parent context. It returns
// nil once wq is empty and destroyed, an error wrapping ErrTimeout or
// ErrInterrupted (with the number of items left) if it gave up — wq then
// stays closed, and Shutdown may be called again — and ErrClosed if wq
// was already destroyed. It may sleep.
//
// This is kdefer's addition for Go programs (the kernel's destroy_workqueue
// drains without a deadline and leaves delayed items to the caller).
func Shutdown(c *kernel.Ctx, wq *Workqueue, mode ShutdownMode, timeout time.Duration) error {
	if wq.has(flagDestroyed) {
		return fmt.Errorf("workqueue: shutdown %s: %w", wq.name, ErrClosed)
	}
	if mode == Drain {
		// Outsiders are refused; chained queueing stays allowed while
		// the items drain.
		wq.setFlag(flagClosed)
	} else {
		wq.setFlag(flagClosed | flagCancelling)
	}
	// Delayed items: queue them now (Drain) or cancel them (Cancel).
	for {
		wq.delayedMu.Lock()
		dw := wq.delayedHead
		wq.delayedMu.Unlock()
		if dw == nil {
			break
		}
		if timer.DeleteSync(c, &dw.timer) == 1 {
			wq.unregisterDelayed(c, dw)
			if mode == Drain {
				wq.insertQueued(c, dw.cpu, &dw.Work)
			} else {
				dw.data.Store(dw.data.Load() &^ dataPending)
			}
		} else {
			// Its timer is firing right now; the callback unregisters it.
			wq.unregisterDelayed(c, dw)
		}
	}
	if mode == Cancel {
		wq.cancelQueued(c)
	}
	jiffies := int64(-1)
	if timeout > 0 {
		t := c.Kernel().TickNsec()
		jiffies = (int64(timeout) + t - 1) / t
	}
	var ret int64
	if jiffies < 0 {
		ret = int64(wait.EventInterruptible(c, &wq.closeq, wq.closedEmpty))
	} else {
		ret = wait.EventInterruptibleTimeout(c, &wq.closeq, wq.closedEmpty, jiffies)
	}
	left := func() int { st := Snapshot(wq); return st.InFlight + st.Delayed }
	switch {
	case ret < 0:
		return fmt.Errorf("workqueue: shutdown %s (%s): %d items left: %w", wq.name, mode, left(), ErrInterrupted)
	case jiffies >= 0 && ret == 0:
		return fmt.Errorf("workqueue: shutdown %s (%s): %d items left after %v: %w", wq.name, mode, left(), timeout, ErrTimeout)
	}
	if !DestroyWorkqueue(c, wq) {
		return fmt.Errorf("workqueue: shutdown %s: still busy: %w", wq.name, kernel.EBUSY)
	}
	return nil
}

// cancelQueued takes every queued item of wq off its lists and gives
// PENDING back (try_to_grab_pending for each).
func (wq *Workqueue) cancelQueued(c *kernel.Ctx) {
	for _, p := range wq.pwqs {
		pool := p.pool
		pool.lock()
		var take []*Work
		for w := pool.worklist.head; w != nil; w = w.next {
			if w.pwq == p && !w.isBarrier {
				take = append(take, w)
			}
		}
		for w := p.inactive.head; w != nil; w = w.next {
			if !w.isBarrier {
				take = append(take, w)
			}
		}
		for _, w := range take {
			qf := w.qflags
			if qf&qInactive != 0 {
				moveLinkedWorks(w, &pool.worklist)
			}
			w.unlink()
			w.pwq = nil
			w.data.Store(poolData(pool))
			p.decNrInFlight(c, qf)
		}
		pool.mu.Unlock()
	}
}

// --- retries with backoff ---

// RetryFunc is the function of a RetryWork: it returns nil when the job is
// done, or an error to have it run again after the next backoff delay.
type RetryFunc func(c *kernel.Ctx, rw *RetryWork) error

// Backoff is a RetryWork's retry policy: the delay before the n-th retry
// is Base * 2^(n-1), at most Max (client-go's
// ItemExponentialFailureRateLimiter); Limiter, if set, adds its rate limit
// (the larger delay wins, as in client-go's default MaxOfRateLimiter).
// MaxRetries > 0 gives up after that many retries (OnGiveUp, if set, is
// then called with the last error).
type Backoff struct {
	Base, Max  time.Duration
	MaxRetries int
	Limiter    *RateLimiter
	OnGiveUp   func(c *kernel.Ctx, rw *RetryWork, err error)
}

// RetryWork is a delayed work item that requeues itself with exponential
// backoff while its function fails. Its failure count lives in the item:
// a success resets it, so there is nothing to "Forget" (the client-go
// workqueue's per-item limiter map, which leaks when Forget is missed).
// Set it up with InitRetry and queue it with QueueRetry.
type RetryWork struct {
	dw       DelayedWork
	fn       RetryFunc
	backoff  Backoff
	wq       *Workqueue
	failures int // owned by the work function
	lastErr  error
}

// InitRetry sets rw up to run fn with policy b.
func InitRetry(rw *RetryWork, fn RetryFunc, b Backoff) {
	InitDelayed(&rw.dw, retryFn)
	rw.fn, rw.backoff, rw.failures, rw.lastErr = fn, b, 0, nil
	if rw.backoff.Base <= 0 {
		rw.backoff.Base = 5 * time.Millisecond
	}
	if rw.backoff.Max <= 0 {
		rw.backoff.Max = 1000 * time.Second
	}
}

// QueueRetry queues rw on wq to run now (false if it is already pending).
func QueueRetry(c *kernel.Ctx, wq *Workqueue, rw *RetryWork) bool {
	rw.wq = wq
	return QueueDelayedWork(c, wq, &rw.dw, 0)
}

// Failures returns how many times in a row rw's function has failed.
// Read it from the function itself or once rw is idle.
func (rw *RetryWork) Failures() int { return rw.failures }

// Work returns rw's delayed item (to cancel or flush it).
func (rw *RetryWork) Work() *DelayedWork { return &rw.dw }

func retryFn(c *kernel.Ctx, w *Work) {
	rw := (*RetryWork)(unsafePointer(w))
	err := rw.fn(c, rw)
	if err == nil {
		rw.failures, rw.lastErr = 0, nil
		return
	}
	rw.failures++
	rw.lastErr = err
	b := &rw.backoff
	if b.MaxRetries > 0 && rw.failures > b.MaxRetries {
		n := rw.failures
		rw.failures = 0
		if b.OnGiveUp != nil {
			b.OnGiveUp(c, rw, fmt.Errorf("workqueue: gave up after %d failures: %w", n, err))
		}
		return
	}
	d := b.Base << uint(min(rw.failures-1, 62))
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	if b.Limiter != nil {
		d = max(d, b.Limiter.Reserve(c.Kernel()))
	}
	QueueDelayedWork(c, rw.wq, &rw.dw, durationToJiffies(c.Kernel(), d))
}

func durationToJiffies(k *kernel.Kernel, d time.Duration) uint64 {
	t := k.TickNsec()
	return uint64((int64(d) + t - 1) / t)
}

// RateLimiter is a token bucket on the kernel's clock (client-go's
// BucketRateLimiter: Rate tokens per second, Burst at most), shared by any
// number of items. Reserve takes a token and says how long to wait for it.
type RateLimiter struct {
	Rate  float64
	Burst int

	mu     sync.Mutex
	tokens float64
	last   int64
	init   bool
}

// Reserve takes a token and returns the delay until it is available.
func (l *RateLimiter) Reserve(k *kernel.Kernel) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := k.Now()
	if !l.init {
		l.tokens, l.last, l.init = float64(l.Burst), now, true
	}
	if l.Rate <= 0 {
		return 0
	}
	l.tokens = min(float64(l.Burst), l.tokens+float64(now-l.last)*l.Rate/1e9)
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.Rate * 1e9)
}
