package timer

import (
	"fmt"
	"io"
	"math/bits"
	"reflect"
	"runtime"
	"sort"
	"strings"

	"github.com/kdefer/kdefer/jiffies"
)

// Wheel geometry, derived as in kernel/time/timer.c from two shifts and the
// depth. Level n has LVL_SIZE buckets of LVL_GRAN(n) = 8^n jiffies each.
const (
	lvlClkShift = 3                     // LVL_CLK_SHIFT: each level's clock runs 8x slower
	lvlClkDiv   = 1 << lvlClkShift      // LVL_CLK_DIV
	lvlClkMask  = lvlClkDiv - 1         // LVL_CLK_MASK
	lvlBits     = 6                     // LVL_BITS
	lvlSize     = 1 << lvlBits          // LVL_SIZE: buckets per level
	lvlMask     = lvlSize - 1           // LVL_MASK
	lvlDepthMax = 9                     // LVL_DEPTH for HZ > 100
	lvlDepthLow = 8                     // LVL_DEPTH for HZ <= 100
	wheelSize   = lvlSize * lvlDepthMax // WHEEL_SIZE for HZ > 100 (576); HZ <= 100 uses the first 512

	// timerNextMaxDelta is TIMER_NEXT_MAX_DELTA (NEXT_TIMER_MAX_DELTA
	// before v6.9): a recalculation that finds the wheel empty sets
	// next_expiry to clk plus this.
	timerNextMaxDelta = 1<<30 - 1
)

// The pending map keeps one 64-bit word per level; that only works while a
// level has exactly 64 buckets (these fail to compile otherwise).
const (
	_ uint = lvlSize - 64
	_ uint = 64 - lvlSize
)

// lvlShift is LVL_SHIFT(n): log2 of level n's granularity.
func lvlShift(n uint) uint { return (n * lvlClkShift) & 63 } // masked: plain shifts, no range check

// lvlGran is LVL_GRAN(n): the granularity of level n in jiffies (8^n).
func lvlGran(n uint) uint64 { return 1 << lvlShift(n) }

// lvlStart is LVL_START(n) for n >= 1: the smallest delta (expires - clk)
// that is queued on level n. It is one level-(n-1) granularity below the
// level's capacity so that calcIndex can round up by a whole granule.
func lvlStart(n uint) uint64 { return (lvlSize - 1) << (((n - 1) * lvlClkShift) & 63) }

// lvlOffs is LVL_OFFS(n): the index of level n's first bucket.
func lvlOffs(n uint) uint { return n * lvlSize }

// lvlDepth is LVL_DEPTH for a given HZ: 9 levels above HZ=100, 8 at or
// below (where 8 levels already span more than 15 days).
func lvlDepth(hz jiffies.HZ) uint {
	if hz > 100 {
		return lvlDepthMax
	}
	return lvlDepthLow
}

// wheelTimeoutCutoff is WHEEL_TIMEOUT_CUTOFF, the capacity of the wheel:
// LVL_START(LVL_DEPTH).
func wheelTimeoutCutoff(depth uint) uint64 { return lvlStart(depth) }

// wheelTimeoutMax is WHEEL_TIMEOUT_MAX: deltas at or beyond the cutoff are
// clamped to this, WHEEL_TIMEOUT_CUTOFF - LVL_GRAN(LVL_DEPTH - 1).
func wheelTimeoutMax(depth uint) uint64 {
	return wheelTimeoutCutoff(depth) - lvlGran(depth-1)
}

