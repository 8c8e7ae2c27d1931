package workqueue

import "testing"

// TestHandoffKeepsTheFasterWayAndTriesTheOtherAgain: the policy of a
// concurrency-managed worker that has run out of items, fed hand-off
// latencies as the worker would measure them.
func TestHandoffKeepsTheFasterWayAndTriesTheOtherAgain(t *testing.T) {
	var h handoff
	now := int64(1_000_000)
	// feed gives n hand-offs of the way the policy asks for, taking
	// pollNs or parkNs each, 1 µs apart.
	feed := func(pollNs, parkNs int64, n int) {
		for range n {
			if h.polls() {
				h.observe(waitedPoll, pollNs, now)
			} else {
				h.observe(waitedPark, parkNs, now)
			}
			now += 1000
		}
	}
	if !h.polls() {
		t.Fatal("a new pool does not poll")
	}
	// Nearby cores: polling 150 ns, parking 220. After its first
	// handoffSamples polls the pool measures polling afresh, then tries
	// parking, and goes back to polling.
	feed(150, 220, 2*handoffSamples)
	if h.polls() {
		t.Fatalf("the pool did not try parking after its first polls: %+v", h)
	}
	// The first hand-offs after the switch are slow (the goroutines
	// settle) and do not count.
	feed(150, 5000, handoffSamples)
	if h.polls() || h.park.n != 0 {
		t.Fatalf("the hand-offs right after the switch were counted: %+v", h)
	}
	feed(150, 220, handoffSamples)
	if !h.polls() || h.park.median() != 220 || h.poll.median() != 150 {
		t.Fatalf("parking (220 ns) was kept over polling (150 ns): %+v", h)
	}
	feed(150, 220, 1000)
	if !h.polls() {
		t.Fatal("the pool left polling before handoffProbe")
	}
	// A wait that began before a switch does not count for the new way.
	h.observe(waitedPark, 1, now)
	if h.park.median() != 220 {
		t.Fatal("a parked hand-off counted while the pool polls")
	}
	// The host moves the CPUs apart: polling now takes 530 ns. The next
	// try of parking finds it faster and keeps it.
	now = h.nextProbe
	feed(530, 220, 100)
	if h.polls() {
		t.Fatalf("the pool polls at 530 ns when parking takes 220: %+v", h)
	}
	// Until the next try of polling, the pool parks, however often.
	feed(530, 220, 10_000)
	if h.polls() {
		t.Fatal("the pool polled again before handoffProbe")
	}
	// The CPUs are close again: the next try of polling keeps it.
	now = h.nextProbe
	feed(150, 220, 100)
	if !h.polls() {
		t.Fatalf("the pool parks when polling takes 150 ns: %+v", h)
	}
}

// TestHandoffWindowMedianIgnoresAnOutlier: the first wakeup after a switch
// can take microseconds; one such sample does not decide.
func TestHandoffWindowMedianIgnoresAnOutlier(t *testing.T) {
	var w window
	if w.median() != 0 {
		t.Fatal("an empty window has a median")
	}
	for _, ns := range []int64{1772, 240, 250, 230, 260, 240, 250, 235} {
		w.add(ns)
	}
	if m := w.median(); m != 250 {
		t.Fatalf("median %d, want 250", m)
	}
	for range handoffSamples {
		w.add(530)
	}
	if m := w.median(); m != 530 || w.n != 2*handoffSamples {
		t.Fatalf("after %d more samples: median %d, n %d", handoffSamples, m, w.n)
	}
}
