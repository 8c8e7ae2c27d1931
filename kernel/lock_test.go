package kernel_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// count returns how many log lines start with prefix.
func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestSpinLockDoubleUnlockReportsAndGoesOn: unlocking a spinlock twice is
// debug spinlocks' "already unlocked" report, not a crash of the process;
// the preempt count stays balanced and the lock works afterwards.
func TestSpinLockDoubleUnlockReportsAndGoesOn(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var l kernel.SpinLock
	var preempt uint32
	relocked := false
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		l.Lock(c)
		l.Unlock(c)
		l.Unlock(c)
		preempt = c.PreemptCount()
		l.Lock(c)
		relocked = true
		l.Unlock(c)
	})
	lines := logText(k)
	if !regexp.MustCompile(`^BUG: spinlock already unlocked on CPU#0, test/\d+$`).MatchString(lines[0]) {
		t.Fatalf("first line = %q", lines[0])
	}
	if want := " lock: 000000003e8f1e72, .magic: dead4ead, .owner: <none>/-1, .owner_cpu: -1"; lines[1] != want {
		t.Errorf("second line = %q, want %q", lines[1], want)
	}
	if preempt != 0 || !relocked {
		t.Errorf("preempt count after the double unlock = %#x, relocked %t; want 0, true", preempt, relocked)
	}
	if k.Tainted() != 0 {
		t.Errorf("tainted %#x; spin_bug does not taint", k.Tainted())
	}
}

// TestSpinLockUnlockByAnotherTaskReportsWrongOwner: the unlock still
// happens, as in the kernel, after the "wrong owner" report.
func TestSpinLockUnlockByAnotherTaskReportsWrongOwner(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var l kernel.SpinLock
	ktest.InTask(t, k, func(c *kernel.Ctx) { l.Lock(c); kernel.PreemptEnable(c) })
	ktest.InTask(t, k, func(c *kernel.Ctx) { kernel.PreemptDisable(c); l.Unlock(c) })
	retaken := false
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if l.TryLock(c) {
			retaken = true
			l.Unlock(c)
		}
	})
	lines := logText(k)
	if !regexp.MustCompile(`^BUG: spinlock wrong owner on CPU#0, test/\d+$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^ lock: 000000003e8f1e72, .magic: dead4ead, .owner: test/\d+, .owner_cpu: 0$`).MatchString(lines[1]) {
		t.Fatalf("report = %q", lines[:2])
	}
	if !retaken {
		t.Error("the lock stayed locked after the wrong-owner unlock")
	}
}

// TestSpinLockRecursionIsReportedNotADeadlock: taking a spinlock the task
// already holds is the "recursion" report; kdefer then goes on instead of
// spinning forever, and the unlocks balance.
func TestSpinLockRecursionIsReportedNotADeadlock(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 1, Quiet: true, Virtual: virtual})
		var l kernel.SpinLock
		var preempt uint32
		ktest.InTask(t, k, func(c *kernel.Ctx) {
			l.Lock(c)
			l.Lock(c)
			l.Unlock(c)
			l.Unlock(c)
			preempt = c.PreemptCount()
		})
		lines := logText(k)
		if count(lines, "BUG: spinlock recursion on CPU#0, test/") != 1 {
			t.Errorf("virtual=%t: log = %q", virtual, lines)
		}
		if preempt != 0 {
			t.Errorf("virtual=%t: preempt count = %#x after balanced lock/unlock pairs", virtual, preempt)
		}
	}
}

// TestOnlyTheFirstLockBugIsReported: as debug_locks_off() makes it, the
// first lock debugging report turns lock debugging off for the kernel.
func TestOnlyTheFirstLockBugIsReported(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var l kernel.SpinLock
	var m kernel.Mutex
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		l.Unlock(c)
		l.Unlock(c)
		m.Unlock(c)
	})
	lines := logText(k)
	if n := count(lines, "BUG: spinlock"); n != 1 {
		t.Errorf("%d spinlock reports, want 1", n)
	}
	if has(lines, "DEBUG_LOCKS_WARN_ON") {
		t.Errorf("mutex report after lock debugging was turned off:\n%s", strings.Join(lines, "\n"))
	}
}

// TestMutexUnlockOfUnlockedMutexWarnsOnce: mutex_unlock of a mutex nobody
// holds is DEBUG_MUTEXES' warning, not a crash.
func TestMutexUnlockOfUnlockedMutexWarnsOnce(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var m kernel.Mutex
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		m.Unlock(c)
		m.Lock(c)
		m.Unlock(c)
	})
	lines := logText(k)
	if !has(lines, "DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)") {
		t.Errorf("log = %q", lines)
	}
	if m.IsLocked() {
		t.Error("mutex left locked")
	}
}
