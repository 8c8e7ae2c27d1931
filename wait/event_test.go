package wait_test

import (
	"fmt"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// waitForm is one member of the wait_event family.
type waitForm struct {
	name      string
	state     kernel.TaskState // the state it sleeps in
	timed     bool             // a _timeout form: returns 0 / 1 / remaining
	void      bool             // returns nothing (the call reports 0)
	exclusive bool
	call      func(c *kernel.Ctx, q *wait.Queue, cond func() bool, timeout int64) int64
}

// interruptedBy reports whether a wait in state ends on sig.
func (f waitForm) interruptedBy(sig kernel.Signal) bool {
	if f.state&kernel.TaskInterruptible != 0 {
		return true
	}
	return f.state&kernel.TaskWakekill != 0 && sig == kernel.SIGKILL
}

func waitForms() []waitForm {
	const (
		u = kernel.TaskUninterruptible
		i = kernel.TaskInterruptible
		k = kernel.TaskKillable
		d = kernel.TaskIdle
	)
	return []waitForm{
		{"wait_event", u, false, true, false, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			wait.Event(c, q, cond)
			return 0
		}},
		{"wait_event_timeout", u, true, false, false, wait.EventTimeout},
		{"wait_event_interruptible", i, false, false, false, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			return int64(wait.EventInterruptible(c, q, cond))
		}},
		{"wait_event_interruptible_timeout", i, true, false, false, wait.EventInterruptibleTimeout},
		{"wait_event_interruptible_exclusive", i, false, false, true, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			return int64(wait.EventInterruptibleExclusive(c, q, cond))
		}},
		{"wait_event_killable", k, false, false, false, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			return int64(wait.EventKillable(c, q, cond))
		}},
		{"wait_event_killable_timeout", k, true, false, false, wait.EventKillableTimeout},
		{"wait_event_killable_exclusive", k, false, false, true, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			return int64(wait.EventKillableExclusive(c, q, cond))
		}},
		{"wait_event_idle", d, false, true, false, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			wait.EventIdle(c, q, cond)
			return 0
		}},
		{"wait_event_idle_exclusive", d, false, true, true, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			wait.EventIdleExclusive(c, q, cond)
			return 0
		}},
		{"wait_event_idle_timeout", d, true, false, false, wait.EventIdleTimeout},
		{"wait_event_idle_exclusive_timeout", d, true, false, true, wait.EventIdleExclusiveTimeout},
		{"wait_event_state(TASK_INTERRUPTIBLE)", i, false, false, false, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			return int64(wait.EventState(c, q, cond, kernel.TaskInterruptible))
		}},
		{"wait_event_state_exclusive(TASK_KILLABLE)", k, false, false, true, func(c *kernel.Ctx, q *wait.Queue, cond func() bool, _ int64) int64 {
			return int64(wait.EventStateExclusive(c, q, cond, kernel.TaskKillable))
		}},
	}
}

// outcome is what one wait did.
type outcome struct {
	ret        int64
	start, end uint64           // jiffies at the call and at the return
	slept      kernel.TaskState // the task's state seen by a timer 3 jiffies in
	log        []string
}

// waitCase runs one wait as a user task in a fresh virtual kernel: arm
// sets up the timers that act on it, then the wait runs with the rig's
// flag as its condition.
func waitCase(t *testing.T, f waitForm, timeout int64, arm func(c *kernel.Ctx, r *rig)) outcome {
	t.Helper()
	k := bootV(t)
	var o outcome
	r := &rig{}
	runTask(t, k, func(c *kernel.Ctx) {
		r.task = c.Current()
		o.start = c.Jiffies()
		r.at(c, 3, func(*kernel.Ctx) { o.slept = r.task.State() })
		arm(c, r)
		o.ret = f.call(c, &r.q, r.flag.Load, timeout)
		o.end = c.Jiffies()
		r.stop(c)
	})
	o.log = logLines(k)
	return o
}

// setAndWake is the waker's side: make the condition true, then wake_up.
func setAndWake(r *rig) func(c *kernel.Ctx) {
	return func(c *kernel.Ctx) {
		r.flag.Store(true)
		wait.WakeUp(c, &r.q)
	}
}

func signal(r *rig, sig kernel.Signal) func(c *kernel.Ctx) {
	return func(c *kernel.Ctx) { c.Kernel().SendSignal(r.task, sig) }
}