// wheel is the deterministic part of the kernel's struct timer_base: the
// buckets, the pending bitmap and the base clock. It has no lock, no CPU
// number and no idle state; the API layer that owns a wheel holds its lock
// around every method call (the kernel's timer_base::lock) and drops it
// only inside the expire callback passed to run.
//
// A zero wheel must be initialised with reset before use.
type wheel struct {
	// Geometry, fixed by reset.
	hz         jiffies.HZ // HZ this wheel was built for
	depth      uint       // LVL_DEPTH
	cutoff     uint64     // WHEEL_TIMEOUT_CUTOFF
	timeoutMax uint64     // WHEEL_TIMEOUT_MAX

	// runningTimer is timer_base::running_timer: the timer whose callback
	// the expire function is running right now, nil otherwise. The sync
	// delete in the API layer spins (or waits) while it names its timer.
	runningTimer *Timer

	// clk is timer_base::clk, the wheel's notion of "now" in jiffies. It
	// lags jiffies while nothing is due (forward catches it up before an
	// arm) and is jiffies+1 while and after run expires the timers of
	// jiffies, so that a callback re-arming "now" lands on the next tick.
	clk uint64

	// nextExpiry is timer_base::next_expiry: the bucket expiry of the
	// first pending bucket or, when there was none at the last
	// recalculation, that recalculation's clk + timerNextMaxDelta. When
	// nextExpiryRecalc is set it may be stale, but it is never later than
	// the true first expiry.
	nextExpiry uint64

	// nextExpiryRecalc is timer_base::next_expiry_recalc: a bucket emptied
	// by a delete may have been the first one; recompute lazily.
	nextExpiryRecalc bool

	// runFloor, when runFloorSet, is the first jiffy at which run may
	// expire anything. An arm from process context at jiffies J that
	// queues a timer in a bucket already due (expiry <= J: an expiry in
	// the past, or a wheel whose softirq is late) sets it to J+1. In the
	// kernel the tick of jiffy J has already run by the time process
	// context sees jiffies == J, so such a timer waits for the next
	// tick's softirq; kdefer is tickless and would otherwise run it at
	// once, in the jiffy it was armed in. A callback re-arming its timer
	// never sets it: while timers run clk is jiffies+1, so every bucket
	// it can choose expires after jiffies. run clears it.
	runFloor    uint64
	runFloorSet bool
	// floorHolds, set while run is in progress, makes run stop at
	// runFloor too, not only check it on entry (see timerBase.raiseFloor).
	floorHolds bool

	// timersPending is timer_base::timers_pending: whether nextExpiry
	// refers to a real timer (valid when nextExpiryRecalc is false). As in
	// the kernel it can be false while a timer is queued beyond a stale
	// empty-wheel nextExpiry; see verify.
	timersPending bool

	// pendingMap is timer_base::pending_map: bit i%64 of word i/64 is set
	// exactly when vectors[i] is non-empty. Word n is level n.
	pendingMap [lvlDepthMax]uint64

	// vectors are the bucket list heads (timer_base::vectors).
	vectors [wheelSize]*Timer

	// expiring holds the buckets collected by one __run_timers step (the
	// kernel's on-stack heads[LVL_DEPTH]); kept here so that run does not
	// allocate. Entries are compacted: [0, levels) in ascending level.
	expiring [lvlDepthMax]*Timer
}

// reset initialises w for the given HZ with base clock clk (jiffies), as
// init_timer_cpu / timers_prepare_cpu do. It panics if hz is not a valid
// tick rate, if timers are still queued or if a callback is running.
func (w *wheel) reset(hz jiffies.HZ, clk uint64) {
	if err := hz.Valid(); err != nil {
		panic("timer: wheel reset: " + err.Error())
	}
	if w.runningTimer != nil {
		panic("timer: wheel reset while a timer callback runs")
	}
	for _, word := range w.pendingMap {
		if word != 0 {
			panic("timer: wheel reset with pending timers")
		}
	}
	depth := lvlDepth(hz)
	*w = wheel{
		hz:         hz,
		depth:      depth,
		cutoff:     wheelTimeoutCutoff(depth),
		timeoutMax: wheelTimeoutMax(depth),
		clk:        clk,
		nextExpiry: clk + timerNextMaxDelta,
	}
}

// calcIndex is calc_index: the bucket for expires on level lvl and that
// bucket's expiry. It rounds up to the next level granule strictly after
// expires, so a timer never fires early even when armed at the edge of a
// tick or when the level truncates the low bits.
func calcIndex(expires uint64, lvl uint) (idx uint, bucketExpiry uint64) {
	expires = (expires >> lvlShift(lvl)) + 1
	bucketExpiry = expires << lvlShift(lvl)
	return lvlOffs(lvl) + uint(expires&lvlMask), bucketExpiry
}

// calcWheelIndex is calc_wheel_index: choose the level from
// delta = expires - clk (the smallest level whose LVL_START(level+1)
// exceeds delta), then the bucket on it.
//
// Two cases bypass the levels. An expiry already in the past ((long)delta
// < 0) goes to the level-0 bucket of clk itself, so it is expired by the
// next run. A delta at or beyond WHEEL_TIMEOUT_CUTOFF is clamped to
// clk + WHEEL_TIMEOUT_MAX on the last level: such timers fire early, at
// the wheel's capacity, rather than being rejected.
func (w *wheel) calcWheelIndex(expires, clk uint64) (idx uint, bucketExpiry uint64) {
	delta := expires - clk
	if delta < lvlStart(1) {
		return calcIndex(expires, 0)
	}
	// LVL_START(l) = 63 << 3(l-1) lies in [2^(3l+2), 2^(3l+3)), so a
	// delta of bit length n is on level (n-3)/3, or one below when n is a
	// multiple of 3 and delta falls short of that level's start. This
	// replaces the kernel's compare chain.
	lvl := uint(bits.Len64(delta)-3) / 3
	if delta < lvlStart(lvl) {
		lvl--
	}
	if lvl < w.depth-1 {
		return calcIndex(expires, lvl)
	}
	if int64(delta) < 0 {
		return uint(clk & lvlMask), clk
	}
	if delta >= w.cutoff {
		expires = clk + w.timeoutMax
	}
	return calcIndex(expires, w.depth-1)
}

