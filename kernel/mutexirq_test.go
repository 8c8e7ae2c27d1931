package kernel_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// TestTimerCallbackTakingAMutexHeldByItsTaskDoesNotWedgeTheCPU: a timer
// callback (softirq context) takes a kernel.Mutex that the task which
// armed the timer holds while it sleeps (1 CPU). Sleeping is impossible
// there: the kernel reports it once — might_sleep's BUG and "scheduling
// while atomic" — and the callback goes on without the mutex, so the
// CPU's timers keep running and the task's msleep ends. In both time
// modes; the test's timeout bounds the hang this used to be.
func TestTimerCallbackTakingAMutexHeldByItsTaskDoesNotWedgeTheCPU(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 1, HZ: 1000, Quiet: true, Virtual: virtual})
		var m kernel.Mutex
		var tm timer.Timer
		ran := false
		ktest.InTask(t, k, func(c *kernel.Ctx) {
			timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
				m.Lock(c)
				ran = true
				m.Unlock(c)
			}, 0)
			m.Lock(c)
			timer.Mod(c, &tm, c.Jiffies()+1)
			delay.Msleep(c, 5)
			m.Unlock(c)
			timer.DeleteSync(c, &tm)
		})
		lines := logText(k)
		sleeping := count(lines, "BUG: sleeping function called from invalid context at kernel/mutexirq_test.go:")
		atomic := count(lines, "BUG: scheduling while atomic: swapper/0/0/")
		if !ran || sleeping != 1 || atomic != 1 || has(lines, "DEBUG_LOCKS_WARN_ON") {
			t.Errorf("virtual=%t: callback ran %t; %d might_sleep and %d scheduling-while-atomic reports, want 1 and 1:\n%s",
				virtual, ran, sleeping, atomic, strings.Join(lines, "\n"))
		}
		if m.IsLocked() {
			t.Errorf("virtual=%t: mutex left locked", virtual)
		}
	}
}
