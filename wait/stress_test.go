package wait_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// waitExit waits for tasks to exit. The deadline only keeps a lost wakeup
// from hanging the test binary; nothing is asserted about timing.
func waitExit(t *testing.T, tasks []*kernel.Task) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for _, task := range tasks {
		select {
		case <-task.Exited():
		case <-deadline:
			t.Fatalf("task %s still in state %s: a wakeup was lost", task, task.State().String())
		}
	}
}

// TestRealTimeProducersAndConsumersLoseNoWakeup runs producers and
// consumers of a bounded buffer in parallel in real time, with
// wait_event_interruptible(_timeout, _exclusive) and wake_up on two queues
// and completions to sequence the shutdown. The test finishing at all is the
// claim that no wakeup is lost; the counts must add up exactly.
func TestRealTimeProducersAndConsumersLoseNoWakeup(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stress")
	}
	k := bootK(t, kernel.Config{CPUs: 2})
	const (
		producers = 4
		consumers = 4
		items     = 5000
		capacity  = 4
	)
	var (
		notFull, notEmpty wait.Queue
		mu                sync.Mutex // guards buf; held only briefly, never across a wait
		buf               []int
		count             atomic.Int32 // len(buf), for the conditions
		closed            atomic.Bool
		produced          [producers]wait.Completion
		consumedSum       atomic.Int64
		consumedN         atomic.Int64
		seen              [producers * items]atomic.Int32
	)
	var tasks []*kernel.Task
	for p := range producers {
		tasks = append(tasks, spawn(t, k, fmt.Sprintf("prod%d", p), func(c *kernel.Ctx) {
			for i := range items {
				for {
					if r := wait.EventInterruptible(c, &notFull, func() bool { return count.Load() < capacity }); r != 0 {
						t.Errorf("producer interrupted: %d", r)
						return
					}
					mu.Lock()
					if len(buf) < capacity {
						buf = append(buf, p*items+i)
						count.Store(int32(len(buf)))
						mu.Unlock()
						break
					}
					mu.Unlock()
				}
				wait.WakeUp(c, &notEmpty)
			}
			produced[p].Complete()
		}))
	}
	for n := range consumers {
		tasks = append(tasks, spawn(t, k, fmt.Sprintf("cons%d", n), func(c *kernel.Ctx) {
			ready := func() bool { return count.Load() > 0 || closed.Load() }
			for {
				switch n % 3 {
				case 0:
					wait.EventInterruptible(c, &notEmpty, ready)
				case 1:
					wait.EventInterruptibleExclusive(c, &notEmpty, ready)
				default:
					// A short timeout: real timers race with the wakeups.
					for wait.EventInterruptibleTimeout(c, &notEmpty, ready, 1) == 0 {
					}
				}
				mu.Lock()
				if len(buf) == 0 {
					mu.Unlock()
					if closed.Load() {
						return
					}
					continue
				}
				v := buf[0]
				buf = buf[1:]
				count.Store(int32(len(buf)))
				mu.Unlock()
				wait.WakeUp(c, &notFull)
				seen[v].Add(1)
				consumedSum.Add(int64(v))
				consumedN.Add(1)
			}
		}))
	}
	tasks = append(tasks, spawn(t, k, "closer", func(c *kernel.Ctx) {
		for p := range producers {
			produced[p].WaitFor(c)
		}
		closed.Store(true)
		wait.WakeUpAll(c, &notEmpty)
	}))
	waitExit(t, tasks)

	const n = producers * items
	if got := consumedN.Load(); got != n {
		t.Errorf("consumed %d items, want %d", got, n)
	}
	if got, want := consumedSum.Load(), int64(n*(n-1)/2); got != want {
		t.Errorf("sum of consumed items %d, want %d", got, want)
	}
	for v := range seen {
		if s := seen[v].Load(); s != 1 {
			t.Fatalf("item %d consumed %d times", v, s)
		}
	}
}

// TestRealTimeCompletionPingPongLosesNoWakeup bounces control between
// tasks through completions and a killable wait queue, thousands of
// times, in parallel in real time.
func TestRealTimeCompletionPingPongLosesNoWakeup(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stress")
	}
	k := bootK(t, kernel.Config{CPUs: 2})
	const rounds = 10000
	var ping, pong wait.Completion
	var q wait.Queue
	var turn atomic.Int64
	var tasks []*kernel.Task
	tasks = append(tasks, spawn(t, k, "ping", func(c *kernel.Ctx) {
		for i := range rounds {
			ping.Complete()
			if r := pong.WaitForKillableTimeout(c, 1<<40); r <= 0 {
				t.Errorf("round %d: wait_for_completion_killable_timeout=%d", i, r)
				return
			}
			turn.Add(1)
			wait.WakeUpAll(c, &q)
		}
	}))
	tasks = append(tasks, spawn(t, k, "pong", func(c *kernel.Ctx) {
		for i := range rounds {
			ping.WaitFor(c)
			pong.Complete()
			if r := wait.EventKillable(c, &q, func() bool { return turn.Load() > int64(i) }); r != 0 {
				t.Errorf("round %d: wait_event_killable=%d", i, r)
				return
			}
		}
	}))
	// A third task races wait_for_completion_timeout against the others'
	// complete() calls on a completion of its own, woken from the pong side.
	var side wait.Completion
	var sideGot atomic.Int64
	tasks = append(tasks, spawn(t, k, "side", func(c *kernel.Ctx) {
		for sideGot.Load() < rounds {
			if side.WaitForTimeout(c, 1) > 0 {
				sideGot.Add(1)
			}
		}
	}))
	tasks = append(tasks, spawn(t, k, "sidefeed", func(c *kernel.Ctx) {
		for range rounds {
			side.Complete()
			kernel.CondResched(c)
		}
	}))
	waitExit(t, tasks)
	if turn.Load() != rounds || sideGot.Load() != rounds || ping.Done() || pong.Done() || side.Done() {
		t.Errorf("turns=%d side=%d done=%v/%v/%v; want %d, %d, all consumed",
			turn.Load(), sideGot.Load(), ping.Done(), pong.Done(), side.Done(), rounds, rounds)
	}
}
