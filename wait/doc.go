// Package wait is kdefer's port of the kernel's wait queues and
// completions: wait_queue_head and wait_queue_entry, the wait_event family,
// the wake_up family, and struct completion.
//
// Kernel counterparts: include/linux/wait.h and kernel/sched/wait.c (Queue,
// Entry, Event*, WakeUp*, PrepareToWait*, FinishWait, the wake functions,
// WaitWoken), include/linux/completion.h, kernel/sched/completion.c and
// include/linux/swait.h (Completion).
//
// # Waiting
//
// The wait_event macros become functions that take the condition as a
// func() bool. They follow ___wait_event step by step: might_sleep, a
// fast-path test of the condition, then a loop of prepare_to_wait_event
// (queue the entry, set the task state; -ERESTARTSYS instead when a signal
// the state allows is pending), test the condition, schedule() or
// schedule_timeout(), test again; finish_wait. Because the task announces
// its sleeping state before it tests the condition, and a wakeup sets it
// back to TASK_RUNNING, a wakeup between the test and the sleep is never
// lost — in real time, where tasks run in parallel, as in virtual time.
// Every sleep goes through kernel.Schedule (delay.ScheduleTimeout for the
// timeout forms), so the kernel always knows the task's state.
//
// Return values are the kernel's (reference/kernel-semantics.md §10):
//
//	Event, EventIdle, EventIdleExclusive             no value
//	EventInterruptible, EventKillable, EventState…   0, or -ERESTARTSYS
//	EventTimeout, EventIdleTimeout                   0 (timed out, cond false),
//	                                                 1 (cond true once the timeout elapsed),
//	                                                 else the jiffies left (≥1)
//	EventInterruptibleTimeout, EventKillableTimeout  as EventTimeout, or -ERESTARTSYS
//
// -ERESTARTSYS is -int(kernel.ERESTARTSYS). Killable waits are interrupted
// only by SIGKILL; uninterruptible and idle waits by nothing.
//
// Completions wait in do_wait_for_common's loop: while nothing is done and
// time is left, check signal_pending_state (-ERESTARTSYS), queue at the
// tail of the completion's simple wait queue, sleep with schedule_timeout;
// then consume one done event unless complete_all made the count UINT_MAX,
// and return "timeout ?: 1".
//
// # Waking
//
// WakeUpCommon is __wake_up: it walks the queue from the head calling each
// entry's wake function under the queue's lock. Non-exclusive waiters sit
// at the head and are all woken; each exclusive waiter actually woken
// counts against nr, and the walk stops when nr reaches 0 (0: wake all).
// WakeUp wakes every non-exclusive waiter and one exclusive one; the
// Interruptible forms wake only TASK_INTERRUPTIBLE sleepers. Complete wakes
// the longest-waiting task of a completion, CompleteAll all of them.
// Wakeups never sleep and are legal in any context.
//
// # Signals, kthread_stop and the Go context
//
// A task's *kernel.Ctx is a context.Context that a signal cancels (cause
// *kernel.SignalError). An interruptible wait that returns -ERESTARTSYS
// does so because kernel.SignalPendingState is true for its state; the
// same signal has cancelled c, so Go code below it that watches
// c.Done() sees it too. kernel.FlushSignals clears both. kthread_stop
// (Task.Cancel(kernel.ErrKthreadStop)) wakes the thread from any sleep and,
// as in the kernel since it sets TIF_NOTIFY_SIGNAL, makes signal_pending()
// true for good: interruptible waits return -ERESTARTSYS, killable and
// uninterruptible ones go back to sleep unless their condition tests
// kernel.KthreadShouldStop.
//
// # Deliberate differences from Linux
//
//   - Conditions are closures called by the waiting task while other tasks
//     or interrupt handlers change what they read: the data must be atomic
//     or lock-protected (the kernel's READ_ONCE/atomic_t), or the race
//     detector will say so.
//   - The wake_up functions take the waker's *kernel.Ctx (which may be nil
//     outside the kernel) and hand it to the wake functions, since Go has
//     no "current". They return the number of exclusive waiters woken, as
//     __wake_up does in current kernels. Complete and CompleteAll need no context.
//   - A WakeFunc receives the waker's context; it finds its owner through
//     the closure it is, not container_of, so Entry has no private
//     pointer other than its task.
//   - The queue's lock is internal (a short-held sync.Mutex). The _locked
//     variants (wake_up_locked, wait_event_*_locked, wait_event_lock_irq),
//     wait_event_cmd, the hrtimeout forms, the freezable forms (there is no
//     freezer), priority entries and the bookmark walk of older kernels are not
//     provided. _io completion waits do no iowait accounting.
//   - In atomic context (softirq, hardirq, a held spinlock, preemption or
//     interrupts disabled) a wait reports the kernel's "BUG: sleeping
//     function called from invalid context" as might_sleep does. If its
//     condition already holds (or the completion is done) it returns
//     success as the kernel would; otherwise, since kdefer cannot sleep
//     there, it returns at once with the failure value that ends callers'
//     loops: -ERESTARTSYS for interruptible and killable waits, 0 for
//     uninterruptible timeout waits ("timed out"), nothing for the void
//     forms.
//   - While the kernel shuts down no task sleeps: a wait that is woken by
//     the shutdown, or would sleep during it, returns the same failure
//     value as in atomic context, so that tasks can run to their end.
//   - Before sleeping, a wait re-checks for a pending signal after setting
//     its state (the test __schedule makes), since kernel.Schedule does not.
package wait
