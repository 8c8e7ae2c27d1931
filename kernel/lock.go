package kernel

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/printk"
)

// SpinLock is spinlock_t. Taking it makes the context atomic (the preempt
// count rises, so sleeping while holding it is reported); the _bh, _irq and
// _irqsave forms also disable bottom halves or interrupts as the kernel's
// do. The zero value is an unlocked lock.
//
// Misuse gets CONFIG_DEBUG_SPINLOCK's reports (kernel/locking/
// spinlock_debug.c), printed for the first lock bug of a kernel only (the
// kernel's debug_locks_off()): "BUG: spinlock already unlocked on CPU#N,
// comm/pid" for an unlock of an unlocked lock (nothing is unlocked, the
// preempt count drops unless it is 0), "wrong owner" for an unlock by
// another task (the lock is released anyway), and "recursion" for a task
// taking a lock it holds.
//
// Differences: a contended SpinLock parks the goroutine (sync.Mutex)
// rather than spinning; the semantics seen by the holder are the same.
// The owner is the task (current); tasks of one CPU run in parallel in
// kdefer, so the "cpu recursion" and "wrong CPU" checks are not made. On
// recursion the kernel would spin forever; kdefer goes on without taking
// the lock a second time (the inner unlock then releases it).
type SpinLock struct {
	mu sync.Mutex
	// owner is the holder (lock->owner), nil when unlocked.
	owner atomic.Pointer[Task]
}

// spinlockMagic is SPINLOCK_MAGIC, shown in the reports.
const spinlockMagic uint32 = 0xdead4ead

// Lock is spin_lock().
func (l *SpinLock) Lock(c *Ctx) {
	PreemptDisable(c)
	if !l.mu.TryLock() {
		if l.owner.Load() == c.task {
			l.bug(c, "recursion", c.task)
			return
		}
		c.k.lockMutex(c, &l.mu)
	}
	l.owner.Store(c.task)
}

// Unlock is spin_unlock().
func (l *SpinLock) Unlock(c *Ctx) {
	o := l.owner.Swap(nil)
	if o == nil {
		l.bug(c, "already unlocked", nil)
		// spin_unlock's preempt_enable still runs; an underflow is
		// refused silently (lock debugging is off by now).
		if c.preempt&PreemptMask != 0 {
			c.preempt -= PreemptOffset
		}
		return
	}
	if o != c.task {
		l.bug(c, "wrong owner", o)
	}
	c.k.unlockMutex(&l.mu)
	PreemptEnable(c)
}

// TryLock is spin_trylock(): it reports whether the lock was taken.
func (l *SpinLock) TryLock(c *Ctx) bool {
	PreemptDisable(c)
	if l.mu.TryLock() {
		l.owner.Store(c.task)
		return true
	}
	PreemptEnable(c)
	return false
}

// bug is spin_bug(): the first lock bug of the kernel is reported with
// spin_dump's two lines and a stack; later ones are not (debug_locks_off).
// owner is the lock's owner (nil: none); its owner_cpu is the owner's CPU.
func (l *SpinLock) bug(c *Ctx, msg string, owner *Task) {
	k := c.k
	if !k.debugLocksOff() {
		return
	}
	name, pid, cpu := "<none>", -1, -1
	if owner != nil {
		name, pid, cpu = owner.Comm(), owner.pid, owner.cpu
	}
	lines := []string{
		fmt.Sprintf("BUG: spinlock %s on CPU#%d, %s/%d", msg, c.cpu.id, c.task.Comm(), c.task.pid),
		// %pS of the lock: a stable token, as for ODEBUG reports, so
		// that virtual-time logs stay reproducible.
		fmt.Sprintf(" lock: 000000003e8f1e72, .magic: %08x, .owner: %s/%d, .owner_cpu: %d",
			spinlockMagic, name, pid, cpu),
	}
	lines = append(lines, k.dumpStackLines(c)...)
	k.reportNoTaint(c, "BUG", printk.LevelEmerg, lines)
}

// debugLocksOff is debug_locks_off(): it turns lock debugging off and
// reports whether it was on, i.e. whether the caller should report.
func (k *Kernel) debugLocksOff() bool { return !k.locksDebugOff.Swap(true) }

// LockBH is spin_lock_bh(): local_bh_disable() then spin_lock().
func (l *SpinLock) LockBH(c *Ctx) {
	LocalBHDisable(c)
	l.Lock(c)
}

// UnlockBH is spin_unlock_bh(): the unlock may run pending softirqs.
func (l *SpinLock) UnlockBH(c *Ctx) {
	l.Unlock(c)
	LocalBHEnable(c)
}

// LockIRQ is spin_lock_irq().
func (l *SpinLock) LockIRQ(c *Ctx) {
	LocalIRQDisable(c)
	l.Lock(c)
}

