package timer

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"

	"github.com/kdefer/kdefer/jiffies"
)

// This file checks the wheel against a naive model: for every timer the
// model keeps whether it is armed, its expires and the jiffy it must fire
// at, computed with refPlacement (the §1.3 formula) from the wheel clock
// at arm time. After every run the model's timers are sorted by that
// jiffy, and everything due must have fired.
//
// Claims checked on every operation:
//   - mod/mod_pending/reduce/delete return what the model predicts;
//   - a timer never fires before its bucket's jiffy, and (except capped
//     and past-expiry timers) never at or before its expires;
//   - never before the next tick: a timer armed outside a callback at
//     jiffies J does not fire in a run at J, even when its bucket (an
//     expiry in the past, or a wheel whose softirq is late) is already
//     due; the tick of J has passed by the time process context runs;
//   - a timer fires in the first run whose jiffies reaches its bucket, so
//     it is late by at most its level's granularity (8^level jiffies, at
//     most 8/63 of the delta above level 0) plus however late the
//     softirq ran;
//   - a timer fires once per arm, never after a delete, and is not
//     pending and is the running timer inside its callback;
//   - next-expiry equals the model's first due jiffy;
//   - the wheel's structural invariants (verify) hold after every step.
//
// The one exception to "never before expires" is the kernel corner case
// of TestModOfTimerCollectedInSameRunKeepsItInTheBatch, which the model
// predicts and counts.

// opSource yields the bytes that drive a model run.
type opSource interface {
	// byte returns the next byte, or 0 once the source is exhausted.
	byte() byte
	// done reports whether the source is exhausted.
	done() bool
}

// fuzzSource reads a fuzzer's input.
type fuzzSource struct {
	data []byte
	pos  int
}

func (s *fuzzSource) byte() byte {
	if s.pos >= len(s.data) {
		return 0
	}
	b := s.data[s.pos]
	s.pos++
	return b
}

func (s *fuzzSource) done() bool { return s.pos >= len(s.data) }

// randSource is an endless seeded source.
type randSource struct{ rng *rand.Rand }

func (s randSource) byte() byte { return byte(s.rng.Uint32()) }
func (s randSource) done() bool { return false }

func u16(s opSource) uint64 { return uint64(s.byte()) | uint64(s.byte())<<8 }

func u64(s opSource) uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v |= uint64(s.byte()) << (8 * i)
	}
	return v
}

const (
	modelTimers   = 16
	maxRunsPerOp  = 512
	modelMaxRatio = 8.0 / 63.0
)

// Callback actions a timer can be given.
const (
	actNone = iota
	actRearmSelf
	actDelOther
	actModOther
	actReduceOther
	actNestedRun
	numActs
)

type modelTimer struct {
	id int
	t  Timer

	pending bool
	expires uint64
	idx     uint   // bucket the model expects the wheel to use
	fire    uint64 // jiffy the bucket expires at
	level   int
	kind    int    // kindNormal, kindPast, kindCapped
	armClk  uint64 // wheel clk when the bucket was chosen
	armJ    uint64 // jiffies when the bucket was chosen
	procArm bool   // armed outside a callback (process context)
	// batchShortcut: modified while already collected by the running
	// expiry to an expiry with the same bucket index; fires with the
	// batch, possibly before expires.
	batchShortcut bool

	act, other int
	rel        int64
}

type modelChecker struct {
	tb      testing.TB
	hz      jiffies.HZ
	depth   uint
	w       wheel
	jiffies uint64
	timers  [modelTimers]*modelTimer
	byTimer map[*Timer]*modelTimer
	expire  func(*Timer)

	inCallback int // callbacks running (the model's expiry context)

	ops, fires, shortcuts, runs, strandedNext, nextTick int
	trace                                               []string // recent operations, for failure reports
}

func newModelChecker(tb testing.TB, hz jiffies.HZ, start uint64) *modelChecker {
	c := &modelChecker{tb: tb, hz: hz, depth: refDepth(hz), jiffies: start, byTimer: map[*Timer]*modelTimer{}}
	c.w.reset(hz, start)
	c.expire = func(t *Timer) { t.function(nil, t) }
	for i := range c.timers {
		m := &modelTimer{id: i}
		m.t.function = c.fired
		c.timers[i] = m
		c.byTimer[&m.t] = m
	}
	return c
}