// enqueue is enqueue_timer: link t at the head of bucket idx (so each
// bucket is LIFO), mark the bucket pending, store idx in t's flags and, if
// bucketExpiry is earlier than nextExpiry, make it the new next expiry.
// It reports whether nextExpiry moved earlier: that is when the kernel
// calls trigger_dyntick_cpu to kick an idle CPU (never for deferrable
// timers), which is the caller's business.
func (w *wheel) enqueue(t *Timer, idx uint, bucketExpiry uint64) bool {
	hlistAddHead(t, &w.vectors[idx])
	w.pendingMap[idx/lvlSize] |= 1 << (idx % lvlSize)
	t.setWheelIdx(idx)

	// The bucket expiry, not t.expires, is what the CPU must wake for.
	if jiffies.TimeBefore(bucketExpiry, w.nextExpiry) {
		w.nextExpiry = bucketExpiry
		w.timersPending = true
		w.nextExpiryRecalc = false
		return true
	}
	return false
}

// arm is the wheel half of mod_timer / add_timer on the arm path, for a
// timer that is not shut down and whose expiry changes (the caller has
// taken the same-expiry shortcut): forward the clock to now, choose the
// bucket and, for a pending timer, either only update the expiry (the same
// bucket) or unlink it; then queue it. It reports whether nextExpiry
// moved earlier. It is forward, calcWheelIndex, rearmSameBucket, detach,
// noteQueued and enqueue written out in one piece for speed;
// TestArmMatchesTheWheelsOwnSteps checks it against them.
func (w *wheel) arm(t *Timer, expires, now uint64) bool {
	if jiffies.TimeAfter(now, w.clk) {
		w.forward(now)
	}
	var idx uint
	var bucketExpiry uint64
	if delta := expires - w.clk; delta < lvlStart(1) {
		idx, bucketExpiry = uint(expires+1)&lvlMask, expires+1
	} else if lvl := uint(lvlOfLen[bits.Len64(delta)]); lvl < w.depth-1 {
		if delta < lvlStartTab[lvl&15] {
			lvl--
		}
		sh := lvlShift(lvl)
		e := (expires >> sh) + 1
		idx, bucketExpiry = lvlOffs(lvl)+uint(e&lvlMask), e<<sh
	} else {
		idx, bucketExpiry = w.calcWheelIndex(expires, w.clk)
	}
	t.expires = expires
	if pprev := t.pprev; pprev != nil {
		old := t.wheelIdx()
		if idx == old {
			return false
		}
		next := t.next
		*pprev = next
		if next != nil {
			next.pprev = pprev
		} else if pprev == &w.vectors[old] {
			w.pendingMap[old/lvlSize] &^= 1 << (old % lvlSize)
			w.nextExpiryRecalc = true
		}
	}
	if !jiffies.TimeAfter(bucketExpiry, now) || bucketExpiry == w.clk {
		w.noteQueued(bucketExpiry, now)
	}
	h := &w.vectors[idx]
	first := *h
	t.next = first
	if first != nil {
		first.pprev = &t.next
	}
	*h = t
	t.pprev = h
	w.pendingMap[idx/lvlSize] |= 1 << (idx % lvlSize)
	t.flags = (t.flags &^ flagArrayMask) | uint32(idx)<<flagArrayShift
	if jiffies.TimeBefore(bucketExpiry, w.nextExpiry) {
		w.nextExpiry = bucketExpiry
		w.timersPending = true
		w.nextExpiryRecalc = false
		return true
	}
	return false
}

