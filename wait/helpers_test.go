package wait_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

// erestartsys is -ERESTARTSYS as the waits return it.
const erestartsys = -int64(kernel.ERESTARTSYS)

// bootK boots a kernel from cfg (quiet, 2 CPUs unless set) for a test and
// shuts it down at the end.
func bootK(t testing.TB, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	cfg.Quiet = true
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	k, err := kernel.Boot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return k
}

// bootV boots a virtual-time kernel with 2 CPUs.
func bootV(t testing.TB) *kernel.Kernel {
	return bootK(t, kernel.Config{Virtual: true, CPUs: 2})
}

// runTask runs fn as a user task to its end, driving the virtual kernel.
func runTask(t testing.TB, k *kernel.Kernel, fn func(c *kernel.Ctx)) {
	t.Helper()
	if _, err := k.RunTask(context.Background(), "test", func(c *kernel.Ctx) int { fn(c); return 0 }); err != nil {
		t.Fatal(err)
	}
}

// spawn starts a user task.
func spawn(t testing.TB, k *kernel.Kernel, comm string, fn func(c *kernel.Ctx)) *kernel.Task {
	t.Helper()
	task, err := k.Spawn(comm, func(c *kernel.Ctx) int { fn(c); return 0 })
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// run drives a virtual kernel until nothing is runnable or pending.
func run(t testing.TB, k *kernel.Kernel) {
	t.Helper()
	if err := k.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

// rig is what a waiting task and the timer callbacks that act on it share:
// a queue, a condition flag and the waiter's task.
type rig struct {
	q      wait.Queue
	x      wait.Completion
	flag   atomic.Bool
	task   *kernel.Task
	timers []*timer.Timer
}

// at arms a timer that runs fn in softirq context delta jiffies from now.
func (r *rig) at(c *kernel.Ctx, delta uint64, fn func(c *kernel.Ctx)) {
	tm := new(timer.Timer)
	timer.Setup(c, tm, func(c *kernel.Ctx, _ *timer.Timer) { fn(c) }, 0)
	timer.Mod(c, tm, c.Jiffies()+delta)
	r.timers = append(r.timers, tm)
}

// stop cancels the rig's timers.
func (r *rig) stop(c *kernel.Ctx) {
	for _, tm := range r.timers {
		timer.DeleteSync(c, tm)
	}
}

// logLines returns the kernel log's lines.
func logLines(k *kernel.Kernel) []string {
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Text)
	}
	return out
}

func logHas(k *kernel.Kernel, sub string) bool {
	for _, l := range logLines(k) {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