func (c *modelChecker) logf(format string, args ...any) {
	if len(c.trace) == 40 {
		copy(c.trace, c.trace[1:])
		c.trace = c.trace[:39]
	}
	c.trace = append(c.trace, fmt.Sprintf(format, args...))
}

func (c *modelChecker) failf(format string, args ...any) {
	c.tb.Helper()
	c.tb.Fatalf("HZ=%d op %d jiffies=%d: %s\nrecent ops:\n  %s\n%s", c.hz, c.ops, c.jiffies,
		fmt.Sprintf(format, args...), strings.Join(c.trace, "\n  "), c.w.describe())
}

// rel decodes a relative expiry, biased towards level boundaries, the
// cutoff and the past.
func (c *modelChecker) rel(s opSource) int64 {
	switch s.byte() % 8 {
	case 0:
		return int64(s.byte()%80) - 8
	case 1:
		return int64(u16(s) % 600)
	case 2:
		return int64(u16(s) % 5000)
	case 3:
		return int64(u64(s) & (1<<(s.byte()%32) - 1))
	case 4:
		return int64(refLevelStart[s.byte()%9]) + int64(s.byte()%5) - 2
	case 5:
		cut, max := int64(refCutoff[c.depth]), int64(refTimeoutMax[c.depth])
		return [...]int64{cut - 1, cut, cut + 1, max, max + 1, 1 << 40, 1 << 62, 1<<63 - 1}[s.byte()%8]
	case 6:
		return -int64(u64(s)&(1<<(s.byte()%40)-1)) - 1
	default:
		return 0
	}
}

func (c *modelChecker) advance(s opSource) uint64 {
	switch s.byte() % 4 {
	case 0:
		return uint64(s.byte()%16) + 1
	case 1:
		return u16(s)%1000 + 1
	case 2:
		return u64(s)&(1<<(s.byte()%34)-1) + 1
	default:
		return 1
	}
}

// step decodes and performs one operation.
func (c *modelChecker) step(s opSource) {
	c.ops++
	op := s.byte() % 12
	m := c.timers[s.byte()%modelTimers]
	switch op {
	case 0, 1:
		c.mod(m, c.jiffies+uint64(c.rel(s)), false, false, "mod")
	case 2:
		c.mod(m, c.jiffies+uint64(c.rel(s)), true, false, "mod_pending")
	case 3:
		c.mod(m, c.jiffies+uint64(c.rel(s)), false, true, "reduce")
	case 4:
		c.del(m)
	case 5:
		n := uint64(s.byte()%8) + 1
		c.logf("tick %d", n)
		for i := uint64(0); i < n; i++ {
			c.runAt(c.jiffies + 1)
		}
	case 6: // tickless idle: wake only for the next expiry, as NextEvent does
		n := c.advance(s)
		c.logf("nohz +%d", n)
		target := c.jiffies + n
		for i := 0; i < maxRunsPerOp && c.jiffies != target; i++ {
			nj := target
			if next, pending := c.w.idle(c.jiffies); pending && jiffies.TimeBefore(next, target) {
				nj = next
			}
			if jiffies.TimeBefore(nj, c.jiffies) {
				nj = c.jiffies // overdue: the CPU takes its interrupt at once
			}
			c.runAt(nj)
			if nj == c.jiffies && nj != target && !c.anyDue(nj) {
				c.jiffies++ // nothing more this jiffy: sleep to the next
			}
		}
	case 7: // the softirq runs late, once
		n := c.advance(s)
		c.logf("late +%d", n)
		c.runAt(c.jiffies + n)
	case 8: // jiffies move, no softirq yet
		n := c.advance(s)
		c.logf("idle +%d", n)
		c.jiffies += n
	case 9:
		m.act = int(s.byte() % numActs)
		m.other = int(s.byte() % modelTimers)
		m.rel = c.rel(s)
		c.logf("on-fire t%d act=%d other=t%d rel=%d", m.id, m.act, m.other, m.rel)
	case 10:
		c.checkNextExpiry()
	case 11:
		c.logf("forward")
		c.w.forward(c.jiffies)
	}
	c.checkPlacements()
	if err := c.w.verify(); err != nil {
		c.failf("verify: %v", err)
	}
}