// TestWaitEventReturnValuesFollowTheKernelCaseByCase checks every
// wait_event form against §10's return values: condition already true,
// made true before the timeout, true only once the timeout elapsed, never
// true, a plain signal, SIGKILL, and a signal already pending.
func TestWaitEventReturnValuesFollowTheKernelCaseByCase(t *testing.T) {
	const timeout = 100
	for _, f := range waitForms() {
		t.Run(f.name, func(t *testing.T) {
			t.Run("cond already true", func(t *testing.T) {
				o := waitCase(t, f, timeout, func(_ *kernel.Ctx, r *rig) { r.flag.Store(true) })
				want := int64(0)
				if f.timed {
					want = timeout // the fast path returns the timeout untouched
				}
				if o.ret != want || o.end != o.start {
					t.Errorf("ret=%d after %d jiffies, want %d at once", o.ret, o.end-o.start, want)
				}
			})
			t.Run("cond true before the timeout", func(t *testing.T) {
				o := waitCase(t, f, timeout, func(c *kernel.Ctx, r *rig) { r.at(c, 10, setAndWake(r)) })
				if o.slept != f.state {
					t.Errorf("slept in %s, want %s", o.slept.String(), f.state.String())
				}
				waited := o.end - o.start
				if waited < 10 || waited > 12 {
					t.Errorf("woke after %d jiffies, want ~10", waited)
				}
				want := int64(0)
				if f.timed {
					want = int64(o.start + timeout - o.end) // schedule_timeout's remainder
					if want <= 1 {
						t.Fatalf("test broken: remaining %d", want)
					}
				}
				if o.ret != want {
					t.Errorf("ret=%d, want %d", o.ret, want)
				}
			})
			t.Run("cond not true and a pending signal", func(t *testing.T) {
				o := waitCase(t, f, timeout, func(c *kernel.Ctx, r *rig) {
					c.Kernel().SendSignal(r.task, kernel.SIGUSR1)
					r.at(c, 50, setAndWake(r))
				})
				if f.interruptedBy(kernel.SIGUSR1) {
					if o.ret != erestartsys || o.end != o.start {
						t.Errorf("ret=%d after %d jiffies, want -ERESTARTSYS at once", o.ret, o.end-o.start)
					}
				} else if o.ret < 0 || o.end-o.start < 50 {
					t.Errorf("ret=%d after %d jiffies, want success after ~50", o.ret, o.end-o.start)
				}
			})
			t.Run("cond true wins over a pending signal", func(t *testing.T) {
				o := waitCase(t, f, timeout, func(c *kernel.Ctx, r *rig) {
					c.Kernel().SendSignal(r.task, kernel.SIGKILL)
					r.flag.Store(true)
				})
				if o.ret < 0 {
					t.Errorf("ret=%d, want success", o.ret)
				}
			})
			for _, sig := range []kernel.Signal{kernel.SIGUSR1, kernel.SIGKILL} {
				t.Run(fmt.Sprintf("signal %d while sleeping", sig), func(t *testing.T) {
					o := waitCase(t, f, timeout, func(c *kernel.Ctx, r *rig) {
						r.at(c, 10, signal(r, sig))
						r.at(c, 50, setAndWake(r))
					})
					waited := o.end - o.start
					if f.interruptedBy(sig) {
						if o.ret != erestartsys || waited > 12 {
							t.Errorf("ret=%d after %d jiffies, want -ERESTARTSYS after ~10", o.ret, waited)
						}
						return
					}
					want := int64(0)
					if f.timed {
						want = int64(o.start + timeout - o.end)
					}
					if o.ret != want || waited < 50 {
						t.Errorf("ret=%d after %d jiffies, want %d after ~50 (signal %d must not end a %s wait)",
							o.ret, waited, want, sig, f.state.String())
					}
				})
			}
			if !f.timed {
				return
			}
			t.Run("cond true only after the timeout elapsed", func(t *testing.T) {
				// The condition turns true at +5 but nobody wakes the
				// queue: the waiter sleeps its full timeout, finds the
				// condition true, and reports 1, not 0.
				o := waitCase(t, f, 20, func(c *kernel.Ctx, r *rig) {
					r.at(c, 5, func(*kernel.Ctx) { r.flag.Store(true) })
				})
				if o.ret != 1 || o.end-o.start < 20 {
					t.Errorf("ret=%d after %d jiffies, want 1 after ≥20", o.ret, o.end-o.start)
				}
			})
			t.Run("timeout with cond false", func(t *testing.T) {
				o := waitCase(t, f, 20, func(*kernel.Ctx, *rig) {})
				if o.ret != 0 || o.end-o.start < 20 {
					t.Errorf("ret=%d after %d jiffies, want 0 after ≥20", o.ret, o.end-o.start)
				}
			})
			t.Run("zero timeout", func(t *testing.T) {
				o := waitCase(t, f, 0, func(*kernel.Ctx, *rig) {})
				if o.ret != 0 || o.end != o.start {
					t.Errorf("cond false: ret=%d after %d jiffies, want 0 at once", o.ret, o.end-o.start)
				}
				o = waitCase(t, f, 0, func(_ *kernel.Ctx, r *rig) { r.flag.Store(true) })
				if o.ret != 1 || o.end != o.start {
					t.Errorf("cond true: ret=%d after %d jiffies, want 1 at once", o.ret, o.end-o.start)
				}
			})
			t.Run("MAX_SCHEDULE_TIMEOUT", func(t *testing.T) {
				o := waitCase(t, f, delay.MaxScheduleTimeout, func(c *kernel.Ctx, r *rig) { r.at(c, 10, setAndWake(r)) })
				if o.ret != delay.MaxScheduleTimeout {
					t.Errorf("ret=%d, want MAX_SCHEDULE_TIMEOUT", o.ret)
				}
			})
		})
	}
}