// UnlockIRQ is spin_unlock_irq().
func (l *SpinLock) UnlockIRQ(c *Ctx) {
	l.Unlock(c)
	LocalIRQEnable(c)
}

// LockIRQSave is spin_lock_irqsave(): it returns the saved interrupt state.
func (l *SpinLock) LockIRQSave(c *Ctx) (flags uint64) {
	flags = LocalIRQSave(c)
	l.Lock(c)
	return flags
}

// UnlockIRQRestore is spin_unlock_irqrestore().
func (l *SpinLock) UnlockIRQRestore(c *Ctx, flags uint64) {
	l.Unlock(c)
	LocalIRQRestore(c, flags)
}

// Mutex is struct mutex: a sleeping lock. Lock may sleep, so it is only
// legal in process context (might_sleep). Waiters sleep in
// TASK_UNINTERRUPTIBLE and are handed the lock in FIFO order. The zero
// value is an unlocked mutex.
type Mutex struct {
	mu      sync.Mutex
	owner   *Task
	waiters []*Task
	// gaveUp are contexts whose Lock found the mutex held where they
	// could not sleep and went on without it; their Unlock is a no-op.
	gaveUp []*Ctx
}

// Lock is mutex_lock(). In atomic process context (a spinlock held) a
// contended Lock reports "BUG: scheduling while atomic" once and sleeps
// anyway, as the kernel does.
//
// In interrupt context (a timer callback, a softirq or hardirq handler)
// and on an idle task nothing can sleep: Lock reports the might_sleep BUG
// (rate-limited) and, if the mutex is held, "BUG: scheduling while atomic",
// then returns without the mutex (the kernel would put the interrupted
// task to sleep, wedging the CPU if the owner needs it to progress); the
// matching Unlock by that context does nothing. An uncontended Lock there
// takes the mutex after the report.
func (m *Mutex) Lock(c *Ctx) {
	MightSleep(c)
	t := c.task
	m.mu.Lock()
	if m.owner == nil {
		m.owner = t
		m.mu.Unlock()
		return
	}
	if !c.InTask() || t.idle {
		if !slices.Contains(m.gaveUp, c) { // bounded by the contexts
			m.gaveUp = append(m.gaveUp, c)
		}
		m.mu.Unlock()
		c.k.scheduleBug(c)
		return
	}
	m.waiters = append(m.waiters, t)
	reported := false
	for {
		SetCurrentState(c, TaskUninterruptible)
		if m.owner == t {
			m.mu.Unlock()
			t.state.Store(TaskRunning)
			return
		}
		m.mu.Unlock()
		if c.preempt != 0 && c.InTask() && !t.idle && !c.k.dying.Load() {
			// In atomic process context (a spinlock held) the kernel
			// reports "scheduling while atomic" and sleeps anyway; so
			// does kdefer, once, instead of retrying (and reporting)
			// in a loop that would never sleep.
			if !reported {
				c.k.scheduleBug(c)
				reported = true
			}
			c.k.blockTask(c, TaskUninterruptible)
		} else {
			Schedule(c)
		}
		m.mu.Lock()
		if c.k.dying.Load() && m.owner != t {
			// The kernel is going down: take the lock anyway.
			m.removeWaiter(t)
			m.owner = t
		}
	}
}

func (m *Mutex) removeWaiter(t *Task) {
	for i, w := range m.waiters {
		if w == t {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			return
		}
	}
}

// TryLock is mutex_trylock(): it reports whether the mutex was taken.
func (m *Mutex) TryLock(c *Ctx) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner != nil {
		return false
	}
	m.owner = c.task
	return true
}

// Unlock is mutex_unlock(). Unlocking a mutex the caller does not own, or
// one nobody holds, warns as DEBUG_MUTEXES does (for the first lock bug
// of the kernel only, debug_locks_off) and does nothing. Difference: the
// kernel releases the mutex anyway.
func (m *Mutex) Unlock(c *Ctx) {
	m.mu.Lock()
	if m.owner != c.task {
		for i, g := range m.gaveUp {
			if g == c { // the Unlock of a Lock that went on without the mutex
				m.gaveUp = append(m.gaveUp[:i], m.gaveUp[i+1:]...)
				m.mu.Unlock()
				return
			}
		}
		m.mu.Unlock()
		if c.k.debugLocksOff() {
			c.k.warn(c, 1, "DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)\n")
		}
		return
	}
	if len(m.waiters) == 0 {
		m.owner = nil
		m.mu.Unlock()
		return
	}
	next := m.waiters[0]
	m.waiters = m.waiters[1:]
	m.owner = next
	m.mu.Unlock()
	c.k.WakeUpProcess(next)
}

// IsLocked is mutex_is_locked().
func (m *Mutex) IsLocked() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owner != nil
}