// mod performs mod_timer / mod_timer_pending / timer_reduce on the wheel
// and the model and compares.
func (c *modelChecker) mod(m *modelTimer, expires uint64, pendingOnly, reduce bool, name string) {
	c.logf("%s t%d expires=%d (jiffies%+d)", name, m.id, expires, int64(expires-c.jiffies))
	got := c.w.mod(&m.t, expires, pendingOnly, reduce, c.jiffies)
	want := c.modelMod(m, expires, pendingOnly, reduce)
	if got != want {
		c.failf("%s t%d returned %d, model %d", name, m.id, got, want)
	}
	if m.pending != m.t.pending() {
		c.failf("%s t%d: wheel pending %t, model %t", name, m.id, m.t.pending(), m.pending)
	}
}

// modelMod is __mod_timer's contract, computed on the model. The wheel
// clock it reads is the one the wheel chose the bucket with (mod has
// already forwarded it).
func (c *modelChecker) modelMod(m *modelTimer, expires uint64, pendingOnly, reduce bool) int {
	if m.pending {
		if expires == m.expires {
			return 1
		}
		if reduce && int64(m.expires-expires) <= 0 {
			return 1
		}
		clk := c.w.clk
		level, idx, fire, kind := refPlacement(c.depth, clk, expires)
		if idx == m.idx {
			if !reduce || jiffies.TimeAfter(m.expires, expires) {
				m.expires = expires
			}
			if jiffies.TimeBefore(m.fire, clk) {
				// Already collected by the running expiry.
				m.batchShortcut = true
				c.shortcuts++
			} else if fire != m.fire {
				c.failf("t%d: same bucket index %d but bucket expiry %d != %d", m.id, idx, fire, m.fire)
			} else if m.expires == expires {
				// Same bucket, new expiry: e.g. an uncapped last-level
				// timer re-armed beyond the cutoff lands where it was.
				m.level, m.kind = level, kind
			}
			return 1
		}
		c.arm(m, expires, clk, level, idx, fire, kind)
		return 1
	}
	if pendingOnly {
		return 0
	}
	clk := c.w.clk
	level, idx, fire, kind := refPlacement(c.depth, clk, expires)
	c.arm(m, expires, clk, level, idx, fire, kind)
	return 0
}

// arm records a new placement and checks the formula's own promises.
func (c *modelChecker) arm(m *modelTimer, expires, clk uint64, level int, idx uint, fire uint64, kind int) {
	m.pending, m.expires, m.idx, m.fire, m.level, m.kind, m.armClk = true, expires, idx, fire, level, kind, clk
	m.armJ, m.procArm = c.jiffies, c.inCallback == 0
	m.batchShortcut = false
	if jiffies.TimeAfter(clk, c.jiffies+1) {
		c.failf("wheel clk %d more than one jiffy ahead of jiffies", clk)
	}
	switch kind {
	case kindNormal:
		slack := fire - expires
		gran := uint64(1) << (3 * level)
		if !jiffies.TimeAfter(fire, expires) || slack > gran {
			c.failf("t%d: fire %d not within (expires, expires+%d]", m.id, fire, gran)
		}
		if level > 0 && float64(slack) > modelMaxRatio*float64(expires-clk) {
			c.failf("t%d: slack %d over 8/63 of delta %d", m.id, slack, expires-clk)
		}
	case kindPast:
		if fire != clk {
			c.failf("t%d: past expiry fires at %d, not clk %d", m.id, fire, clk)
		}
	case kindCapped:
		limit := clk + refTimeoutMax[c.depth]
		if !jiffies.TimeAfter(fire, limit) || fire-limit > lvlGran(c.depth-1) {
			c.failf("t%d: capped timer fires at %d, limit %d", m.id, fire, limit)
		}
	}
}

func (c *modelChecker) del(m *modelTimer) {
	c.logf("del t%d", m.id)
	got := c.w.detach(&m.t, true)
	want := 0
	if m.pending {
		want = 1
	}
	m.pending, m.batchShortcut = false, false
	if got != want {
		c.failf("del t%d returned %d, model %d", m.id, got, want)
	}
	if m.t.pending() {
		c.failf("t%d pending after delete", m.id)
	}
}

