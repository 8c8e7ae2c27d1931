package kernel

import (
	"context"
	"fmt"

	"github.com/kdefer/kdefer/printk"
)

// Soft-lockup watchdog parameters (kernel/watchdog.c with the default
// watchdog_thresh of 10 s): the watchdog's hrtimer samples every
// sample_period = watchdog_thresh * 2 / 5 seconds, and a CPU that has not
// scheduled for more than 2 * watchdog_thresh seconds is reported.
const (
	WatchdogThresh      = 10                              // watchdog_thresh, seconds
	softlockupThresh    = 2 * WatchdogThresh              // get_softlockup_thresh()
	watchdogSamplePerNs = int64(WatchdogThresh) * 2e9 / 5 // sample_period in ns
	TaintSoftlockup     = 1 << 14                         // TAINT_SOFTLOCKUP 'L'
)

// Spin busy-waits for ns nanoseconds of CLOCK_MONOTONIC without sleeping:
// the primitive under ndelay/udelay/mdelay, legal in any context. It never
// returns early, except that it ends at once when the kernel shuts down. A
// wait too long to express (ns beyond the clock's range) spins "forever".
//
// In real time it spins on the clock without yielding the processor. In
// virtual time the busy context leaves the CPU until the clock reaches the
// end of the wait while everything else runs, and time moves on to it:
// other CPUs' timers fire and other tasks run meanwhile (a task can wait in
// timer_delete_sync for a callback that spins, say). On the goroutine that
// drives a virtual kernel (a test between Run calls, an attached task) Spin
// drives it until the end.
//
// A spin that holds its CPU for more than 20 s (2 * watchdog_thresh) is
// reported by the soft-lockup watchdog, as the kernel's does, with the
// report repeated every 20 s or so while it lasts:
//
//	watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:42]
//
// followed by the modules and a stack, and the kernel is tainted L. The
// watchdog samples every 4 s of the clock; the stuck time is counted in the
// kernel's units of 2^30 ns, which is why 24 s read "22s". In virtual time
// a spin that never ends is reported once and then stays parked with no
// further event (a driver waiting for its task then finds nothing left to
// do); on the driver goroutine it returns after the report.
func Spin(c *Ctx, ns int64) {
	if ns <= 0 {
		return
	}
	k := c.k
	start := k.Now()
	end := NoEvent
	if ns < NoEvent-start {
		end = start + ns
	}
	w := newSoftLockupWatch(start)
	if k.virtual {
		k.spinVirtual(c, end, &w)
		return
	}
	for {
		now := k.Now()
		if now >= end || k.dying.Load() {
			return
		}
		if now >= w.next {
			w.sample(c, now)
		}
		// A pure spin: yielding would let the garbage collector's worker
		// or another goroutine take the processor for up to a millisecond,
		// and udelay(1000) would overshoot by that much. The Go runtime
		// still preempts a long spin asynchronously when it must.
	}
}

// spinVirtual is Spin in virtual time.
func (k *Kernel) spinVirtual(c *Ctx, end int64, w *softLockupWatch) {
	v := k.virt
	cur := v.current
	for {
		now := k.Now()
		if now >= end || k.dying.Load() {
			return
		}
		for now >= w.next {
			w.sample(c, now)
		}
		until := min(end, w.next)
		if end == NoEvent && w.reported {
			if cur == nil {
				return // the driver cannot spin forever
			}
			until = NoEvent // parked until shutdown
		}
		if cur == nil {
			k.runVirtual(context.Background(), until, nil)
			continue
		}
		v.spinPark(cur, until)
	}
}

// softLockupWatch is the soft-lockup watchdog's view of one busy-wait:
// touch is when the CPU last scheduled (the watchdog's sample before the
// wait began), report when it last reported, next the next sample due.
type softLockupWatch struct {
	touch, report, next int64
	reported            bool
}

func newSoftLockupWatch(start int64) softLockupWatch {
	touch := start - start%watchdogSamplePerNs
	w := softLockupWatch{touch: touch, report: touch}
	w.next = w.nextReport()
	return w
}

// nextReport is the first watchdog sample at which is_softlockup() finds
// the CPU stuck: its timestamp (get_timestamp(): ns >> 30) is past the last
// report's by more than the threshold.
func (w *softLockupWatch) nextReport() int64 {
	s := w.report + watchdogSamplePerNs
	for s>>30 <= w.report>>30+softlockupThresh {
		s += watchdogSamplePerNs
	}
	return s
}

// sample is the watchdog's hrtimer callback at sample time w.next (now is
// at or after it): the soft-lockup report of watchdog_timer_fn.
func (w *softLockupWatch) sample(c *Ctx, now int64) {
	at := w.next
	duration := at>>30 - w.touch>>30
	w.report = at
	w.reported = true
	w.next = w.nextReport()
	c.k.softLockup(c, duration)
}

// softLockup prints the soft-lockup report for c's CPU and taints the
// kernel with L (TAINT_SOFTLOCKUP).
func (k *Kernel) softLockup(c *Ctx, duration int64) {
	k.warnings.Add(1)
	lines := []string{
		fmt.Sprintf("watchdog: BUG: soft lockup - CPU#%d stuck for %ds! [%s:%d]", c.cpu.id, duration, c.task.Comm(), c.task.pid),
		k.modulesLinkedIn(),
	}
	lines = append(lines, k.dumpStackLines(c)...)
	k.emitLines(c, printk.LevelEmerg, lines)
	k.taint.Or(TaintSoftlockup)
}
