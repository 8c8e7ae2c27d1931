package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/printk"
)

// The kernel's one waiting primitive: "wait until this other context
// finishes" (wait_var_event / wake_up_var, kernel/sched/wait_bit.c). Every
// subsystem that waits for another context — timer_delete_sync and
// hrtimer_cancel waiting for a running callback, flush_work,
// cancel_work_sync, tasklet_kill, kthread_stop — waits here, so the
// scheduler always knows the waiter's state: a task in process context
// sleeps in TASK_UNINTERRUPTIBLE (ps shows D), and virtual time needs no
// special case for it.

// varTableBits sizes the hashed table of variable waiters (the kernel's
// bit_wait_table has 256 entries too).
const varTableBits = 8

// varBucket is one wait queue of the hashed table: the tasks waiting on any
// variable that hashes here, linked through Task.vwNext.
type varBucket struct {
	mu   sync.Mutex
	n    atomic.Int32 // waiters in the bucket: WakeUpVar's lock-free check
	head *Task
}

func (k *Kernel) varBucket(key unsafe.Pointer) *varBucket {
	h := (uint64(uintptr(key)) * 0x9E3779B97F4A7C15) >> (64 - varTableBits)
	return &k.vars[h]
}

func (b *varBucket) add(t *Task, key unsafe.Pointer, spin bool) {
	b.mu.Lock()
	t.vwKey, t.vwSpin = key, spin
	t.vwNext = b.head
	b.head = t
	b.n.Add(1)
	b.mu.Unlock()
}

func (b *varBucket) del(t *Task) {
	b.mu.Lock()
	for pp := &b.head; *pp != nil; pp = &(*pp).vwNext {
		if *pp == t {
			*pp = t.vwNext
			b.n.Add(-1)
			break
		}
	}
	t.vwNext, t.vwKey = nil, nil
	b.mu.Unlock()
}

// WaitVarEvent is wait_var_event(var, condition): the caller waits until
// cond() is true, testing it again each time WakeUpVar is called for the
// same variable v (only v's address matters). It reports whether cond()
// became true; false means the wait was given up (see below).
//
// In process context that may sleep, the task sleeps in
// TASK_UNINTERRUPTIBLE: signals do not end the wait, and the scheduler
// notifier (SetSchedNotifier) sees it block. In atomic context — a softirq
// or hardirq handler, a spinlock held, interrupts disabled, the idle task —
// it busy-waits as the kernel's *_sync paths do: in real time the goroutine
// spins, yielding the processor; in virtual time the waiting context leaves
// the CPU until the awaited context calls WakeUpVar, while time goes on.
//
// The condition is tested after the task's state is set and before it
// sleeps, so a WakeUpVar that follows a change that makes cond() true is
// never lost, as long as the waker changes the state first. cond() must not
// sleep.
//
// While the kernel shuts down, a sleeping wait gives up once the awaited
// context cannot run any more (false). In virtual time a goroutine that
// drives the kernel (see Kernel.Attach) waits by driving it; when nothing
// that could make cond() true can happen any more, the deadlock is reported
// ("INFO: task … blocked …") and it returns false.
func WaitVarEvent[T any](c *Ctx, v *T, cond func() bool) bool {
	return c.k.waitVar(c, unsafe.Pointer(v), cond)
}

// WakeUpVar is wake_up_var(var): it wakes every context waiting in
// WaitVarEvent on v, which then tests its condition again. It is cheap when
// nobody waits (one atomic load) and may be called from any context.
func WakeUpVar[T any](c *Ctx, v *T) { c.k.wakeVar(unsafe.Pointer(v)) }

func (k *Kernel) wakeVar(key unsafe.Pointer) {
	b := k.varBucket(key)
	if b.n.Load() == 0 {
		return
	}
	b.mu.Lock()
	for t := b.head; t != nil; t = t.vwNext {
		if t.vwKey != key {
			continue
		}
		if t.vwSpin {
			// A busy waiter: in real time it polls; in virtual time it
			// left the CPU and is made runnable again.
			if k.virtual {
				k.virt.wake(t)
			}
			continue
		}
		k.WakeUpState(t, TaskNormal)
	}
	b.mu.Unlock()
}

