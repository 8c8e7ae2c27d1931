package wait_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// completionForm is one of the wait_for_completion functions.
type completionForm struct {
	name  string
	state kernel.TaskState
	timed bool
	call  func(c *kernel.Ctx, x *wait.Completion, timeout int64) int64
}

func (f completionForm) interruptedBy(sig kernel.Signal) bool {
	if f.state&kernel.TaskInterruptible != 0 {
		return true
	}
	return f.state&kernel.TaskWakekill != 0 && sig == kernel.SIGKILL
}

func completionForms() []completionForm {
	const (
		u = kernel.TaskUninterruptible
		i = kernel.TaskInterruptible
		k = kernel.TaskKillable
	)
	return []completionForm{
		{"wait_for_completion", u, false, func(c *kernel.Ctx, x *wait.Completion, _ int64) int64 { x.WaitFor(c); return 0 }},
		{"wait_for_completion_timeout", u, true, func(c *kernel.Ctx, x *wait.Completion, t int64) int64 { return x.WaitForTimeout(c, t) }},
		{"wait_for_completion_io", u, false, func(c *kernel.Ctx, x *wait.Completion, _ int64) int64 { x.WaitForIO(c); return 0 }},
		{"wait_for_completion_io_timeout", u, true, func(c *kernel.Ctx, x *wait.Completion, t int64) int64 { return x.WaitForIOTimeout(c, t) }},
		{"wait_for_completion_interruptible", i, false, func(c *kernel.Ctx, x *wait.Completion, _ int64) int64 {
			return int64(x.WaitForInterruptible(c))
		}},
		{"wait_for_completion_interruptible_timeout", i, true, func(c *kernel.Ctx, x *wait.Completion, t int64) int64 { return x.WaitForInterruptibleTimeout(c, t) }},
		{"wait_for_completion_killable", k, false, func(c *kernel.Ctx, x *wait.Completion, _ int64) int64 {
			return int64(x.WaitForKillable(c))
		}},
		{"wait_for_completion_killable_timeout", k, true, func(c *kernel.Ctx, x *wait.Completion, t int64) int64 { return x.WaitForKillableTimeout(c, t) }},
	}
}

// completionCase runs one wait for the rig's completion in a fresh virtual
// kernel and reports, besides the outcome, whether the completion is still
// done afterwards (completion_done).
func completionCase(t *testing.T, f completionForm, timeout int64, arm func(c *kernel.Ctx, r *rig)) (outcome, bool) {
	t.Helper()
	k := bootV(t)
	var o outcome
	var done bool
	r := &rig{}
	runTask(t, k, func(c *kernel.Ctx) {
		r.task = c.Current()
		o.start = c.Jiffies()
		r.at(c, 3, func(*kernel.Ctx) { o.slept = r.task.State() })
		arm(c, r)
		o.ret = f.call(c, &r.x, timeout)
		o.end = c.Jiffies()
		r.stop(c)
		done = r.x.Done()
	})
	return o, done
}

func complete(r *rig) func(*kernel.Ctx) { return func(*kernel.Ctx) { r.x.Complete() } }

