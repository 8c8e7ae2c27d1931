package timer

import "sync/atomic"

// Timer flag bits, laid out as in the kernel's include/linux/timer.h.
//
// Bits 0..17 hold the owning CPU, bits 22..31 the wheel bucket index the
// timer is queued in (written by enqueue, read by the mod shortcut). The
// three exported flags are the only ones a user may pass at setup
// (TIMER_INIT_FLAGS); the rest are owned by the timer code.
const (
	// FlagDeferrable is TIMER_DEFERRABLE: the timer lives on a separate
	// wheel that never wakes an idle CPU; it runs at the next
	// non-deferrable wakeup.
	FlagDeferrable uint32 = 0x00080000
	// FlagPinned is TIMER_PINNED: the timer is queued on the calling
	// CPU's BASE_LOCAL, which the timer softirq expires before
	// BASE_GLOBAL (v6.9+). Unpinned timers go to the calling CPU's
	// BASE_GLOBAL; kdefer has no timer migration hierarchy, so they are
	// never expired remotely either.
	FlagPinned uint32 = 0x00100000
	// FlagIRQSafe is TIMER_IRQSAFE: the callback runs with interrupts
	// disabled, so timer_delete_sync may be called from hard interrupt
	// context. Used by delayed_work timers.
	FlagIRQSafe uint32 = 0x00200000

	flagCPUMask   uint32 = 0x0003FFFF                  // TIMER_CPUMASK: owning CPU
	flagMigrating uint32 = 0x00040000                  // TIMER_MIGRATING: base switch in progress
	flagBaseMask  uint32 = flagCPUMask | flagMigrating // TIMER_BASEMASK

	flagArrayShift        = 22         // TIMER_ARRAYSHIFT
	flagArrayMask  uint32 = 0xFFC00000 // TIMER_ARRAYMASK: wheel bucket index

	// flagInitMask is TIMER_INIT_FLAGS, the flags a user may request.
	flagInitMask = FlagDeferrable | FlagPinned | FlagIRQSafe
)

// Timer is a jiffies-based timer, the kernel's struct timer_list.
//
// The zero Timer is inactive and has no callback. A Timer is linked into a
// wheel bucket intrusively (the kernel's hlist_node), so arming, re-arming
// and cancelling it allocate nothing. Every field is guarded by the lock
// of the wheel the timer is queued on (timer_base::lock); the core in
// this file and wheel.go takes no locks itself.
type Timer struct {
	// entry: the hlist_node linking the timer into a bucket of
	// wheel.vectors (or, while it is being expired, into the wheel's
	// private expiry list). pprev points at the previous node's next
	// field or at the list head; pprev == nil means "not pending"
	// (hlist_unhashed), which is what timer_pending() tests.
	next  *Timer
	pprev **Timer

	// expires is the absolute expiry time in jiffies (timer_list::expires).
	// The timer fires at the first timer softirq whose jiffies is at or
	// after its bucket's expiry, which is later than expires by up to the
	// level granularity (see calcWheelIndex).
	expires uint64

	// function is the callback (timer_list::function). A nil function
	// marks a shut-down timer: arming it is silently ignored
	// (timer_shutdown, v6.2+).
	function Func

	// flags packs the CPU number, the Flag* bits, TIMER_MIGRATING and the
	// bucket index (bits 22..31), exactly as timer_list::flags does.
	flags uint32

	// odebug is the debugobjects state (none, initialized, destroyed).
	odebug uint8

	// deferrable copies FlagDeferrable at Setup: flags also holds the
	// bucket index, written under the base lock at every enqueue, so base
	// selection (which may happen before any lock is held) reads this.
	deferrable bool
	irqsafe    bool // FlagIRQSafe, copied at Setup for the same reason
	pinned     bool // FlagPinned, copied at Setup and by AddOn/AddLocal/AddGlobal

	// base is the timer_base the timer is queued on or last ran on; nil
	// until first armed. Changing it requires that base's lock; a timer
	// moving between CPUs points at the system's migrating sentinel
	// (TIMER_MIGRATING).
	base atomic.Pointer[timerBase]
}

// pending reports whether t is queued on a wheel: the kernel's
// timer_pending(), i.e. !hlist_unhashed(&timer->entry). It is false
// inside the timer's own callback (expiry unlinks the timer before
// calling it) unless the callback re-armed it.
func (t *Timer) pending() bool { return t.pprev != nil }

// wheelIdx returns the bucket index stored in the flags
// (timer_get_idx). It is meaningful only while the timer is pending.
func (t *Timer) wheelIdx() uint {
	return uint((t.flags & flagArrayMask) >> flagArrayShift)
}

// setWheelIdx stores idx in the flags (timer_set_idx).
func (t *Timer) setWheelIdx(idx uint) {
	t.flags = (t.flags &^ flagArrayMask) | uint32(idx)<<flagArrayShift
}

// hlistAddHead links n at the head of the list *h (hlist_add_head), which
// makes every bucket LIFO.
func hlistAddHead(n *Timer, h **Timer) {
	first := *h
	n.next = first
	if first != nil {
		first.pprev = &n.next
	}
	*h = n
	n.pprev = h
}

// hlistDel unlinks n from whatever list it is on (__hlist_del). It leaves
// n.pprev alone; callers decide whether the timer stays "pending".
func hlistDel(n *Timer) {
	next := n.next
	*n.pprev = next
	if next != nil {
		next.pprev = n.pprev
	}
}

// hlistIsSingularNode reports whether n is the only node of list *h
// (hlist_is_singular_node).
func hlistIsSingularNode(n *Timer, h **Timer) bool {
	return n.next == nil && n.pprev == h
}

// hlistMoveList moves the whole list *from to *to, leaving *from empty
// (hlist_move_list).
func hlistMoveList(from, to **Timer) {
	*to = *from
	if *to != nil {
		(*to).pprev = to
	}
	*from = nil
}