// canSleep reports whether c may sleep: process context, preemption and
// interrupts enabled, not the idle task.
func (c *Ctx) canSleep() bool { return c.preempt == 0 && !c.irqsOff && !c.task.idle }

func (k *Kernel) waitVar(c *Ctx, key unsafe.Pointer, cond func() bool) bool {
	if cond() {
		return true
	}
	t := c.task
	if !k.virtual {
		if c.canSleep() {
			return k.sleepOnVar(c, key, cond)
		}
		for !cond() {
			runtime.Gosched()
		}
		return true
	}
	cur := k.virt.current
	if cur == nil {
		return k.driveUntil(c, cond)
	}
	if cur == t && c.canSleep() {
		return k.sleepOnVar(c, key, cond)
	}
	return k.busyWaitVirtual(cur, key, cond)
}

// busyWaitVirtual parks cur, the goroutine holding the token in virtual
// time, until cond() is true; WakeUpVar(key) makes it test again.
func (k *Kernel) busyWaitVirtual(cur *Task, key unsafe.Pointer, cond func() bool) bool {
	b := k.varBucket(key)
	b.add(cur, key, true)
	defer b.del(cur)
	for !cond() {
		if k.dying.Load() && len(k.virt.runq) == 0 {
			return false
		}
		k.virt.park(cur)
	}
	return true
}

// driveUntil is a wait by the driver goroutine of a virtual kernel (the
// goroutine in Run, a test between Run calls, an attached task): it drives
// the kernel until cond() is true.
func (k *Kernel) driveUntil(c *Ctx, cond func() bool) bool {
	t := c.task
	shown := t.attached && c.canSleep()
	if shown {
		t.state.Store(TaskUninterruptible)
		defer t.state.Store(TaskRunning)
	}
	for !cond() {
		if k.virtStep() || cond() {
			continue
		}
		k.reportVirtualDeadlock(t)
		return false
	}
	return true
}

// sleepOnVar is the sleeping wait of WaitVarEvent: TASK_UNINTERRUPTIBLE,
// woken by WakeUpVar.
func (k *Kernel) sleepOnVar(c *Ctx, key unsafe.Pointer, cond func() bool) bool {
	t := c.task
	b := k.varBucket(key)
	b.add(t, key, false)
	defer b.del(t)
	for {
		t.state.Store(TaskUninterruptible)
		if cond() {
			break
		}
		if k.dying.Load() || t.noSleep.Load() {
			// Nothing sleeps any more: let the awaited context run
			// to its end, or give up if it cannot run.
			t.state.Store(TaskRunning)
			if k.virtual {
				if len(k.virt.runq) == 0 {
					return false
				}
				k.virt.yield(t)
			} else {
				runtime.Gosched()
			}
			continue
		}
		Schedule(c)
	}
	t.state.Store(TaskRunning)
	return true
}

// reportVirtualDeadlock reports a wait of a virtual kernel's driver that
// nothing can end: the kernel would hang here (the hung-task detector would
// report it after 120 s).
func (k *Kernel) reportVirtualDeadlock(t *Task) {
	k.warnings.Add(1)
	Printk(&t.pctx, printk.LevelErr, "INFO: task %s:%d blocked in virtual time with nothing left that can wake it (deadlock)\n", t.Comm(), t.pid)
}

// lockMutex takes one of the kernel's per-CPU locks (the softirq and
// hardirq locks) or a spinlock's mutex for context c. In virtual time a
// contended lock is waited for as the kernel spins on it: the waiter leaves
// the CPU until the holder, which may be busy-waiting on another goroutine,
// releases it (unlockMutex).
func (k *Kernel) lockMutex(c *Ctx, mu *sync.Mutex) {
	if !k.virtual {
		mu.Lock()
		return
	}
	if mu.TryLock() {
		return
	}
	key := unsafe.Pointer(mu)
	if cur := k.virt.current; cur != nil {
		if k.busyWaitVirtual(cur, key, mu.TryLock) {
			return
		}
	} else if k.driveUntil(c, mu.TryLock) {
		return
	}
	mu.Lock() // shutting down, or a reported deadlock: wait as the kernel would
}

// unlockMutex releases a lock taken with lockMutex.
func (k *Kernel) unlockMutex(mu *sync.Mutex) {
	mu.Unlock()
	if k.virtual {
		k.wakeVar(unsafe.Pointer(mu))
	}
}
