package wait_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// sleeper is a task that queues itself on q once, sleeps, and records its
// name when it runs again: prepare_to_wait(_exclusive), schedule(),
// finish_wait, without a condition loop, so that every wakeup shows.
type sleepers struct {
	mu    sync.Mutex
	woken []string
}

func (s *sleepers) add(t *testing.T, k *kernel.Kernel, q *wait.Queue, name string, state kernel.TaskState, exclusive bool) {
	spawn(t, k, name, func(c *kernel.Ctx) {
		var e wait.Entry
		wait.InitWait(c, &e)
		if exclusive {
			wait.PrepareToWaitExclusive(c, q, &e, state)
		} else {
			wait.PrepareToWait(c, q, &e, state)
		}
		kernel.Schedule(c)
		wait.FinishWait(c, q, &e)
		s.mu.Lock()
		s.woken = append(s.woken, name)
		s.mu.Unlock()
	})
}

// take returns and clears the names woken so far, in the order they ran.
func (s *sleepers) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.woken
	s.woken = nil
	return w
}

// wake runs fn in a task and drives the kernel until all is quiet again.
func wake(t *testing.T, k *kernel.Kernel, fn func(c *kernel.Ctx) int) int {
	t.Helper()
	var n int
	runTask(t, k, func(c *kernel.Ctx) { n = fn(c) })
	run(t, k)
	return n
}

func TestWakeUpWakesAllNonExclusiveAndOneExclusiveInQueueOrder(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var s sleepers
	// They queue in this order: non-exclusive waiters go to the head, so
	// the walk meets n3 n2 n1, then the exclusive x1..x4 in FIFO order.
	for i := 1; i <= 3; i++ {
		s.add(t, k, &q, fmt.Sprintf("n%d", i), kernel.TaskUninterruptible, false)
	}
	for i := 1; i <= 4; i++ {
		s.add(t, k, &q, fmt.Sprintf("x%d", i), kernel.TaskUninterruptible, true)
	}
	run(t, k)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("woken before any wake_up: %v", got)
	}

	steps := []struct {
		name   string
		wake   func(c *kernel.Ctx) int
		ret    int
		woken  []string
		active bool
	}{
		{"wake_up", func(c *kernel.Ctx) int { return wait.WakeUp(c, &q) }, 1, []string{"n3", "n2", "n1", "x1"}, true},
		{"wake_up_nr(2)", func(c *kernel.Ctx) int { return wait.WakeUpNr(c, &q, 2) }, 2, []string{"x2", "x3"}, true},
		{"wake_up_nr(5)", func(c *kernel.Ctx) int { return wait.WakeUpNr(c, &q, 5) }, 1, []string{"x4"}, false},
		{"wake_up_all on an empty queue", func(c *kernel.Ctx) int { return wait.WakeUpAll(c, &q) }, 0, nil, false},
	}
	for _, st := range steps {
		if n := wake(t, k, st.wake); n != st.ret {
			t.Errorf("%s returned %d, want %d", st.name, n, st.ret)
		}
		if got := s.take(); !slices.Equal(got, st.woken) {
			t.Errorf("%s woke %v, want %v", st.name, got, st.woken)
		}
		if a := wait.Active(&q); a != st.active {
			t.Errorf("after %s waitqueue_active=%v, want %v", st.name, a, st.active)
		}
	}
}

func TestWakeUpAllWakesEveryExclusiveWaiter(t *testing.T) {
	for _, all := range []struct {
		name string
		fn   func(c *kernel.Ctx, q *wait.Queue) int
	}{
		{"wake_up_all", wait.WakeUpAll},
		{"wake_up_nr(0)", func(c *kernel.Ctx, q *wait.Queue) int { return wait.WakeUpNr(c, q, 0) }},
		{"wake_up_interruptible_all", wait.WakeUpInterruptibleAll},
	} {
		t.Run(all.name, func(t *testing.T) {
			k := bootV(t)
			var q wait.Queue
			var s sleepers
			s.add(t, k, &q, "n1", kernel.TaskInterruptible, false)
			for i := 1; i <= 3; i++ {
				s.add(t, k, &q, fmt.Sprintf("x%d", i), kernel.TaskInterruptible, true)
			}
			run(t, k)
			if n := wake(t, k, func(c *kernel.Ctx) int { return all.fn(c, &q) }); n != 3 {
				t.Errorf("returned %d exclusive wakeups, want 3", n)
			}
			if got, want := s.take(), []string{"n1", "x1", "x2", "x3"}; !slices.Equal(got, want) {
				t.Errorf("woke %v, want %v", got, want)
			}
		})
	}
}

