// Package timer is kdefer's port of the kernel's jiffies-based timers,
// struct timer_list and the timer wheel of kernel/time/timer.c (the
// non-cascading wheel of Linux v4.8 and later, with the v5.9+ bucket
// rounding and the v6.9+ next-expiry handling).
//
// Each CPU has the three bases of v6.9+: BASE_LOCAL for pinned timers
// (FlagPinned, AddOn, AddLocal), BASE_GLOBAL for the others and BASE_DEF
// for deferrable ones; the timer softirq expires them in that order. There
// is no timer migration hierarchy (kernel/time/timer_migration.c): a
// global timer is armed on the calling CPU's base and expired there, as a
// pinned one is.
//
// # Layers
//
// The package has two layers. The deterministic core (wheel.go,
// timer_types.go) is the bucket part of struct timer_base: it takes no
// locks, starts no goroutine, reads no clock and never sleeps; every
// method takes the current jiffies as an argument and expiry runs the
// callbacks synchronously. The API layer (mod_timer, timer_delete,
// timer_delete_sync, per-CPU and deferrable bases, the TIMER_SOFTIRQ hook
// and the locking that guards each wheel) lives elsewhere in this package
// and is built on the core.
//
// # The wheel
//
// The wheel has LVL_DEPTH levels (9 when HZ > 100, 8 otherwise) of 64
// buckets each. Each level is driven by its own clock, 8 times slower
// than the one below, so level n has a granularity of 8^n jiffies. A timer
// is queued on the lowest level that can hold its delta (expires minus the
// wheel clock):
//
//	level  granularity  deltas (jiffies)     HZ=1000
//	0      1            0 .. 62              up to 62 ms
//	1      8            63 .. 503            ~64 ms .. ~0.5 s
//	2      64           504 .. 4031          ~0.5 s .. ~4 s
//	3      512          4032 .. 32255        ~4 s .. ~32 s
//	4      4096         32256 .. 258047      ~32 s .. ~4 min
//	5      32768        258048 .. 2064383    ~4 min .. ~34 min
//	6      262144       2064384 .. 16515071  ~34 min .. ~4.6 h
//	7      2097152      16515072 ..          ~4.6 h .. ~1.5 d
//	8      16777216     132120576 ..         ~1.5 d .. ~12 d (HZ > 100 only)
//
// Within its level a timer is rounded up to the next granule strictly
// after its expiry, so it never fires early; it fires late by at most one
// granule, which is 1 jiffy on level 0 and at most 8/63 (the documented
// "12.5%", precisely 12.7%) of the delta on higher levels.
//
// Unlike the classic wheel this one never cascades timers down to lower
// levels: a timer stays in the bucket it was queued in until it expires
// or is cancelled. That trades exactness for cheap arming and cancelling,
// and it fits what timers are mostly used for: timeouts (networking, disk
// I/O) that are cancelled before they expire. A timeout that does expire
// means normal operation is already disturbed, so a slightly late expiry
// does not matter; the few short, precise networking timers fit level 0,
// which has HZ granularity. The previous wheel already added slack to
// batch expiries; here the levels batch implicitly.
//
// Timeouts beyond the wheel's capacity (WHEEL_TIMEOUT_CUTOFF,
// 1056964608 jiffies, about 12 days at HZ=1000) are not rejected: they are
// clamped to WHEEL_TIMEOUT_MAX and fire then. A timer whose expiry has
// already passed is queued in the bucket of the wheel clock and fires
// from the next tick's timer softirq: armed from process context at
// jiffies J, at J+1 (the tick of J has run before process context sees
// J), never in J itself, although kdefer's CPUs do not tick.
//
// # Tracepoints
//
// The timer events of include/trace/events/timer.h fire where timer.c
// fires them (see package trace and kernel.Kernel.Tracer): timer_init in
// Setup (not when Setup is given a nil context), timer_start at every
// enqueue, timer_cancel whenever a pending timer leaves its bucket
// (Delete and the other deletes, a re-arm that moves it, expiry), and
// timer_expire_entry/exit around the callback. Delete, TryDeleteSync and
// Shutdown take no context: their timer_cancel has no task.
//
// # Expiry
//
// Expiry (run) jumps the wheel clock straight to the next pending bucket,
// so idle stretches cost nothing. It expires the buckets due at one jiffy
// highest level first and each bucket last-queued first. A timer is
// unlinked and no longer pending when its callback runs, so the callback
// may re-arm it; while expiring, the wheel clock is one jiffy ahead of
// jiffies, so a timer re-armed for "now" fires on the next tick.
package timer
