// Package kthread is kdefer's kernel threads and kthread workers
// (kernel/kthread.c, include/linux/kthread.h, and the freezer of
// kernel/freezer.c and kernel/power/process.c): threads created sleeping
// that run only once woken, stopped with Stop (kthread_stop), parked and
// unparked, frozen and thawed; and kthread_worker, a kernel thread that
// runs the work items queued to it one at a time, in FIFO order.
//
// # Calling convention
//
// Every function takes the caller's execution context first, where the
// kernel consults current: kthread.Create(c, fn, "name%d", i) is
// kthread_create(fn, data, "name%d", i). The thread function receives its
// own process context; its data is whatever the Go closure captures. Names
// are formatted with Go's fmt verbs (%d, %s, %x …), as kernel.Printk's
// are, and truncated to 15 bytes (TASK_COMM_LEN); FullName keeps the whole
// name, as the kernel's kthread->full_name does (v6.x).
//
// # Lifetime
//
// A thread is a kernel.Task created with kernel.Kernel.CreateTask: a child
// of kthreadd (pid 2) that sleeps in TASK_UNINTERRUPTIBLE until
// wake_up_process (Kernel.WakeUpProcess, or Run which does both). When
// woken it runs its function, unless Stop came first: then it exits with
// -EINTR without running it, as the kernel's kthread() does. The value the
// function returns is the thread's exit code, which Stop returns.
//
// A thread that returns on its own is reaped at once (kthreadd ignores
// SIGCHLD), and its task_struct goes with it unless somebody holds a
// reference: call GetTaskStruct before the thread can exit and StopPut
// (kthread_stop_put) to stop it, as the kernel requires. Stop on a thread
// that was reaped while nobody held a reference is a use-after-free in the
// kernel; kdefer prints the kernel's refcount report ("refcount_t: addition
// on 0; use-after-free.") and still returns the exit code it remembers.
//
// # Waits
//
// Stop, Park, FlushWork, FlushWorker and the cancel-sync functions wait the
// kernel's way (see package kernel, "One way to block"): the caller sleeps
// in TASK_UNINTERRUPTIBLE (ps shows D) through kernel.WaitTaskExit,
// kernel.WaitVarEvent or a wait.Completion, never on a Go channel, so
// virtual time works and a task listing is right.
//
// # Signals
//
// Kernel threads ignore every signal (kthreadd's ignore_signals) unless
// they call kernel.AllowSignal; a signal is sent by pid with
// Kernel.FindTask and Kernel.SendSignal (kill_pid). Stop sets
// TIF_NOTIFY_SIGNAL as the kernel does, so c.SignalPending() is true in a
// thread asked to stop and its interruptible sleeps end.
//
// # Freezer
//
// Kernel threads are not freezable (PF_NOFREEZE) until they call
// SetFreezable. FreezeKernelThreads (freeze_kernel_threads) asks every
// freezable thread of the kernel to freeze — it is woken and must call
// TryToFreeze (or FreezableShouldStop) — and waits until all of them sit
// in the refrigerator in TASK_FROZEN (ps shows D), giving up after 20
// seconds as the kernel does; ThawKernelThreads (thaw_kernel_threads)
// lets them go.
//
// # Tracepoints
//
// sched:sched_kthread_stop and sched:sched_kthread_stop_ret fire in Stop;
// sched:sched_kthread_work_queue_work when a work is inserted in a
// worker's list, sched:sched_kthread_work_execute_start and _end around
// each work function.
//
// # Deliberate differences from Linux
//
//   - Creation does not go through kthreadd: the task is created at once
//     (kthreadd is still its parent). The creator therefore never sleeps;
//     Create still starts with might_sleep(), and fails with -EINTR when
//     the creator has a fatal signal pending (the kernel's killable wait
//     for kthreadd would end so).
//   - There is no CPU affinity mask: a thread runs on one CPU, picked
//     round-robin unless Bind (or CreateOnCPU) chose one before it first
//     ran. Unpark does not rebind (nothing can move a thread).
//   - Misuse that would hang or crash the kernel is reported instead:
//     Stop or Park of the calling thread itself, Park of a thread that
//     exits instead of parking (the kernel would wait forever: kdefer
//     returns -ENOSYS), Stop of a reaped thread (above).
//   - The freezer freezes kernel threads only (pm_nosig_freezing: there
//     is no freezing of user tasks), and every freezable thread is woken
//     to freeze: sleeps in TASK_FREEZABLE are not frozen in place.
//   - FlushWork on a delayed work whose timer is still pending waits for
//     the timer to queue the work and for the work to run; the kernel
//     would put its flush item on the delayed list, where nothing ever
//     runs it, and wait forever.
//   - CreateWorker leaves the worker's thread sleeping until RunWorker or
//     WakeUpProcess, as kthread_create_worker does since v6.13 (earlier
//     kernels woke it).
package kthread
