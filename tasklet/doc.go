// Package tasklet is kdefer's tasklets (kernel/softirq.c,
// include/linux/interrupt.h): deferred functions that run in softirq context
// — TASKLET_SOFTIRQ, or HI_SOFTIRQ for HiSchedule — on the CPU that
// scheduled them.
//
// The kernel's rules hold: a tasklet scheduled several times before it runs
// runs once; scheduled while it runs (on another CPU, or from its own
// callback) it runs again afterwards, never concurrently with itself; a
// disabled tasklet that is scheduled stays on its CPU's list — the tasklet
// softirq puts it back and raises itself again, busy re-polling — and runs
// once it is enabled. Lists are FIFO per CPU. Callbacks must not sleep:
// sleeping there gets the kernel's "BUG: sleeping function called from
// invalid context" report.
//
// Tasklets are deprecated in the kernel in favour of threaded interrupts and
// BH workqueues (WQ_BH, v6.9); kdefer has them because the seed documents
// and many drivers use them.
//
// Differences from Linux: the per-CPU lists are guarded by a lock rather
// than by disabling interrupts, since kdefer's contexts of one CPU may run in
// parallel. In virtual time ksoftirqd's busy re-polling of a disabled or
// running tasklet lets time move on instead of spinning with the clock
// stopped (see package kernel). Enabling a tasklet more often than it was
// disabled is warned about (the kernel lets the count go negative). Waits
// (Disable, Kill) go through the kernel's wait primitive: a task sleeps in
// TASK_UNINTERRUPTIBLE, as since v5.13.
package tasklet
