// Package hrtimer is kdefer's port of the kernel's high-resolution timers:
// struct hrtimer and kernel/time/hrtimer.c, with the sleeper helpers of
// kernel/time/sleep_timeout.c (schedule_hrtimeout_range) and the hrtimer
// part of /proc/timer_list (kernel/time/timer_list.c).
//
// An HRTimer fires at a nanosecond time on one of four clocks
// (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_TAI), either in
// hard interrupt context (the default, or ModeHard) or in the
// HRTIMER_SOFTIRQ softirq (ModeSoft). Timers are embedded in the user's
// structs; starting, cancelling and forwarding them allocate nothing.
//
//	type blinker struct {
//		timer hrtimer.HRTimer
//		on    bool
//	}
//
//	func (b *blinker) tick(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
//		b.on = !b.on
//		hrtimer.ForwardNow(t, 500*1000) // every 500 µs
//		return hrtimer.Restart
//	}
//
//	hrtimer.Setup(&b.timer, b.tick, hrtimer.ClockMonotonic, hrtimer.ModeRel)
//	hrtimer.Start(c, &b.timer, 500*1000, hrtimer.ModeRel)
//	…
//	hrtimer.Cancel(c, &b.timer) // the callback is not running once this returns
//
// # Structure
//
// Each kernel has, per CPU, an hrtimer_cpu_base with eight clock bases
// (HRTIMER_BASE_MONOTONIC, REALTIME, BOOTTIME, TAI and their _SOFT twins),
// each a queue ordered by hard expiry and, for equal expiries, by enqueue
// order (the kernel's timerqueue). The package registers a
// kernel.ClockEvents hook: its NextEvent is the earliest hard expiry on
// the CPU (the clock-event device's programming), and its Tick is
// hrtimer_interrupt, which raises HRTIMER_SOFTIRQ when a soft timer is due
// and expires the hard bases. The softirq handler expires the soft bases.
// The state is created the first time a kernel uses hrtimers.
//
// Expiry follows __hrtimer_run_queues: timers are expired in queue order
// while the base's time has reached their soft expiry, stopping at the
// first timer whose soft expiry lies ahead. So a range timer (StartRangeNs)
// fires as soon as any interrupt runs the queue after its soft expiry —
// another hrtimer, a timer-wheel tick, any local timer interrupt — and at
// its hard expiry otherwise, saving the wakeups of timers that tolerate
// slack.
//
// # Deliberate differences from Linux
//
//   - Contexts: functions that need the current CPU or task take the
//     caller's *kernel.Ctx first. Callbacks receive the interrupt context
//     they run in (hardirq or softirq) and the timer; to reach the
//     embedding struct use a method value or closure as the callback.
//   - CPU choice: a started timer goes to the caller's CPU, or stays on its
//     CPU while its callback runs (timer migration disabled; NO_HZ
//     migration to a busy CPU is not modelled and PINNED changes nothing).
//   - The clocks: CLOCK_REALTIME is kdefer's boot-time wall clock plus
//     CLOCK_MONOTONIC and never steps, so clock_was_set and its reprogramming
//     do not exist; CLOCK_TAI reads as CLOCK_REALTIME (TAI offset 0) and
//     CLOCK_BOOTTIME as CLOCK_MONOTONIC (no suspend). Every CPU runs in
//     high-resolution mode: the resolution is 1 ns, there is no
//     CONFIG_TIME_LOW_RES rounding and no periodic hrtimer_run_queues.
//   - PREEMPT_RT is not modelled: timers without ModeSoft run in hard
//     interrupt context; ModeHard is recorded but changes nothing.
//   - Setup binds the timer to no CPU: it gets its base at its first start.
//     The WARNs the kernel prints in hrtimer_setup (invalid clock, nil
//     callback) are printed at the first start instead, and setting up a
//     queued timer dequeues it (the debugobjects fixup).
//   - Cancel waits for a running callback by blocking the goroutine (the
//     kernel spins). A callback that cancels its own timer would spin
//     forever in the kernel; kdefer reports it with a WARN and returns -1.
//     In virtual time nothing else can be running, so the same applies
//     there to any running callback.
//   - Forward on a queued timer returns 0 without the kernel's WARN_ON
//     (there is no context to report in).
//   - A cancelled first timer does not reprogram the CPU early: the CPU
//     may take one interrupt that finds nothing to do.
//   - A callback that re-arms its timer at a time already past (Restart
//     without Forward, or Start with an expiry that has passed) makes the
//     kernel's __hrtimer_run_queues run it again and again without ever
//     leaving the interrupt: a hard lockup. kdefer runs a timer at most
//     once per pass over the queue, so hrtimer_interrupt's own defence
//     applies: three retries, then a hang (nr_retries, nr_hangs and
//     max_hang_time in /proc/timer_list), "hrtimer: interrupt took N ns"
//     once, and no hrtimer interrupt on that CPU for as long as the
//     interrupt took (100 ms at most, the clock-event device's 1 µs
//     minimum at least: in virtual time no time passes inside an
//     interrupt, so it reports 0 ns and waits 1 µs). A soft timer so
//     re-armed fires again after the 1 µs minimum, as the kernel's forced
//     reprogramming does. Either way the CPU's other timers, its tasks and
//     Shutdown go on.
//   - ScheduleHrtimeoutRange checks might_sleep() and, in atomic context,
//     returns without sleeping after the BUG report.
//   - Tracepoints: hrtimer_start, hrtimer_cancel, hrtimer_expire_entry and
//     hrtimer_expire_exit fire where hrtimer.c fires them (see package
//     trace and kernel.Kernel.Tracer). hrtimer_setup is recorded at the
//     timer's first start after Setup, in the starting context, since
//     Setup has none; TryToCancel records its hrtimer_cancel without a
//     task. hrtimer_expire_entry's now is the base's clock read as the
//     callback starts, not at the interrupt's entry.
package hrtimer