// TestWaitForCompletionReturnValuesFollowTheKernelCaseByCase checks every
// wait_for_completion form against §10.2: done before the wait (consumed),
// completed while waiting, completed as the timeout runs out (1), timed
// out (0), signals, and zero timeouts.
func TestWaitForCompletionReturnValuesFollowTheKernelCaseByCase(t *testing.T) {
	const timeout = 100
	for _, f := range completionForms() {
		t.Run(f.name, func(t *testing.T) {
			t.Run("complete before the wait is consumed", func(t *testing.T) {
				o, done := completionCase(t, f, timeout, func(_ *kernel.Ctx, r *rig) { r.x.Complete() })
				want := int64(0)
				if f.timed {
					want = timeout // "timeout ?: 1" with nothing slept
				}
				if o.ret != want || o.end != o.start || done {
					t.Errorf("ret=%d after %d jiffies, done after=%v; want %d at once, consumed", o.ret, o.end-o.start, done, want)
				}
			})
			t.Run("complete while waiting", func(t *testing.T) {
				o, done := completionCase(t, f, timeout, func(c *kernel.Ctx, r *rig) { r.at(c, 10, complete(r)) })
				if o.slept != f.state {
					t.Errorf("slept in %s, want %s", o.slept.String(), f.state.String())
				}
				want := int64(0)
				if f.timed {
					want = int64(o.start + timeout - o.end)
				}
				if waited := o.end - o.start; o.ret != want || waited < 10 || waited > 12 || done {
					t.Errorf("ret=%d after %d jiffies, done after=%v; want %d after ~10, consumed", o.ret, waited, done, want)
				}
			})
			t.Run("complete_all lets the wait pass without consuming", func(t *testing.T) {
				o, done := completionCase(t, f, timeout, func(c *kernel.Ctx, r *rig) { r.at(c, 10, func(*kernel.Ctx) { r.x.CompleteAll() }) })
				if o.ret < 0 || !done {
					t.Errorf("ret=%d, done after=%v; want success and still done", o.ret, done)
				}
			})
			t.Run("pending signal", func(t *testing.T) {
				o, _ := completionCase(t, f, timeout, func(c *kernel.Ctx, r *rig) {
					c.Kernel().SendSignal(r.task, kernel.SIGUSR1)
					r.at(c, 50, complete(r))
				})
				if f.interruptedBy(kernel.SIGUSR1) {
					if o.ret != erestartsys || o.end != o.start {
						t.Errorf("ret=%d after %d jiffies, want -ERESTARTSYS at once", o.ret, o.end-o.start)
					}
				} else if o.ret < 0 || o.end-o.start < 50 {
					t.Errorf("ret=%d after %d jiffies, want success after ~50", o.ret, o.end-o.start)
				}
			})
			t.Run("done wins over a pending signal", func(t *testing.T) {
				o, done := completionCase(t, f, timeout, func(c *kernel.Ctx, r *rig) {
					c.Kernel().SendSignal(r.task, kernel.SIGKILL)
					r.x.Complete()
				})
				if o.ret < 0 || done {
					t.Errorf("ret=%d done after=%v, want success, consumed", o.ret, done)
				}
			})
			for _, sig := range []kernel.Signal{kernel.SIGUSR1, kernel.SIGKILL} {
				t.Run(fmt.Sprintf("signal %d while sleeping", sig), func(t *testing.T) {
					o, _ := completionCase(t, f, timeout, func(c *kernel.Ctx, r *rig) {
						r.at(c, 10, signal(r, sig))
						r.at(c, 50, complete(r))
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
						t.Errorf("ret=%d after %d jiffies, want %d after ~50", o.ret, waited, want)
					}
				})
			}
			if !f.timed {
				return
			}
			t.Run("timed out", func(t *testing.T) {
				o, _ := completionCase(t, f, 20, func(*kernel.Ctx, *rig) {})
				if o.ret != 0 || o.end-o.start < 20 {
					t.Errorf("ret=%d after %d jiffies, want 0 after ≥20", o.ret, o.end-o.start)
				}
			})
			t.Run("complete as the timeout runs out", func(t *testing.T) {
				// complete() at the jiffy the timeout expires: the wait
				// has no time left but is done, so it reports 1.
				o, done := completionCase(t, f, 20, func(c *kernel.Ctx, r *rig) { r.at(c, 20, complete(r)) })
				if o.ret != 1 || o.end-o.start < 20 || done {
					t.Errorf("ret=%d after %d jiffies, done after=%v; want 1 after ≥20, consumed", o.ret, o.end-o.start, done)
				}
			})
			t.Run("zero timeout", func(t *testing.T) {
				o, _ := completionCase(t, f, 0, func(_ *kernel.Ctx, r *rig) { r.x.Complete() })
				if o.ret != 1 || o.end != o.start {
					t.Errorf("done: ret=%d after %d jiffies, want 1 at once", o.ret, o.end-o.start)
				}
				o, _ = completionCase(t, f, 0, func(*kernel.Ctx, *rig) {})
				if o.ret != 0 || o.end-o.start > 1 {
					t.Errorf("not done: ret=%d after %d jiffies, want 0 within a jiffy", o.ret, o.end-o.start)
				}
			})
		})
	}
}

func TestCompleteCountsAndCompleteAllStaysDoneUntilReinit(t *testing.T) {
	var x wait.Completion // zero value: init_completion
	if x.Done() || x.TryWaitFor() {
		t.Fatal("fresh completion is done")
	}
	x.Complete()
	x.Complete()
	if !x.Done() {
		t.Fatal("completion_done false after complete")
	}
	got := []bool{x.TryWaitFor(), x.TryWaitFor(), x.TryWaitFor()}
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("try_wait_for_completion after two complete() = %v, want %v", got, want)
	}
	x.CompleteAll()
	x.Complete() // done stays UINT_MAX
	for i := range 1000 {
		if !x.TryWaitFor() {
			t.Fatalf("try_wait_for_completion #%d after complete_all failed", i)
		}
	}
	k := bootV(t)
	for i := range 5 {
		runTask(t, k, func(c *kernel.Ctx) {
			if r := x.WaitForInterruptibleTimeout(c, 10); r != 10 {
				t.Errorf("wait #%d after complete_all = %d, want 10", i, r)
			}
		})
	}
	if !x.Done() {
		t.Error("complete_all consumed")
	}
	x.Reinit()
	if x.Done() || x.TryWaitFor() {
		t.Error("done after reinit_completion")
	}
	x.Complete()
	x.Init()
	if x.Done() {
		t.Error("done after init_completion")
	}
}

func TestCompleteWakesWaitersInFIFOOrderAndCompleteAllWakesTheRest(t *testing.T) {
	k := bootV(t)
	var x wait.Completion
	var mu sync.Mutex
	var order []string
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("w%d", i)
		spawn(t, k, name, func(c *kernel.Ctx) {
			x.WaitFor(c)
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		})
	}
	run(t, k)
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		o := order
		order = nil
		return o
	}
	x.Complete()
	run(t, k)
	if got := take(); !slices.Equal(got, []string{"w1"}) {
		t.Errorf("complete() woke %v, want [w1]", got)
	}
	x.Complete()
	x.Complete()
	run(t, k)
	if got := take(); !slices.Equal(got, []string{"w2", "w3"}) {
		t.Errorf("two complete() woke %v, want [w2 w3]", got)
	}
	if x.Done() {
		t.Error("every complete() was consumed, but completion_done is true")
	}
	x.CompleteAll()
	run(t, k)
	if got := take(); !slices.Equal(got, []string{"w4"}) {
		t.Errorf("complete_all() woke %v, want [w4]", got)
	}
}