// lvlOfLen maps the bit length n of a delta of at least LVL_START(1) to
// (n-3)/3: the delta's level, or one above it when the delta falls short
// of that level's start (only possible when n is a multiple of 3); lengths
// past the last level map to 9. lvlStartTab[l] is LVL_START(l). Read-only.
var (
	lvlOfLen    = [65]uint8{0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	lvlStartTab = [16]uint64{0, lvlSize - 1, (lvlSize - 1) << 3, (lvlSize - 1) << 6, (lvlSize - 1) << 9, (lvlSize - 1) << 12, (lvlSize - 1) << 15, (lvlSize - 1) << 18, (lvlSize - 1) << 21, (lvlSize - 1) << 24}
)

// add is internal_add_timer: queue t at t.expires relative to the current
// base clock. The caller forwards the base to now (the current jiffies)
// first.
func (w *wheel) add(t *Timer, now uint64) bool {
	idx, bucketExpiry := w.calcWheelIndex(t.expires, w.clk)
	w.noteQueued(bucketExpiry, now)
	return w.enqueue(t, idx, bucketExpiry)
}

// noteQueued keeps the next tick rule: a timer queued at jiffies now in a
// bucket that is already due runs from the next tick's softirq, not from
// this jiffy's (see runFloor). The bucket of clk itself (an expiry in the
// past) counts as due even when now is behind clk: now may be a jiffies
// value the caller read a while ago (the API layer then raises the floor
// to the tick after the current jiffy), and where clk is jiffies+1 (while
// and after a run) the floor it sets is that bucket's own expiry.
func (w *wheel) noteQueued(bucketExpiry, now uint64) {
	if jiffies.TimeAfter(bucketExpiry, now) && bucketExpiry != w.clk {
		return
	}
	if !w.runFloorSet || jiffies.TimeBefore(w.runFloor, now+1) {
		w.runFloor, w.runFloorSet = now+1, true
	}
}

// floorReached reports whether the softirq may run the wheel at now as far
// as runFloor is concerned.
func (w *wheel) floorReached(now uint64) bool {
	return !w.runFloorSet || jiffies.TimeAfterEq(now, w.runFloor)
}

// nextRunJiffies is nextExpiryJiffies held back to runFloor: the first
// jiffy whose softirq has something to expire, if a timer is queued.
func (w *wheel) nextRunJiffies() uint64 {
	next := w.nextExpiryJiffies()
	if !w.floorReached(next) {
		return w.runFloor
	}
	return next
}

// due reports whether a timer softirq at now has anything to do on w:
// the clock and the (recalculated) next expiry have been reached, and so
// has runFloor.
func (w *wheel) due(now uint64) bool {
	return jiffies.TimeAfterEq(now, w.clk) && jiffies.TimeAfterEq(now, w.nextExpiryJiffies()) && w.floorReached(now)
}

// unlink is detach_timer: take t off its list. With clearPending the timer
// becomes "not pending"; without it pprev keeps a stale value, which is
// only allowed when t is re-enqueued before the lock is dropped.
func (w *wheel) unlink(t *Timer, clearPending bool) {
	hlistDel(t)
	if clearPending {
		t.pprev = nil
	}
	t.next = nil // the kernel poisons it with LIST_POISON2
}

// detach is detach_if_pending: if t is pending, unlink it and return 1,
// else return 0. When t was the last timer of its bucket the bucket's
// pending bit is cleared and nextExpiry is marked for lazy recalculation
// (the kernel does this whenever a bucket empties, not only when it was
// the first one). A timer that run has already collected but not yet
// expired is not on its bucket list, so its bucket's bit is left alone.
//
// detach(t, true) is the wheel part of timer_delete.
func (w *wheel) detach(t *Timer, clearPending bool) int {
	if !t.pending() {
		return 0
	}
	if clearPending {
		w.detachPending(t)
		return 1
	}
	idx := t.wheelIdx()
	if hlistIsSingularNode(t, &w.vectors[idx]) {
		w.pendingMap[idx/lvlSize] &^= 1 << (idx % lvlSize)
		w.nextExpiryRecalc = true
	}
	w.unlink(t, clearPending)
	return 1
}

// detachPending is detach(t, true) for a timer known to be pending: the
// whole of timer_delete's wheel work.
func (w *wheel) detachPending(t *Timer) {
	next, pprev := t.next, t.pprev
	*pprev = next
	if next != nil {
		next.pprev = pprev
	} else if idx := t.wheelIdx(); pprev == &w.vectors[idx] {
		// It was the bucket's only timer.
		w.pendingMap[idx/lvlSize] &^= 1 << (idx % lvlSize)
		w.nextExpiryRecalc = true
	}
	t.pprev = nil
	t.next = nil
}

// rearmIsNoop reports whether arming the pending timer t at expires would
// change nothing: the same expiry, or for timer_reduce one that is not
// earlier. __mod_timer tests this before it takes the base lock (and, in
// kdefer's real time, before it reads the clock).
func (t *Timer) rearmIsNoop(expires uint64, reduce bool) bool {
	diff := int64(t.expires - expires)
	return diff == 0 || (reduce && diff < 0)
}

// rearmSameBucket is the second shortcut of __mod_timer for a pending
// timer: forward the clock, compute the bucket for expires and, if it is
// the bucket t already occupies, only update t.expires (for timer_reduce
// only if earlier) so that a repeat of the call takes the first shortcut.
// It returns the computed bucket either way, valid for the clock it left.
func (w *wheel) rearmSameBucket(t *Timer, expires uint64, reduce bool, now uint64) (idx uint, bucketExpiry uint64, same bool) {
	w.forward(now)
	idx, bucketExpiry = w.calcWheelIndex(expires, w.clk)
	if idx != t.wheelIdx() {
		return idx, bucketExpiry, false
	}
	if !reduce || jiffies.TimeAfter(t.expires, expires) {
		t.expires = expires
	}
	return idx, bucketExpiry, true
}

// forward is __forward_timer_base(base, now): bring clk up to the current
// jiffies (now) before arming so that the level is chosen from the real delta, but never
// past nextExpiry (the first pending bucket must still be collected) and
// never backwards (while timers run clk is jiffies+1).
func (w *wheel) forward(now uint64) {
	if jiffies.TimeBeforeEq(now, w.clk) {
		return
	}
	if jiffies.TimeAfter(w.nextExpiry, now) {
		w.clk = now
		return
	}
	// next_expiry has been reached. On an empty wheel that is the stale
	// clk + TIMER_NEXT_MAX_DELTA of its last recalculation: the kernel
	// would have run the timer softirq at that jiffy (the tick of a busy
	// CPU) or re-based it when the CPU went idle (next_timer_interrupt),
	// and either finds nothing to expire. kdefer's CPUs do not tick while
	// busy, so do it here; otherwise clk would stop at the stale value and
	// a timer queued beyond it would not move next_expiry.
	if w.empty() {
		w.clk = now
		w.nextExpiry = now + timerNextMaxDelta
		w.nextExpiryRecalc = false
		w.timersPending = false
		return
	}
	// WARN_ON_ONCE in the kernel: nextExpiry never lags clk.
	if jiffies.TimeBefore(w.nextExpiry, w.clk) {
		return
	}
	w.clk = w.nextExpiry
}

// mod is the wheel half of __mod_timer, called with the base locked and
// now the current jiffies. It implements mod_timer (both flags false),
// mod_timer_pending (pendingOnly) and timer_reduce (reduce); add_timer is
// mod on a timer that is not pending. It returns 0 if t was not pending
// (and is now armed, unless pendingOnly), 1 if it was pending.
//
// Two shortcuts leave a pending timer where it is, as in the kernel:
//   - the new expiry equals t.expires (or, for reduce, is not earlier):
//     return 1 without touching anything, not even the clock;
//   - after forwarding the clock, the new expiry maps to the bucket the
//     timer is already in: only t.expires is updated (for reduce, only
//     if earlier). The effective expiry stays that of the bucket, so this
//     can be coarser than a fresh arm would be.
//
// A timer with a nil function has been shut down (timer_shutdown): arming
// it is silently ignored and mod returns 0. Choosing and switching the
// per-CPU base (get_timer_this_cpu_base, TIMER_MIGRATING) is the API
// layer's job; it uses forward, detach, calcWheelIndex and enqueue
// directly when it needs to move a timer between wheels.
func (w *wheel) mod(t *Timer, expires uint64, pendingOnly, reduce bool, now uint64) int {
	ret, _ := w.modKick(t, expires, pendingOnly, reduce, now)
	return ret
}

// modKick is mod, also reporting whether it queued t in a bucket that
// moved nextExpiry earlier (enqueue's trigger_dyntick_cpu condition).
func (w *wheel) modKick(t *Timer, expires uint64, pendingOnly, reduce bool, now uint64) (int, bool) {
	if t.pprev == nil {
		if t.function == nil { // shut down
			return 0, false
		}
		w.forward(now)
		// detach_if_pending finds nothing to detach.
		if pendingOnly {
			return 0, false
		}
		t.expires = expires
		return 0, w.add(t, now)
	}

	// The networking fast path: re-arming to the same expiry, or a reduce
	// that would not reduce, is a lock-free no-op.
	if t.rearmIsNoop(expires, reduce) {
		return 1, false
	}
	// lock_timer_base(): from here on the kernel holds the lock (and
	// re-checks the reduce case, which under our lock cannot change).
	if t.function == nil { // shut down
		return 0, false
	}
	idx, bucketExpiry, same := w.rearmSameBucket(t, expires, reduce, now)
	if same {
		return 1, false
	}
	// Move it: the bucket computed above is valid, the clock has not
	// moved since.
	w.detach(t, false)
	t.expires = expires
	w.noteQueued(bucketExpiry, now)
	return 1, w.enqueue(t, idx, bucketExpiry)
}

// collectExpired is collect_expired_timers: set clk to nextExpiry and move
// every bucket that expires at clk into w.expiring, level 0 first. Level
// n+1 is only looked at when the level-n clock has just wrapped to a
// multiple of 8 (its low three bits are zero), because only then does a
// level-(n+1) bucket expire. It returns the number of buckets collected.
func (w *wheel) collectExpired() int {
	w.clk = w.nextExpiry
	clk := w.clk
	levels := 0
	for lvl := uint(0); lvl < w.depth; lvl++ {
		slot := uint(clk & lvlMask)
		if bit := uint64(1) << slot; w.pendingMap[lvl]&bit != 0 {
			w.pendingMap[lvl] &^= bit
			hlistMoveList(&w.vectors[lvlOffs(lvl)+slot], &w.expiring[levels])
			levels++
		}
		if clk&lvlClkMask != 0 {
			break
		}
		clk >>= lvlClkShift
	}
	return levels
}

// nextPendingBucket is next_pending_bucket: the distance from slot start
// to the next pending bucket of level lvl, searching upwards and wrapping
// around the level, or -1 if the level is empty.
func (w *wheel) nextPendingBucket(lvl, start uint) int {
	word := w.pendingMap[lvl]
	if word == 0 {
		return -1
	}
	return bits.TrailingZeros64(bits.RotateLeft64(word, -int(start)))
}

// recalcNextExpiry is timer_recalc_next_expiry (__next_timer_interrupt
// before v6.9): find the first pending bucket expiry, level by level.
//
// On each level the search starts at the level clock and wraps. The
// candidate (levelclk + pos) << LVL_SHIFT(lvl) is kept if earlier. If it
// comes before the level clock next wraps to a multiple of 8, higher
// levels cannot expire earlier and the search stops. Otherwise the next
// level's clock is this one shifted down, plus one if the low bits were
// non-zero (the next level's current bucket is already behind us).
//
// One difference: the kernel sets timers_pending to next != clk +
// TIMER_NEXT_MAX_DELTA, which is false for a timer whose bucket expires
// exactly at that jiffy (possible for one armed at the cutoff); v6.9+'s
// idle path would then push next_expiry past it. kdefer sets timersPending
// when the search found a bucket.
func (w *wheel) recalcNextExpiry() {
	next := w.clk + timerNextMaxDelta
	clk := w.clk
	found := false
	for lvl := uint(0); lvl < w.depth; lvl++ {
		pos := w.nextPendingBucket(lvl, uint(clk&lvlMask))
		lvlClk := clk & lvlClkMask

		if pos >= 0 {
			found = true
			tmp := (clk + uint64(pos)) << lvlShift(lvl)
			if jiffies.TimeBefore(tmp, next) {
				next = tmp
			}
			if uint64(pos) <= ((lvlClkDiv - lvlClk) & lvlClkMask) {
				break
			}
		}
		adj := uint64(0)
		if lvlClk != 0 {
			adj = 1
		}
		clk >>= lvlClkShift
		clk += adj
	}
	w.nextExpiry = next
	w.nextExpiryRecalc = false
	w.timersPending = found
}

// nextExpiryJiffies returns the jiffy at which the first pending bucket
// expires, recomputing it first if a delete left it stale (the lazy
// recalculation get_next_timer_interrupt / next_timer_interrupt do). With
// no timer queued w.timersPending is false and the value is
// TIMER_NEXT_MAX_DELTA past the clk of the last recalculation (forward may
// have moved clk since; the kernel's NOHZ code, next_timer_interrupt,
// re-bases it on jiffies, which is the API layer's job).
func (w *wheel) nextExpiryJiffies() uint64 {
	if w.nextExpiryRecalc {
		w.recalcNextExpiry()
	}
	return w.nextExpiry
}

// idle is what a CPU going idle does with the wheel (the v6.9+
// next_timer_interrupt followed by __forward_timer_base): recompute a
// stale next expiry, move an empty wheel's next expiry to now +
// TIMER_NEXT_MAX_DELTA so that it does not fall due while the CPU sleeps,
// and forward clk. It returns the next expiry and whether a timer is
// queued (if not, the CPU need not wake for this wheel). A wheel that is
// due but holds off until runFloor returns runFloor: the next tick.
//
// One difference: the kernel re-bases whenever timers_pending is false,
// which can also be the case with a timer queued beyond a stale next
// expiry (see verify); re-basing would then hide that timer until long
// after it is due. kdefer recalculates instead, which finds it.
func (w *wheel) idle(now uint64) (next uint64, pending bool) {
	if w.nextExpiryRecalc || (!w.timersPending && !w.empty()) {
		w.recalcNextExpiry()
	}
	if !w.timersPending {
		w.nextExpiry = now + timerNextMaxDelta
	}
	w.forward(now)
	if w.timersPending && !w.floorReached(w.nextExpiry) {
		// Already due, but queued after this jiffy's tick.
		return w.runFloor, true
	}
	return w.nextExpiry, w.timersPending
}

// empty reports whether no bucket holds a timer (timers collected for
// expiry but not yet run do not count).
func (w *wheel) empty() bool {
	for _, m := range w.pendingMap[:w.depth] {
		if m != 0 {
			return false
		}
	}
	return true
}

// run is __run_timers: expire every timer whose bucket is due at now (the
// current jiffies).
//
// While now has reached both clk and nextExpiry it collects the
// buckets of nextExpiry (clk jumps straight there: skipped jiffies cost
// nothing), advances clk one past it, recomputes nextExpiry and then
// expires the collected buckets highest level first, each bucket in list
// (LIFO) order. For each timer it sets runningTimer, unlinks the timer
// and marks it not pending, calls expire(t), then clears runningTimer.
//
// expire is the caller's call_timer_fn: it drops the lock, calls
// t.function (treating a nil function as the kernel does: WARN and skip)
// and retakes the lock. It may re-arm t or any other timer on this wheel,
// delete timers (including ones collected in the same step, which then
// do not run) and read runningTimer. A nested run while a callback is
// running returns at once, as in the kernel since v6.9. Before runFloor
// (a timer was queued already due in this jiffy) run does nothing.
//
// When run returns, clk is one past the last bucket jiffy it processed:
// now+1 if something was due at now, less after a late run whose
// last due bucket was earlier (the next arm forwards it).
func (w *wheel) run(now uint64, expire func(*Timer)) {
	if w.runningTimer != nil {
		return
	}
	if w.runFloorSet {
		if jiffies.TimeBefore(now, w.runFloor) {
			return // queued after this jiffy's tick: the next one runs it
		}
		w.runFloorSet = false
	}
	w.floorHolds = false
	for jiffies.TimeAfterEq(now, w.clk) && jiffies.TimeAfterEq(now, w.nextExpiry) {
		if w.floorHolds && w.runFloorSet && jiffies.TimeBefore(now, w.runFloor) {
			break // a timer queued during this run waits for the next tick
		}
		levels := w.collectExpired()
		// clk is one ahead of jiffies while timers run, so that a
		// timer re-armed for "now" is not requeued endlessly.
		w.clk++
		w.recalcNextExpiry()
		for levels > 0 {
			levels--
			w.expireList(&w.expiring[levels], expire)
		}
	}
}

// expireList is expire_timers for one collected bucket.
func (w *wheel) expireList(head **Timer, expire func(*Timer)) {
	for *head != nil {
		t := *head
		w.runningTimer = t
		w.unlink(t, true)
		expire(t)
		w.runningTimer = nil
	}
}

// bucketExpiry returns when bucket idx expires next, given the current
// clk: the first jiffy at or after clk at which the bucket's level clock
// points at it. For a pending bucket that is exactly the bucket_expiry
// computed when its timers were queued.
func (w *wheel) bucketExpiry(idx uint) uint64 {
	lvl, slot := idx/lvlSize, uint64(idx%lvlSize)
	shift := lvlShift(lvl)
	c := w.clk >> shift
	if w.clk&(lvlGran(lvl)-1) != 0 {
		c++
	}
	return (c + ((slot - c) & lvlMask)) << shift
}

// funcName returns the short name of fn ("timer.expireFn"), or "<nil>".
func funcName(fn Func) string {
	if fn == nil {
		return "<nil>"
	}
	f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
	if f == nil {
		return "<unknown>"
	}
	name := f.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// dump writes a deterministic listing of w: a header with the base state,
// then one line per pending timer, ordered by level, then by bucket
// expiry, then in the order the bucket would expire them (LIFO). If label
// is non-nil its result is printed as the timer's name. Example:
//
//	wheel hz=1000 depth=9 clk=1000000 next_expiry=1000064 recalc=false timers_pending=true
//	level 1 bucket 21 (idx 85): expires=1000100 fires=1000104 fn=timer.expireFn
//
// It backs the wheel-dump view (the kernel's /proc/timer_list shows the
// same information per base).
func (w *wheel) dump(out io.Writer, label func(*Timer) string) {
	fmt.Fprintf(out, "wheel hz=%d depth=%d clk=%d next_expiry=%d recalc=%t timers_pending=%t",
		w.hz, w.depth, w.clk, w.nextExpiry, w.nextExpiryRecalc, w.timersPending)
	if w.runningTimer != nil {
		fmt.Fprintf(out, " running=%s", funcName(w.runningTimer.function))
		if label != nil {
			fmt.Fprintf(out, "(%s)", label(w.runningTimer))
		}
	}
	fmt.Fprintln(out)

	type entry struct {
		lvl, idx uint
		fires    uint64
		pos      int
		t        *Timer
	}
	var entries []entry
	for idx := uint(0); idx < w.depth*lvlSize; idx++ {
		pos := 0
		for t := w.vectors[idx]; t != nil; t = t.next {
			entries = append(entries, entry{idx / lvlSize, idx, w.bucketExpiry(idx), pos, t})
			pos++
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.lvl != b.lvl {
			return a.lvl < b.lvl
		}
		if a.fires != b.fires {
			return jiffies.TimeBefore(a.fires, b.fires)
		}
		if a.idx != b.idx {
			return a.idx < b.idx
		}
		return a.pos < b.pos
	})
	for _, e := range entries {
		fmt.Fprintf(out, "level %d bucket %d (idx %d):", e.lvl, e.idx%lvlSize, e.idx)
		if label != nil {
			fmt.Fprintf(out, " %s", label(e.t))
		}
		fmt.Fprintf(out, " expires=%d fires=%d fn=%s\n", e.t.expires, e.fires, funcName(e.t.function))
	}
}

// describe returns dump's output as a string.
func (w *wheel) describe() string {
	var sb strings.Builder
	w.dump(&sb, nil)
	return sb.String()
}

// verify checks the wheel's structural invariants and returns the first
// violation found, or nil. It is for tests and debug builds:
//   - bucket lists are well linked and every timer on bucket i has idx i
//     in its flags;
//   - a bucket's pending bit is set exactly when its list is non-empty,
//     and no bucket beyond the depth is used;
//   - every pending bucket expires at or after clk, and nextExpiry is
//     never later than the first of them (stale is fine, late is not);
//   - unless a recalculation is pending, timersPending implies that
//     nextExpiry is exactly the first bucket expiry.
//
// timersPending may be false while timers are queued, as in the kernel:
// once an empty wheel's clk has been forwarded close to its
// next_expiry (clk at the last recalculation + TIMER_NEXT_MAX_DELTA), a
// timer whose bucket lies beyond that value does not move next_expiry,
// so enqueue leaves timers_pending alone. The next run at next_expiry
// recalculates and finds it.
func (w *wheel) verify() error {
	first, found := uint64(0), false
	for idx := uint(0); idx < wheelSize; idx++ {
		head := &w.vectors[idx]
		bit := w.pendingMap[idx/lvlSize]&(1<<(idx%lvlSize)) != 0
		if idx >= w.depth*lvlSize {
			if *head != nil || bit {
				return fmt.Errorf("bucket %d beyond depth %d in use", idx, w.depth)
			}
			continue
		}
		if bit != (*head != nil) {
			return fmt.Errorf("bucket %d: pending bit %t, list non-empty %t", idx, bit, *head != nil)
		}
		pprev := head
		for t := *head; t != nil; t = t.next {
			if t.pprev != pprev {
				return fmt.Errorf("bucket %d: broken pprev link", idx)
			}
			if t.wheelIdx() != idx {
				return fmt.Errorf("bucket %d: timer has idx %d in its flags", idx, t.wheelIdx())
			}
			pprev = &t.next
		}
		if *head == nil {
			continue
		}
		be := w.bucketExpiry(idx)
		if !found || jiffies.TimeBefore(be, first) {
			first, found = be, true
		}
	}
	if !found {
		if !w.nextExpiryRecalc && w.timersPending {
			return fmt.Errorf("timers_pending set on an empty wheel")
		}
		return nil
	}
	if jiffies.TimeBefore(w.nextExpiry, w.clk) {
		return fmt.Errorf("next_expiry %d before clk %d", w.nextExpiry, w.clk)
	}
	if jiffies.TimeAfter(w.nextExpiry, first) {
		return fmt.Errorf("next_expiry %d later than the first bucket %d (recalc=%t)", w.nextExpiry, first, w.nextExpiryRecalc)
	}
	if !w.nextExpiryRecalc && w.timersPending && w.nextExpiry != first {
		return fmt.Errorf("next_expiry %d, first bucket expires %d", w.nextExpiry, first)
	}
	return nil
}
