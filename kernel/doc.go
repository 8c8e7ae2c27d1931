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
// # Two shells around one core
//
// The kernel's bookkeeping (task states, pending softirq masks, the event
// hooks of the layers above) is driven by explicit events. Two shells drive
// it:
//
//   - Real time (the default): every task is a goroutine running in
//     parallel; each CPU has an idle goroutine (swapper/N) that sleeps until
//     its next event — tickless, it never ticks HZ times a second — then
//     takes the local timer interrupt.
//   - Virtual time (Config.Virtual): one run token passes between the task
//     goroutines so that exactly one runs at a time, in FIFO order of
//     wakeups; when every task is blocked, the driver (the goroutine in
//     Kernel.Run) moves the clock straight to the next event. The same
//     configuration gives the same log, byte for byte, and an hour of
//     simulated time takes milliseconds.
//
// # Deliberate differences from Linux
//
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
package kernel