// runAt moves jiffies to j, runs the wheel, and checks that every timer
// the model says is due has fired.
func (c *modelChecker) runAt(j uint64) {
	c.jiffies = j
	c.runs++
	c.w.run(j, c.expire)
	if c.w.runningTimer != nil {
		c.failf("runningTimer left set")
	}
	for _, m := range c.timers {
		if c.due(m, j) {
			c.failf("t%d late: due at %d (level %d, expires %d, armed at clk %d) but pending after run(%d)",
				m.id, m.fire, m.level, m.expires, m.armClk, j)
		}
	}
}

// due reports whether the model says m must have fired by a run at j:
// its bucket has expired, and if it was armed outside a callback, the
// tick of its arm jiffy has passed.
func (c *modelChecker) due(m *modelTimer, j uint64) bool {
	return m.pending && !jiffies.TimeAfter(m.fire, j) && (!m.procArm || jiffies.TimeAfter(j, m.armJ))
}

// anyDue reports whether some armed timer is due at j.
func (c *modelChecker) anyDue(j uint64) bool {
	for _, m := range c.timers {
		if c.due(m, j) {
			return true
		}
	}
	return false
}

// dueOrder is the naive model's queue: the armed timers sorted by firing
// jiffy (relative to now, so wrap-around sorts correctly).
func (c *modelChecker) dueOrder() []*modelTimer {
	var q []*modelTimer
	for _, m := range c.timers {
		if m.pending {
			q = append(q, m)
		}
	}
	sort.SliceStable(q, func(i, k int) bool { return int64(q[i].fire-c.jiffies) < int64(q[k].fire-c.jiffies) })
	return q
}

// fired is every model timer's callback.
func (c *modelChecker) fired(_ *kernel.Ctx, t *Timer) {
	m := c.byTimer[t]
	j := c.jiffies
	c.logf("  fire t%d at %d", m.id, j)
	switch {
	case c.w.runningTimer != t:
		c.failf("t%d: runningTimer is not the expiring timer", m.id)
	case t.pending():
		c.failf("t%d: pending inside its own callback", m.id)
	case !m.pending:
		c.failf("t%d fired but is not armed (deleted, or fired twice for one arm)", m.id)
	case jiffies.TimeBefore(j, m.fire):
		c.failf("t%d fired early at %d, bucket expires %d", m.id, j, m.fire)
	case m.kind == kindNormal && !m.batchShortcut && !jiffies.TimeAfter(j, m.expires):
		c.failf("t%d fired at %d, not after its expires %d", m.id, j, m.expires)
	case m.kind == kindPast && jiffies.TimeBefore(j, m.armClk):
		c.failf("t%d (past expiry) fired at %d before clk %d", m.id, j, m.armClk)
	case m.procArm && !jiffies.TimeAfter(j, m.armJ):
		c.failf("t%d armed outside a callback at jiffy %d fired in that jiffy, before the next tick", m.id, m.armJ)
	}
	if m.procArm && !jiffies.TimeAfter(m.fire, m.armJ) {
		c.nextTick++ // its bucket was due when armed: the floor held it
	}
	c.inCallback++
	defer func() { c.inCallback-- }()
	m.pending, m.batchShortcut = false, false
	c.fires++

	other := c.timers[m.other]
	switch m.act {
	case actRearmSelf:
		c.mod(m, j+uint64(m.rel), false, false, "  callback rearm")
	case actDelOther:
		c.del(other)
	case actModOther:
		c.mod(other, j+uint64(m.rel), false, false, "  callback mod")
	case actReduceOther:
		c.mod(other, j+uint64(m.rel), false, true, "  callback reduce")
	case actNestedRun:
		before := c.fires
		c.w.run(j+1<<20, c.expire)
		if c.fires != before {
			c.failf("nested run expired timers")
		}
	}
}

