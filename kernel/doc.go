// Package kernel is kdefer's core: a userspace kernel with a time base,
// logical CPUs, tasks and the scheduler's view of them, execution contexts,
// softirqs and ksoftirqd, simulated hard interrupts, printk and the kernel's
// debugging reports. Every other kdefer package (timers, hrtimers, delays,
// wait queues, tasklets, kthreads, workqueues, modules) plugs into it.
//
// Kernel counterparts: init/main.c (boot), kernel/sched/core.c (task states,
// schedule, try_to_wake_up), include/linux/preempt.h (preempt_count),
// kernel/softirq.c (softirqs, ksoftirqd, bottom-half disabling),
// kernel/irq/ (request_irq, irq_enter/irq_exit), kernel/printk/,
// include/linux/jiffies.h and kernel/time/timekeeping.c (time base),
// kernel/sched/core.c __might_resched and __schedule_bug (the BUG reports),
// kernel/panic.c (WARN, taint), init/calibrate.c (calibrate_delay).
//
// # Execution context
//
// Go has no goroutine-local state, so "current" and the per-CPU
// preempt_count travel explicitly: every kernel API takes a *Ctx as its
// first parameter. A task's function receives its process context; softirq
// and hardirq handlers receive the interrupt contexts the kernel makes for
// them. Ctx answers in_task(), in_interrupt(), in_softirq(),
// in_serving_softirq(), in_hardirq(), in_atomic() and irqs_disabled() from a
// preempt count laid out as the kernel's, and it implements context.Context:
// a signal or a stop request cancels it (context.Cause names the first:
// *SignalError, ErrKthreadStop, ErrShutdown; KthreadShouldStop and
// SignalPending answer for each independently).
//
// # Calling convention
//
// Actions that run in an execution context are functions taking the context
// first: Printk(c, …), LocalBHDisable(c), LocalIRQSave(c), Schedule(c),
// Spin(c, ns), and in the packages above timer.Mod(c, t, expires). Questions
// about a context are Ctx methods: c.InSoftirq(), c.InAtomic(),
// c.SignalPending(), c.Dying(). Operations that need no caller context —
// booting and running the kernel, creating and waking tasks, raising
// interrupts from outside — are Kernel methods: k.Spawn, k.WakeUpProcess,
// k.GenerateIRQ.
//
// # Two shells around one core
//
// The kernel's bookkeeping (task states, pending softirq masks, the event
// hooks of the layers above) is driven by explicit events. Two shells drive
// it:
//
//   - Real time (the default): every task is a goroutine running in
//     parallel; each CPU has an idle goroutine (swapper/N) that sleeps until
//     its next event — tickless, it never ticks HZ times a second — then
//     takes the local timer interrupt. The clock is the machine's monotonic
//     clock, read from the TSC where the operating system itself trusts it
//     (see Kernel.Now), and a context remembers the jiffies value it last
//     read so that mod_timer(t, jiffies + n) reads the clock once.
//   - Virtual time (Config.Virtual): one run token passes between the task
//     goroutines and the CPUs' idle goroutines (which take the CPUs'
//     interrupts, as in real time) so that exactly one runs at a time, in
//     FIFO order of wakeups; when every task is blocked, the driver (the
//     goroutine in Kernel.Run or RunTask, or an attached goroutine) moves the
//     clock straight to the next event. A busy-wait (Spin, udelay, mdelay)
//     parks its context until the clock reaches its end while everything
//     else runs, so a task can wait for a callback that spins. The same
//     configuration gives the same log, byte for byte, and an hour of
//     simulated time takes milliseconds.
//
// # One way to block
//
// Every wait a task can be in goes through the kernel: Schedule with a task
// state (sleeps, wait queues, completions, mutexes) and WaitVarEvent for
// "until this other context finishes" (timer_delete_sync, hrtimer_cancel,
// and flush_work, tasklet_kill or kthread_stop above). So the scheduler
// always knows who is runnable: virtual time needs no special cases, a task
// listing shows D for a task in a *_sync wait, and a SchedNotifier sees
// every sleep of a flagged task (the hook of concurrency-managed
// workqueues).
//
// # Go programs as tasks
//
// Kernel.Attach makes any goroutine a user task with its own pid and comm,
// so plain Go code can use timers, completions and the other APIs with a
// process context of its own, and Detach ends it.
//
// # Deliberate differences from Linux
//
//   - A CPU busy in interrupt context (a timer callback in mdelay, say) takes
//     no further local timer interrupts until it is done: its hard hrtimers
//     wait too, where the kernel would run them nested in the softirq.
//   - A CPU is not owned by one task at a time: tasks run in parallel and
//     their CPU number selects per-CPU queues. The per-CPU guarantees that
//     matter are kept: softirqs on one CPU never run concurrently, a context
//     that disabled bottom halves holds off softirq processing on its CPU
//     until its outermost local_bh_enable, and hardirq handlers on one CPU
//     are serialised.
//   - Disabling interrupts (local_irq_disable, spin_lock_irq…) is recorded
//     for irqs_disabled() and might_sleep() but does not hold off simulated
//     hardirqs; spinlocks themselves provide the mutual exclusion.
//   - jiffies is derived from the clock when read rather than counted by a
//     periodic tick; need_resched() is never set (no preemption requests);
//     handle_softirqs therefore stops only on its restart and time limits.
//   - A BUG report does not kill the task: the sleeping call returns
//     without sleeping and the kernel goes on. A panic in a task or handler
//     is an Oops (see Oops): logged, printed to stderr when the kernel has
//     no log sink, passed to Config.OnOops, returned by RunTask for its
//     task; the task dies with -EFAULT and the kernel goes on (unless
//     Config.PanicOnOops, the panic_on_oops sysctl, is set).
//   - Interrupts raised with GenerateIRQ interrupt the CPU's idle task.
//   - CLOCK_REALTIME is the boot-time wall clock plus CLOCK_MONOTONIC (no
//     clock steps); in virtual time it starts at 2000-01-01T00:00:00Z.
//   - The delay loop is a spin on the monotonic clock; calibrate_delay
//     therefore reports lpj = TICK_NSEC (BogoMIPS 2000.00 at HZ=100, 250
//     and 1000; 2000.33 at HZ=300, by the kernel's own formula).
//   - After "BUG: scheduling while atomic" the kernel resets the preempt
//     count to PREEMPT_DISABLED; kdefer leaves it, so that the caller's
//     unlock still balances.
//   - A user task is modelled as having a handler for every signal (see
//     SendSignal); set_current_state from interrupt context is warned
//     about (the kernel changes the interrupted task's state silently).
//
// # Misuse
//
// kdefer promises that a bug the kernel books warn about gets the kernel's
// diagnostic (or, where the kernel has none, a clear Go error wrapping a
// sentinel), never a hang of the process, a crash of it, or a silent loss.
// Reports go to the kernel log (see Config.Log, Config.LogWriter and
// Log); WARN reports name the caller's Go file and line ("WARNING: CPU: 0
// PID: 5 at demo/demo.go:42 mydriver_init", or kdefer's own line when no
// user code is involved) and taint the kernel W; Config.PanicOnWarn turns
// every WARN and BUG report into a panic with a *Warning. Rate limits and
// once-only flags are the kernel's. What kdefer diagnoses, and what the
// user sees:
//
// Sleeping and execution context (package kernel, and every sleeping call
// of timer, hrtimer, delay, wait, module):
//
//   - A sleeping call (msleep, wait_event, mutex_lock, wait_for_completion,
//     schedule_timeout, usleep_range, cond_resched, free_irq…) in atomic
//     context — a timer callback, a softirq or hardirq handler, a
//     spinlock or preempt_disable section, interrupts disabled:
//     "BUG: sleeping function called from invalid context at FILE:LINE",
//     "in_atomic(): …, irqs_disabled(): …, non_block: 0, pid: …, name: …",
//     "preempt_count: …, expected: 0" and a stack, at most once per second;
//     the call returns without sleeping (a wait reports the condition as
//     false, an interruptible one -ERESTARTSYS).
//   - Schedule in atomic context: "BUG: scheduling while atomic:
//     comm/pid/0x…", "Modules linked in: …" and a stack; it returns.
//   - A contended Mutex.Lock in atomic process context: the two reports
//     above once, then it sleeps (as the kernel does). In interrupt context
//     or on an idle task it cannot sleep: the two reports, then Lock
//     returns without the mutex and the matching Unlock does nothing.
//   - SetCurrentState from interrupt context: a WARN "set_current_state()
//     called from softirq context" (hardirq).
//   - A panic in a task function or a handler: an Oops (see Oops): "Oops:
//     task comm/pid panicked: VALUE" or "Oops: handler panicked: VALUE"
//     and a stack at KERN_EMERG, taint D; printed to stderr when no log
//     sink is configured; RunTask returns the *Oops (errors.Is ErrOops);
//     the task exits with -EFAULT. A task function that ends its goroutine
//     with runtime.Goexit: "comm[pid]: task function exited its goroutine
//     (runtime.Goexit)", exit code -EFAULT.
//
// Locks, preemption, bottom halves (package kernel):
//
//   - SpinLock unlocked twice, unlocked by a task that does not hold it,
//     or taken again by its holder: "BUG: spinlock already unlocked on
//     CPU#N, comm/pid" ("wrong owner", "recursion"), " lock: …, .magic:
//     dead4ead, .owner: comm/pid, .owner_cpu: N" and a stack — for the
//     first lock bug of a kernel only (debug_locks_off).
//   - Mutex.Unlock by a task that does not hold it, or of an unlocked
//     mutex: WARN "DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)",
//     first lock bug only; the mutex is left as it is.
//   - PreemptEnable without PreemptDisable: WARN "preempt_enable: preempt
//     count underflow". LocalBHEnable without LocalBHDisable: WARN
//     "local_bh_enable() without local_bh_disable()". Either in hardirq
//     context: WARN_ONCE "local_bh_disable() called from hardirq context"
//     (local_bh_enable()).
//   - A softirq handler that returns with a changed preempt count: "huh,
//     entered softirq N NAME … with preempt_count …, exited with …?"; the
//     count is restored. RaiseSoftirq of a vector out of range: WARN_ONCE
//     "raise_softirq: bad vector N", ignored.
//
// Interrupts (package kernel):
//
//   - RequestIRQ on a taken, unshared line: "genirq: Flags mismatch irq
//     N. … (NAME) vs. … (NAME)" and an EBUSY error; a bad line, a nil
//     handler or a shared request without devID: EINVAL.
//   - FreeIRQ of a handler that is not there: WARN "Trying to free
//     already-free IRQ N". From the line's own handler: the might_sleep BUG,
//     and it does not wait for itself.
//   - A handler that enables interrupts: WARN_ONCE "irq N handler NAME
//     enabled interrupts". A bogus return value: "irq event N: bogus return
//     value X" with the handlers. A line nobody handles: "irq N: nobody
//     cared (try booting with the "irqpoll" option)", "Disabling IRQ #N".
//   - GenerateIRQ from a hardirq handler onto a CPU in hardirq context (its
//     own): not an error; the interrupt is latched and taken when that
//     CPU's handler is done, as on hardware.
//
// The kernel's lifetime (package kernel):
//
//   - Boot with a bad HZ, CPU count or negative LogCapacity: an error
//     wrapping jiffies.ErrInvalidHZ or EINVAL. CreateTask with a nil
//     function: EINVAL.
//   - Anything after Shutdown began — CreateTask, Spawn, RunTask, Run,
//     RequestIRQ, GenerateIRQ, insmod and rmmod: an error wrapping
//     ErrShutdown; sleeping calls return at once.
//   - Shutdown with tasks or handlers that do not end: "kernel: shutdown:
//     tasks still running [comm/pid …]: CAUSE" naming the tasks and the
//     idle tasks of CPUs stuck in a handler; a second Shutdown waits for
//     the first.
//   - In virtual time, RunTask of a task that blocks with nothing left to
//     wake it: "kernel: task comm/pid is blocked and no event can wake it"
//     wrapping EDEADLK.
//
// Timers (package timer): arming a timer never set up: "ODEBUG:
// assert_init not available (active state 0) object: … object type:
// timer_list hint: 0x0" and a stub callback that WARNs "stub timer called"
// if it fires; setting up a pending timer: "ODEBUG: init active …" (at most
// five ODEBUG reports per kernel); add_timer or add_timer_on on a pending
// timer: WARN_ONCE "add_timer() on a pending timer" ("add_timer_on() …");
// add_timer_on to a CPU that does not exist: WARN "add_timer_on: invalid
// cpu N"; timer_setup with unknown flags: WARN_ONCE "timer_setup: invalid
// flags 0x…"; a timer armed in a second kernel: WARN_ONCE "timer armed in
// two kernels"; timer_delete_sync from the timer's own callback: WARN
// "timer_delete_sync() would deadlock: FN is waiting for its own running
// callback", then it returns;
// from hardirq on a timer without TIMER_IRQSAFE: WARN "timer_delete_sync()
// from hardirq context on a timer without TIMER_IRQSAFE"; a callback that
// leaks a preempt count: WARN_ONCE "timer: FN preempt leak: … -> …", count
// restored.
//
// High-resolution timers (package hrtimer): starting a timer never set up:
// WARN "hrtimer_start_range_ns: hrtimer used before hrtimer_setup()", not
// started; an invalid clock: WARN "Invalid clockid N. Using MONOTONIC"; a
// nil callback: WARN_ONCE "hrtimer_setup: NULL callback function"; a SOFT
// mode bit that does not match the setup: WARN_ON_ONCE; Cancel from the
// timer's own callback: WARN
// "hrtimer_cancel: FN: cancelling a timer from its own callback would wait
// forever", returns -1; a callback that re-arms its timer into the past
// (Restart without Forward): hrtimer_interrupt's hang handling and
// "hrtimer: interrupt took N ns" once.
//
// Delays and sleeps (package delay): schedule_timeout with a negative
// timeout: "schedule_timeout: wrong timeout value …" and a stack, no
// sleep; usleep_range with max < min: WARN_ONCE "usleep_range: max (N) <
// min (M)"; a busy wait (ndelay, udelay, mdelay, Spin) holding its CPU for
// more than 20 s: the soft-lockup watchdog's "watchdog: BUG: soft lockup -
// CPU#N stuck for 22s! [comm:pid]" (repeated while it lasts), taint L; one
// too long to express (mdelay(1<<62), an overflowing ndelay): it spins
// "forever" instead of wrapping to a short delay, reported once, and
// Shutdown ends it (in virtual time the driver then finds nothing left to
// run).
//
// Attached goroutines (Kernel.Attach): a sleep from a goroutine other than
// the one that attached, or after Detach: "BUG: attached task comm/pid used
// from a goroutine other than the one that attached it" ("… used after
// Detach"), and it does not sleep; Detach twice: ErrDetached; from another
// goroutine or of a context that is not an attached task's: EINVAL; in
// virtual time, driving from a second goroutine (Run, RunTask, Attach,
// Shutdown): *DriverBusyError (EBUSY); a sleep of a driving goroutine that
// nothing can end: "INFO: task comm:pid blocked in virtual time with
// nothing left that can wake it (deadlock)", and it returns.
//
// Wait queues and completions (package wait): the sleeping forms in atomic
// context as above; a wait_event condition that panics: an Oops of the
// task, whose entry is taken off the queue first.
//
// Modules (package module; see its documentation for the rest): a module
// that leaves a misc device or cdev registered after exit: WARN "module
// NAME: misc device NAME still registered after exit; removed"; a system
// call from interrupt context: WARN "open() called from softirq context"
// and EINVAL; deregistering a misc device twice: WARN_ON; bad parameters:
// the kernel's "`VAL' invalid for parameter `NAME'", "unknown parameter
// 'NAME' ignored"…; insmod errors as kmod prints them.
//
// Not diagnosed (known gaps):
//
//   - Mutex.Lock of a mutex the task already holds sleeps forever, as
//     without lockdep (in virtual time RunTask then fails with EDEADLK;
//     Shutdown ends it). There is no lockdep: lock-order inversions and a
//     spinlock taken both in process context and in a softirq on the same
//     CPU without the _bh form (a deadlock in the kernel; kdefer runs tasks
//     in parallel and neither deadlocks nor reports) go unreported; so do
//     the spinlock "cpu recursion" and "wrong CPU" cases.
//   - LocalIRQDisable does not hold off simulated hardirqs (see above), so
//     a race with an interrupt handler that the kernel would prevent is
//     possible and not reported.
//   - A task or handler that blocks outside the kernel (a Go channel, a
//     sync.Mutex): in real time a handler wedges its CPU's interrupts and
//     Shutdown times out naming swapper/N; in virtual time the task keeps
//     the run token, and Run, RunTask and Shutdown cannot honour their ctx.
//   - A CPU spinning in a handler on anything but kdefer's busy waits (a
//     plain Go loop) gets no soft-lockup report.
//   - A Ctx used by a goroutine other than the one it was handed to, a
//     Timer, HRTimer or Queue copied after use, and SetExpires or
//     AddExpires on a queued hrtimer are not detected (-race may see the
//     first); hrtimer Forward on a queued timer returns 0 without the
//     kernel's WARN_ON.
//   - Programming errors at setup panic with a package prefix, as the Go
//     standard library does, instead of a kernel report: OpenSoftirq of a
//     vector out of range, printk.NewHandler(nil), Ring.AddSink(nil),
//     module.IOC with a field out of range, a second module.Loader with
//     another registry, jiffies helpers given an invalid HZ. In a task
//     such a panic is an Oops; elsewhere it ends the process.
//   - Mutex.Unlock by a non-owner does not release the mutex (the kernel
//     releases it after its warning).
package kernel