func TestWakeUpInterruptibleLeavesUninterruptibleSleepersAsleep(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var s sleepers
	s.add(t, k, &q, "nD", kernel.TaskUninterruptible, false)
	s.add(t, k, &q, "nS", kernel.TaskInterruptible, false)
	s.add(t, k, &q, "nK", kernel.TaskKillable, false)
	// xD is first among the exclusive waiters, but wake_up_interruptible
	// cannot wake it, so it does not use up nr: the walk goes on to xS.
	s.add(t, k, &q, "xD", kernel.TaskUninterruptible, true)
	s.add(t, k, &q, "xS", kernel.TaskInterruptible, true)
	s.add(t, k, &q, "xS2", kernel.TaskInterruptible, true)
	run(t, k)

	if n := wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUpInterruptible(c, &q) }); n != 1 {
		t.Errorf("wake_up_interruptible returned %d, want 1", n)
	}
	if got, want := s.take(), []string{"nS", "xS"}; !slices.Equal(got, want) {
		t.Errorf("wake_up_interruptible woke %v, want %v", got, want)
	}
	if n := wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUpInterruptibleNr(c, &q, 3) }); n != 1 {
		t.Errorf("wake_up_interruptible_nr(3) returned %d, want 1", n)
	}
	if got, want := s.take(), []string{"xS2"}; !slices.Equal(got, want) {
		t.Errorf("wake_up_interruptible_nr(3) woke %v, want %v", got, want)
	}
	if n := wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUp(c, &q) }); n != 1 {
		t.Errorf("wake_up returned %d, want 1", n)
	}
	if got, want := s.take(), []string{"nK", "nD", "xD"}; !slices.Equal(got, want) {
		t.Errorf("wake_up woke %v, want %v", got, want)
	}
}

func TestWakeFunctionsSeeModeAndKeyAndCanStopTheWalk(t *testing.T) {
	var q wait.Queue
	var calls []string
	entry := func(name string, ret int) *wait.Entry {
		e := new(wait.Entry)
		wait.InitFuncEntry(e, func(c *kernel.Ctx, e *wait.Entry, mode kernel.TaskState, flags int, key any) int {
			calls = append(calls, fmt.Sprintf("%s mode=%#x key=%v", name, uint32(mode), key))
			return ret
		})
		return e
	}
	a, b, x := entry("a", 1), entry("b", -1), entry("x", 1)
	wait.AddExclusive(&q, x)
	wait.Add(&q, b)
	wait.Add(&q, a) // head: a, b, then x
	if !wait.Active(&q) || wait.HasSingleSleeper(&q) {
		t.Fatal("queue with three entries: waitqueue_active false or single sleeper")
	}
	// Outside the kernel (a nil context) the walk still runs.
	if n := wait.WakeUpPoll(nil, &q, 0x41); n != 0 {
		t.Errorf("wake_up_poll returned %d, want 0 (b stopped the walk)", n)
	}
	want := []string{"a mode=0x3 key=65", "b mode=0x3 key=65"}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	wait.Remove(&q, b)
	calls = nil
	if n := wait.WakeUpInterruptiblePoll(nil, &q, 0x1); n != 1 {
		t.Errorf("wake_up_interruptible_poll returned %d, want 1 (x is exclusive)", n)
	}
	want = []string{"a mode=0x1 key=1", "x mode=0x1 key=1"}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	// Func entries stay queued (no autoremove).
	wait.Remove(&q, a)
	if !wait.HasSingleSleeper(&q) {
		t.Error("one entry left: wq_has_single_sleeper false")
	}
	wait.Remove(&q, x)
	wait.Remove(&q, x) // not queued: nothing happens
	if wait.Active(&q) || wait.HasSleeper(&q) {
		t.Error("empty queue reported active")
	}
}