// checkNextExpiry compares the wheel's next expiry with the model's first
// due jiffy.
func (c *modelChecker) checkNextExpiry() {
	got := c.w.nextExpiryJiffies()
	q := c.dueOrder()
	c.logf("next-expiry = %d", got)
	if len(q) == 0 {
		// next_expiry of an empty wheel is TIMER_NEXT_MAX_DELTA past the
		// clk of the last recalculation; forward may have moved clk since.
		if c.w.timersPending || jiffies.TimeBefore(got, c.w.clk) {
			c.failf("empty model: next expiry %d, timers_pending %t", got, c.w.timersPending)
		}
		return
	}
	if !c.w.timersPending {
		// Queued beyond a stale empty-wheel next_expiry (see verify):
		// found at the next recalculation, never late.
		c.strandedNext++
		if jiffies.TimeAfter(got, q[0].fire) {
			c.failf("next expiry %d (timers_pending false) after model's first t%d at %d", got, q[0].id, q[0].fire)
		}
		return
	}
	if got != q[0].fire {
		c.failf("next expiry %d, model's first is t%d at %d", got, q[0].id, q[0].fire)
	}
}

// checkPlacements checks that each armed timer sits in the bucket the
// model chose and that the bucket expires when the model says.
func (c *modelChecker) checkPlacements() {
	for _, m := range c.timers {
		if m.pending != m.t.pending() {
			c.failf("t%d: wheel pending %t, model %t", m.id, m.t.pending(), m.pending)
		}
		if !m.pending {
			continue
		}
		if m.t.wheelIdx() != m.idx {
			c.failf("t%d in bucket %d, model %d", m.id, m.t.wheelIdx(), m.idx)
		}
		if be := c.w.bucketExpiry(m.idx); be != m.fire {
			c.failf("t%d: bucket %d expires %d, model %d", m.id, m.idx, be, m.fire)
		}
	}
}

// runModel drives a checker from s for at most maxOps operations.
func runModel(tb testing.TB, s opSource, maxOps int) *modelChecker {
	hz := allHZ[s.byte()%4]
	var start uint64
	switch s.byte() % 4 {
	case 0:
		start = hz.InitialJiffies()
	case 1:
		start = ^uint64(0) - u16(s) // about to wrap
	case 2:
		start = u64(s)
	default:
		start = 0
	}
	c := newModelChecker(tb, hz, start)
	for c.ops < maxOps && !s.done() {
		c.step(s)
	}
	// Drain: everything armed must eventually fire, exactly once.
	c.logf("drain")
	for i := 0; i < 64 && len(c.dueOrder()) > 0; i++ {
		for _, m := range c.timers {
			m.act = actNone
		}
		j := c.dueOrder()[0].fire
		if jiffies.TimeBeforeEq(j, c.jiffies) {
			j = c.jiffies + 1 // already due: the next tick runs it
		}
		c.runAt(j)
	}
	if q := c.dueOrder(); len(q) > 0 {
		c.failf("t%d never fired", q[0].id)
	}
	return c
}

// TestWheelAgainstModelRandomOps runs the model checker over 100k seeded
// random operations (25k per HZ; a fifth of that under -race), so CI
// covers it without -fuzz.
func TestWheelAgainstModelRandomOps(t *testing.T) {
	total := 0
	var fires, runs, shortcuts, stranded, nextTick int
	chunks := uint64(5)
	if raceEnabled {
		chunks = 1 // see race_on_test.go
	}
	for seed := uint64(0); seed < 4; seed++ {
		for chunk := uint64(0); chunk < chunks; chunk++ {
			src := randSource{rand.New(rand.NewPCG(seed, chunk))}
			c := runModel(t, src, 5000)
			total += c.ops
			fires += c.fires
			runs += c.runs
			shortcuts += c.shortcuts
			stranded += c.strandedNext
			nextTick += c.nextTick
		}
	}
	if total < int(20000*chunks) {
		t.Fatalf("only %d ops", total)
	}
	t.Logf("%d ops, %d runs, %d timer expiries, %d same-index shortcuts on collected timers, %d next-expiry checks with timers_pending=false and timers queued, %d expiries held for the next tick",
		total, runs, fires, shortcuts, stranded, nextTick)
	if nextTick == 0 {
		t.Error("no timer was armed into an already-due bucket: the next-tick rule is not exercised")
	}
	if fires < total/20 {
		t.Errorf("only %d expiries in %d ops: the generator is not exercising expiry", fires, total)
	}
}
