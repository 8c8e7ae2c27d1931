package kthread_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

const (
	eintr  = -int(kernel.EINTR)
	ebusy  = -int(kernel.EBUSY)
	enosys = -int(kernel.ENOSYS)
)

// boot boots a quiet virtual kernel with 2 CPUs at HZ=1000.
func boot(t *testing.T) *kernel.Kernel {
	t.Helper()
	return ktest.Virtual(t, 2, 1000)
}

// do runs fn in a user task "test" and drives the kernel until it is done.
func do(t *testing.T, k *kernel.Kernel, fn func(c *kernel.Ctx)) {
	t.Helper()
	ktest.InTask(t, k, fn)
}

// idle drives the kernel until nothing is runnable and no event is pending.
func idle(t *testing.T, k *kernel.Kernel) {
	t.Helper()
	ktest.Run(t, k, 0)
}

// warnings returns the log lines of WARN and BUG reports.
func warnings(k *kernel.Kernel) []string {
	var out []string
	for _, l := range ktest.Lines(k) {
		if strings.HasPrefix(l, "WARNING:") || strings.HasPrefix(l, "BUG:") || strings.HasPrefix(l, "refcount_t") {
			out = append(out, l)
		}
	}
	return out
}

// sleeper is a thread function that sleeps interruptibly until it is asked
// to stop, and then returns ret.
func sleeper(ret int) func(c *kernel.Ctx) int {
	return func(c *kernel.Ctx) int {
		for !c.KthreadShouldStop() {
			kernel.SetCurrentState(c, kernel.TaskInterruptible)
			if c.KthreadShouldStop() {
				break
			}
			kernel.Schedule(c)
		}
		kernel.SetCurrentState(c, kernel.TaskRunning)
		return ret
	}
}
