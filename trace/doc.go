// Package trace is kdefer's event tracing core: static tracepoints with the
// kernel's names and output formats, per-CPU ring buffers of fixed-size
// records, enabling per event and per system, and a reader that prints
// what `trace-cmd report` prints. It sits at the bottom of kdefer beside
// printk (it imports no other kdefer package), because the kernel fires
// tracepoints from its lowest layers: kernel owns one Tracer per booted
// kernel (kernel.Kernel.Tracer) and the timer, hrtimer, softirq, IRQ and
// scheduler code fire events into it.
//
// Kernel counterparts: include/trace/events/timer.h, irq.h and sched.h (the
// events, their fields and TP_printk formats), include/linux/tracepoint.h
// (a tracepoint is a static-key test in line at the call site, the
// recording out of line: here Tracer.On and Tracer.Emit),
// kernel/trace/ring_buffer.c (per-CPU rings in overwrite mode with lost
// counts), kernel/trace/trace_events.c (set_event and the
// events/SYSTEM/enable switches: Tracer.Enable), and trace-cmd's
// tracecmd/trace-read.c with libtraceevent (the report layout).
//
// # Events
//
// timer: timer_init, timer_start, timer_expire_entry, timer_expire_exit,
// timer_cancel, hrtimer_setup, hrtimer_start, hrtimer_expire_entry,
// hrtimer_expire_exit, hrtimer_cancel. irq: softirq_raise, softirq_entry,
// softirq_exit, irq_handler_entry, irq_handler_exit, tasklet_entry,
// tasklet_exit. sched: sched_wakeup, sched_switch, sched_kthread_stop,
// sched_kthread_stop_ret, sched_kthread_work_queue_work,
// sched_kthread_work_execute_start, sched_kthread_work_execute_end.
// workqueue: workqueue_queue_work, workqueue_activate_work,
// workqueue_execute_start, workqueue_execute_end. The formats are those of
// v6.17; timer_start has bucket_expiry as since v6.6 (older kernels
// recorded expires and flags only), hrtimer_setup is v6.15's name for
// hrtimer_init, and the workqueue events have mainline's layout of v6.10
// on (workqueue_queue_work names the workqueue, "workqueue=%s", where old
// kernels printed its address, and its CPUs are ints, so an unbound pool's
// cpu prints -1; workqueue_activate_work and workqueue_execute_end carry
// the function, which older kernels did not record).
//
// # Probes and files
//
// Tracer.AttachProbe hooks a function to an event beside the rings, as
// perf and BPF attach to a tracepoint (register_trace_<event>): in-process
// counters (package stats) use it. A Recorder drains the rings into a
// trace file (kdefer's trace.dat: see FileMagic for the layout) that keeps
// the interned strings and function names the records need, so that
// ReadFile and File.Report print it in another process as the live
// Tracer.Report would.
//
// # Cost
//
// A disabled tracepoint is one atomic load of the enable mask and a branch,
// inlined at the call site. An enabled one takes its CPU's ring lock,
// reads the clock and copies a 112-byte record; it allocates nothing.
// Functions and objects are recorded as their addresses and named only
// when formatting; strings (an IRQ handler's name) are interned once per
// Tracer and recorded as their index.
//
// # Deliberate differences
//
//   - kdefer does not give a CPU to one task at a time, so there is no
//     real context switch to trace. sched_switch is recorded at the two
//     points where kdefer knows a task stops and starts running: when a
//     task blocks in Schedule, "prev" is that task (prev_state its sleep
//     state, S or D) and "next" is its CPU's idle task swapper/N; when it
//     runs again (including its first run), "prev" is swapper/N (state R)
//     and "next" is the task, and the record's common fields are those of
//     swapper/N, as the kernel records a switch in prev's context. A task
//     that exits records prev_state X. So each task's own run/sleep
//     intervals are exact, but a CPU's records do not form one sequence of
//     switches: other tasks of that CPU may run meanwhile. Yields
//     (cond_resched) record nothing.
//   - sched_wakeup is recorded on the woken task's CPU as that CPU's idle
//     task (as the kernel records a wakeup queued to an idle CPU), because
//     the waker is not known where kdefer wakes tasks.
//   - Calls that take no context (timer_delete, timer_shutdown,
//     hrtimer_try_to_cancel, raising a softirq on another CPU) record
//     comm <...> and pid -1, on the CPU of the object concerned;
//     timer_setup with a nil context records no timer_init.
//   - hrtimer_setup is recorded at the timer's first start after setup, in
//     that context: hrtimer.Setup takes no context to record in.
//   - Pointers print as stable tokens in the kernel's hashed-%p shape, not
//     as addresses (trace-cmd prints raw 0x… addresses): see Formatter.
//   - Times always print as seconds.microseconds; trace-cmd prints a bare
//     microsecond count for times under one second.
//   - Records also carry a sequence number, to order records with equal
//     timestamps (virtual time does not advance while tasks run).
package trace
