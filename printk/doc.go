// Package printk reimplements the Linux kernel's log buffer: the printk
// record ring that dmesg reads, printk's line assembly (KERN_CONT / pr_cont),
// the dmesg timestamp format, the __ratelimit helper behind
// pr_*_ratelimited, and a log/slog handler that writes into the ring.
//
// Kernel counterparts: kernel/printk/printk.c (vprintk_store, print_time,
// devkmsg_read, syslog_print_all), kernel/printk/printk_ringbuffer.c
// (prb_reserve, prb_reserve_in_last, prb_final_commit, prb_read_valid),
// include/linux/kern_levels.h (KERN_EMERG .. KERN_DEBUG, KERN_CONT),
// lib/ratelimit.c (___ratelimit) with include/linux/ratelimit_types.h
// (DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST), and the output of
// util-linux dmesg(1).
//
// The package is independent of the rest of kdefer: it reads no clock. Every
// timestamp is supplied by the caller, in nanoseconds since boot (the
// kernel's local_clock() value that printk stores in ts_nsec).
//
// # Line assembly
//
// [Ring.Emit] is printk: its text may hold several lines, and every line
// ended by "\n" becomes one committed [Record]. A trailing piece without a
// newline stays open, as a pending continuation of its caller, identified
// by the (CPU, PID) pair. The open line is committed when
//
//   - the same caller continues it with [Ring.Cont] (pr_cont) and the
//     continuation ends the line with "\n";
//   - the same caller calls Emit again: a message that is not a continuation
//     always starts a new record;
//   - any other caller calls Emit or Cont;
//   - [Ring.Flush] is called.
//
// The open line keeps the timestamp, level, CPU and PID of its first piece.
// Readers and sinks never see an open line; they see it once it is
// committed, as the kernel's readers only read finalized records.
//
// # Deliberate differences from the kernel
//
//   - Capacity is counted in records, not bytes (the kernel sizes log_buf in
//     bytes, log_buf_len, and derives the descriptor count from it). When
//     the ring is full the oldest record is overwritten. A reader that asks
//     for an overwritten sequence number continues from the oldest record
//     still held, as dmesg does; the jump in [Record.Seq] is the only sign of
//     the gap (the kernel's /dev/kmsg reports it once with EPIPE).
//   - A record is its sequence number, timestamp, level, CPU, PID and one
//     line of text. There is no facility, no dictionary (dev_info), no
//     caller_id field and no stored LOG_NEWLINE / LOG_CONT flags.
//   - Text containing several lines becomes one record per line. The kernel
//     stores one record with embedded newlines and dmesg prints each line
//     under the same prefix.
//   - The level is an argument, not an in-band KERN_SOH prefix of the text,
//     and no prefix is parsed out of the text. A level outside
//     [LevelEmerg, LevelDebug] is stored as [LevelInfo].
//   - Continuation state is keyed by (CPU, PID). The kernel keys it by
//     caller_id: the PID in task context, the CPU in interrupt context, so a
//     task that migrates between printk and pr_cont still continues there.
//   - At most one line is open in the whole ring, and any message that is
//     not its owner's continuation commits it first, under one mutex. The
//     kernel reaches the same rule with more machinery: before 5.10 its
//     single cont buffer was flushed by any other message, and since 5.10
//     prb_reserve finalizes the previous record locklessly, so only
//     prb_reserve_in_last by the same caller_id can extend it. There is no
//     per-CPU or NMI-safe buffering.
//   - [Ring.Cont] with no open line for its caller starts a new line at
//     [LevelInfo]. The kernel uses default_message_loglevel there
//     (CONFIG_MESSAGE_LOGLEVEL_DEFAULT, 4 = KERN_WARNING unless configured).
//   - Lines have no length limit. The kernel truncates a record at
//     PRINTKRB_RECORD_MAX (1024 bytes).
//   - There are no consoles and no console_loglevel. Sinks ([Ring.AddSink])
//     receive every committed record, synchronously, like a console printed
//     from the caller's context by the legacy console_unlock; filtering by
//     level is the sink's business.
//   - [RateLimit] counts time in nanoseconds, not jiffies, waits for its
//     lock where ___ratelimit gives up on a contended trylock (and drops
//     the message), and hands the "callbacks suppressed" count to the
//     caller through [RateLimit.Suppressed] instead of printing it.
//
// The package has no mutable package-level state and starts no goroutines.
// [Ring], [Handler] and [RateLimit] are safe for concurrent use.
package printk
