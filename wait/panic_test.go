package wait_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/wait"
)

// TestPanicInAWaitConditionLeavesTheQueue: a task whose wait_event
// condition panics dies with an Oops, and its entry does not stay on the
// wait queue (where a later wakeup would find a dead task's stack entry).
func TestPanicInAWaitConditionLeavesTheQueue(t *testing.T) {
	k := bootV(t)
	var q wait.Queue
	calls := 0
	code, _ := k.RunTask(context.Background(), "waiter", func(c *kernel.Ctx) int {
		wait.Event(c, &q, func() bool {
			calls++
			if calls == 2 { // the test made on the queue, before sleeping
				panic(errors.New("bad condition"))
			}
			return false
		})
		return 0
	})
	if code != -int(kernel.EFAULT) {
		t.Errorf("exit code %d, want -EFAULT", code)
	}
	if wait.Active(&q) {
		t.Error("the dead task's entry is still on the wait queue")
	}
	runTask(t, k, func(c *kernel.Ctx) { wait.WakeUpAll(c, &q) })
}
