package workqueue

import "slices"

// handoff chooses how a real-time concurrency-managed worker whose pool
// has run out of items waits for the next one:
//
//   - it polls the pool's incoming chain from its processor (pollIncoming,
//     then Schedule's own short spin): a queued item starts without a
//     wakeup, but its hand-off moves a few cache lines between the cores,
//     which costs from tens of nanoseconds (nearby cores) to hundreds
//     (distant ones, or virtual CPUs the host has placed apart);
//   - or it parks at once (kernel.ScheduleNoSpin): the queuer's wakeup
//     makes it runnable on the queuer's processor, as the kernel wakes a
//     kworker on its CPU, and no line crosses, but the wakeup and the
//     switch cost a few hundred nanoseconds.
//
// Which is faster depends on the machine and can change while it runs (a
// virtual machine's CPUs are moved by the host), so the pool measures
// both: the queue latency of the first item after each hand-off, when that
// item is a measured one (see Work.stamp), is kept for its way. The pool
// keeps to one way; every handoffProbe it measures that way afresh and then
// the other, for handoffSamples measured hand-offs each, and keeps the one
// with the lower median. The first handoffSamples hand-offs after switching
// to the other way are not counted: the switch itself moves the worker's
// goroutine (a parked worker runs on its waker's processor, a polling one
// on its own), and until the Go scheduler has settled them the new way
// measures slower than it is, which can keep a pool on the slower way until
// the next probe. (On the 2-core dev machine, 5 runs each: the median of 8
// parked hand-offs right after the switch was 190–1,592 ns, median 300 over
// 68 probes; with the first 8 left out, 151–501, median 181 over 67.)
// Guarded by pool.mu.
type handoff struct {
	poll, park window
	parking    bool  // the worker parks at once (else it polls)
	phase      int   // probeNone, probeCurrent, probeWarm or probeOther
	nextProbe  int64 // kernel time of the next measurement of both ways
}

// Phases of handoff's measurement of both ways.
const (
	probeNone    = iota // keeping to one way
	probeCurrent        // measuring the way kept, afresh
	probeWarm           // switched to the other way, not yet measuring it
	probeOther          // measuring the other way, afresh
)

// Ways a worker waited for its first item after running out of items.
const (
	waitedNone = iota // not the first item after a wait
	waitedPoll        // it polled (pollIncoming) and found it
	waitedPark        // it parked at once (ScheduleNoSpin)
)

const (
	// handoffSamples is how many measured hand-offs of one way are
	// needed before they count.
	handoffSamples = 8
	// handoffProbe is how often the other way is tried again.
	handoffProbe = 100_000_000 // 100 ms
)

// window holds the last handoffSamples durations (ns) of one way, and
// how many it has seen.
type window struct {
	v [handoffSamples]int64
	n int
}

func (a *window) add(ns int64) {
	a.v[a.n%handoffSamples] = ns
	a.n++
}

// median is the median of the durations held: robust to the odd hand-off
// that waited for a page fault, a preemption or the first wakeup of an
// idle thread.
func (a *window) median() int64 {
	v := a.v
	s := v[:min(a.n, handoffSamples)]
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	return s[len(s)/2]
}

// polls reports whether a worker of the pool that runs out of items
// should poll for the next (otherwise it parks at once).
func (h *handoff) polls() bool { return !h.parking }

// observe takes the queue latency ns of an item that started at kernel
// time now as the first after a wait of the given way.
func (h *handoff) observe(way int, ns, now int64) {
	if (way == waitedPark) != h.parking {
		return // a wait that began before the pool switched ways
	}
	cur, other := &h.poll, &h.park
	if h.parking {
		cur, other = other, cur
	}
	cur.add(ns)
	if cur.n < handoffSamples {
		return
	}
	switch h.phase {
	case probeNone:
		if now >= h.nextProbe {
			h.phase = probeCurrent
			*cur = window{}
		}
	case probeCurrent:
		h.phase = probeWarm
		h.parking = !h.parking
		*other = window{}
	case probeWarm:
		h.phase = probeOther
		*cur = window{}
	case probeOther:
		h.phase = probeNone
		h.nextProbe = now + handoffProbe
		if other.median() < cur.median() {
			h.parking = !h.parking
		}
	}
}