func TestExclusiveWaiterInterruptedBySignalPassesTheWakeupOn(t *testing.T) {
	// Two exclusive waiters; the first is signalled. prepare_to_wait_event
	// takes it off the queue, so a later wake_up reaches the second.
	k := bootV(t)
	var q wait.Queue
	var flag, got1, got2 int64
	cond := func() bool { return flag != 0 }
	t1 := spawn(t, k, "x1", func(c *kernel.Ctx) { got1 = int64(wait.EventInterruptibleExclusive(c, &q, cond)) })
	spawn(t, k, "x2", func(c *kernel.Ctx) { got2 = int64(wait.EventInterruptibleExclusive(c, &q, cond)) })
	run(t, k)
	k.SendSignal(t1, kernel.SIGUSR1)
	run(t, k)
	flag = 1
	wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUp(c, &q) })
	if got1 != erestartsys || got2 != 0 {
		t.Errorf("x1=%d x2=%d, want -ERESTARTSYS and 0", got1, got2)
	}
}

func TestWaitWokenDoesNotSleepAfterAWakeup(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var rounds int
	var flag int64
	spawn(t, k, "woken", func(c *kernel.Ctx) {
		var e wait.Entry
		wait.InitWaitFunc(c, &e, wait.WokenWakeFunction)
		wait.Add(&q, &e)
		timeout := delay.MaxScheduleTimeout
		for flag == 0 {
			timeout = wait.WaitWoken(c, &e, kernel.TaskInterruptible, timeout)
			rounds++
		}
		wait.Remove(&q, &e)
	})
	run(t, k)
	// The wakeup comes before the condition is true: WaitWoken returns,
	// the loop sees the condition false and sleeps again.
	wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUp(c, &q) })
	flag = 1
	wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUp(c, &q) })
	if rounds != 2 {
		t.Errorf("WaitWoken rounds=%d, want 2", rounds)
	}
}

func TestWaitWokenReturnsAtOnceInAKthreadAskedToStop(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var ret int64
	var start, end uint64
	kt, err := k.CreateTask(kernel.TaskOpts{Comm: "kt", Kthread: true, CPU: -1}, func(c *kernel.Ctx) int {
		var e wait.Entry
		wait.InitWaitFunc(c, &e, wait.WokenWakeFunction)
		wait.Add(&q, &e)
		start = c.Jiffies()
		ret = wait.WaitWoken(c, &e, kernel.TaskInterruptible, 100)
		end = c.Jiffies()
		wait.Remove(&q, &e)
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	kt.Cancel(kernel.ErrKthreadStop) // what kthread_stop does to the context
	k.WakeUpProcess(kt)
	run(t, k)
	if ret != 100 || end != start {
		t.Errorf("wait_woken returned %d after %d jiffies, want 100 at once", ret, end-start)
	}
}

// TestDeclareWaitqueueEntryStaysQueuedAcrossWakeups follows LDD3's manual
// sleep: DECLARE_WAITQUEUE + add_wait_queue, then set_current_state and
// schedule in a loop; default_wake_function leaves the entry queued.
func TestDeclareWaitqueueEntryStaysQueuedAcrossWakeups(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	var flag atomic.Int32
	var wakeups int
	spawn(t, k, "ldd3", func(c *kernel.Ctx) {
		var e wait.Entry
		wait.InitEntry(&e, c.Current())
		if e.Task() != c.Current() || e.Flags() != 0 {
			t.Errorf("DECLARE_WAITQUEUE: task %v flags %#x", e.Task(), e.Flags())
		}
		wait.AddExclusive(&q, &e)
		if e.Flags() != wait.FlagExclusive {
			t.Errorf("add_wait_queue_exclusive: flags %#x", e.Flags())
		}
		for {
			kernel.SetCurrentState(c, kernel.TaskInterruptible)
			if flag.Load() >= 2 {
				break
			}
			kernel.Schedule(c)
			wakeups++
		}
		kernel.SetCurrentState(c, kernel.TaskRunning)
		wait.Remove(&q, &e)
	})
	run(t, k)
	for range 2 {
		flag.Add(1)
		if n := wake(t, k, func(c *kernel.Ctx) int { return wait.WakeUp(c, &q) }); n != 1 {
			t.Errorf("wake_up returned %d, want 1", n)
		}
	}
	if wakeups != 2 || wait.Active(&q) {
		t.Errorf("wakeups=%d active=%v, want 2 and an empty queue", wakeups, wait.Active(&q))
	}
}
