package kernel

import (
	"sync"
)

// SpinLock is spinlock_t. Taking it makes the context atomic (the preempt
// count rises, so sleeping while holding it is reported); the _bh, _irq and
// _irqsave forms also disable bottom halves or interrupts as the kernel's
// do. The zero value is an unlocked lock.
//
// Difference: a contended SpinLock parks the goroutine (sync.Mutex) rather
// than spinning; the semantics seen by the holder are the same.
type SpinLock struct {
	mu sync.Mutex
}

// Lock is spin_lock().
func (l *SpinLock) Lock(c *Ctx) {
	PreemptDisable(c)
	l.mu.Lock()
}

// Unlock is spin_unlock().
func (l *SpinLock) Unlock(c *Ctx) {
	l.mu.Unlock()
	PreemptEnable(c)
}

// TryLock is spin_trylock(): it reports whether the lock was taken.
func (l *SpinLock) TryLock(c *Ctx) bool {
	PreemptDisable(c)
	if l.mu.TryLock() {
		return true
	}
	PreemptEnable(c)
	return false
}

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
}

// Lock is mutex_lock().
func (m *Mutex) Lock(c *Ctx) {
	MightSleep(c)
	t := c.task
	m.mu.Lock()
	if m.owner == nil {
		m.owner = t
		m.mu.Unlock()
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

// Unlock is mutex_unlock(). Unlocking a mutex the caller does not own
// warns (DEBUG_MUTEXES) and does nothing.
func (m *Mutex) Unlock(c *Ctx) {
	m.mu.Lock()
	if m.owner != c.task {
		m.mu.Unlock()
		c.k.warn(c, 1, "DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)\n")
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
