// Package workqueue is kdefer's concurrency-managed workqueues (CMWQ,
// kernel/workqueue.c, include/linux/workqueue.h,
// Documentation/core-api/workqueue.rst): work items that run in process
// context on shared pools of kernel worker threads.
//
// # Work items
//
// Work and DelayedWork are values users embed (INIT_WORK, DECLARE_WORK,
// INIT_DELAYED_WORK, INIT_DEFERRABLE_WORK); queueing them allocates nothing.
// One PENDING bit, shared by immediate and delayed queueing, is set by
// whoever queues an item and cleared by the worker right before the
// function runs: QueueWork on a pending item returns false and changes
// nothing; on a running item it queues it again. An item never runs on two
// workers at once, also when it is queued again from another CPU while it
// runs (it is then queued behind itself, on the pool where it runs).
//
// # Queueing, cancelling, flushing
//
// QueueWork(On), QueueDelayedWork(On), ModDelayedWork(On), ScheduleWork and
// the rest return what the kernel's do (§8.4 of the reference).
// CancelWorkSync and CancelDelayedWorkSync guarantee that the item is
// neither pending nor running on return, also for an item that requeues
// itself; DisableWork/EnableWork (v6.10) count. FlushWork waits for the
// last queueing of an item, FlushWorkqueue for everything queued before
// it (with the kernel's flush colors, so new items cannot livelock it),
// DrainWorkqueue until the queue is empty. Every wait goes through the
// kernel (a completion, or for BH items a busy-wait), so a waiting task
// sleeps in D state and concurrency management sees it.
//
// # Workqueues and pools
//
// AllocWorkqueue takes the WQ_* flags (Unbound, Highpri, CPUIntensive,
// Freezable, MemReclaim, PowerEfficient, BH) and max_active (0 means
// DflActive; out of range is clamped with the kernel's message; items
// beyond it wait on an inactive list, activated in FIFO order).
// AllocOrderedWorkqueue runs one item at a time in queueing order. The
// system workqueues (System "events", SystemHighpri, SystemLong,
// SystemUnbound, SystemFreezable, SystemPowerEfficient, SystemBH…) are
// created on first use.
//
// Each CPU has a normal and a high-priority pool whose workers are kernel
// threads named kworker/N:M and kworker/N:MH, and two BH pools that run in
// softirq context (TASKLET_SOFTIRQ and HI_SOFTIRQ, through a hook in package
// tasklet); unbound pools name theirs kworker/uP:M (P the pool id), and a
// MemReclaim workqueue has a rescuer kworker/R-name. Per-CPU pools are
// concurrency managed: through the scheduler notifier the pool counts its
// running workers (nr_running), and when one sleeps in any kernel primitive
// an idle worker takes over, so a sleeping item never stalls the other
// items of its CPU; a manager keeps one idle worker in reserve. An item
// that runs without sleeping for wq_cpu_intensive_thresh_us (20 ms with
// kdefer's BogoMIPS) is marked CPU_INTENSIVE and, from its fourth time on,
// reported ("workqueue: fn hogged CPU for >20000us 4 times, consider
// switching to WQ_UNBOUND"). Workers idle for 5 minutes beyond a quarter
// of the busy ones are reaped. Freezable workqueues are held back between
// FreezeWorkqueuesBegin and ThawWorkqueues. After each item the worker
// checks for a leaked preempt count ("BUG: workqueue leaked atomic, lock or
// RCU"); a panic in a work function is an Oops of the worker, which goes
// on with the next item.
//
// Misuse is reported as the kernel does: flushing an item from its own
// function, or a workqueue from one of its items, would wait forever —
// kdefer prints lockdep's "possible recursive locking detected" report
// naming both locks and returns without waiting; so it does for a flush
// on an ordered (max_active 1) workqueue of an item queued behind the
// flusher, where the kernel truly deadlocks. Flushing a system workqueue
// warns that it "will be prohibited in near future".
//
// # For Go programs
//
// A goroutine attached with kernel.Attach uses the whole API with its own
// context. Nothing starts a goroutine before an item is queued; QueueWork
// never blocks. Shutdown closes a workqueue and drains or cancels it within
// a time limit, Snapshot reads its counters (queued, executed, in flight,
// longest running, queue-to-start latency), and RetryWork requeues itself
// with exponential backoff and an optional rate limit, its failure count
// kept in the item.
//
// # Observing
//
// The tracepoints workqueue_queue_work, workqueue_activate_work,
// workqueue_execute_start and workqueue_execute_end are fired where
// kernel/workqueue.c fires them, with its formats (enable them on the
// kernel's tracer: k.Tracer().Enable("workqueue")); disabled, each costs a
// load and a branch. ShowAllWorkqueues prints the kernel's SysRq-t dump
// (show_all_workqueues: busy workqueues with their in-flight, pending and
// inactive items, busy pools with their idle workers) and DumpState
// returns it (package procfs serves it as /proc/workqueues). WorkerComm is
// the name ps gives a worker: "kworker/0:1+events" while it runs an item of
// events, "kworker/0:1-events" afterwards, or the description the item set
// with SetWorkerDesc.
//
// # Differences from Linux
//
//   - Workers are created lazily: a pool gets its first worker when its
//     first item is queued (the kernel creates one per pool at boot), so
//     the first worker of a pool is kworker/N:0 whichever pool it is.
//   - Unbound workqueues have one pod (affinity scope "system"): one pwq
//     on the unbound pool of their priority, max_active system-wide.
//     workqueue.power_efficient is off, so PowerEfficient workqueues are
//     per-CPU. There is no CPU hotplug, no sysfs, no NUMA.
//   - CPU-intensive detection uses a timer of the pool, every eighth of the
//     threshold while a concurrency-managed item runs, instead of the
//     scheduler tick (a kdefer CPU sleeps between its events): a run is
//     timed from the tick that first saw it, so an item is marked after
//     the threshold, late by less than a quarter of it (in real time up to
//     a millisecond more: the timer is deferrable, and the Go runtime's
//     timer raises the softirq that runs it, so that no CPU waits for it
//     precisely). An item's "CPU time" is the time since it last started
//     or woke.
//   - Queue-to-start latency is measured on every item queued while its
//     workqueue had nothing in flight on the pool and on one in 128 of
//     the others, and start times come from a clock each worker reads at
//     the end of every 16th item and after every wakeup (reading the
//     clock for every item would cost as much as queueing it).
//   - queue_work onto a per-CPU pool whose worker is running takes no
//     lock: the item goes on a lock-free chain of the pool, which the
//     worker — when its worklist runs dry — and every path that looks at
//     queued items (cancel, flush, flush_workqueue's colors, drain,
//     destroy, Snapshot, the dump) move onto the pool's lists, in
//     queueing order, under the pool lock (the kernel takes pool->lock
//     in __queue_work). Between its PENDING bit and its push an item is
//     found by cancel as being queued (a retry, try_to_grab_pending's
//     -EAGAIN) and by flush_work as not yet queued, as the kernel's are
//     while another CPU is inside __queue_work.
//   - In real time a concurrency-managed worker whose pool runs out of
//     items either polls for new ones for 2 µs before it goes idle,
//     counted as running meanwhile, so that an item queued right behind
//     starts without a wakeup, or parks at once
//     (kernel.ScheduleNoSpin), so that the queuer's wakeup runs it on the
//     queuer's processor as the kernel's does: the pool measures both
//     ways on its items' queue latency and keeps the faster, trying the
//     other again every 100 ms (polling moves cache lines between cores,
//     which is cheap on nearby cores and costs hundreds of nanoseconds
//     on distant ones). The queuer of an item on an idle pool wakes the
//     worker after dropping the pool lock; and a worker calls
//     cond_resched every 1024 items (the Go scheduler preempts it
//     anyway), in virtual time after every item.
//   - Lockdep is not modelled as a whole: only the self-deadlocks of
//     flushes above are detected. Its lock names use the work function's
//     name ("(work_completion)(fn)") where the kernel's use the INIT_WORK
//     expression, and its addresses are stable stand-ins.
//   - A queueing refused because the workqueue is draining or destroyed
//     returns false and gives PENDING back (the kernel returns true and
//     leaves the item pending forever). After the leaked-atomic report the
//     worker's preempt count is restored.
//   - The dump's "hung" time is estimated (kdefer keeps no
//     pool->watchdog_ts) and a pwq's refcnt is 1 plus its items in flight;
//     see ShowAllWorkqueues.
package workqueue
