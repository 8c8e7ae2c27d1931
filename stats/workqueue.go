package stats

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/trace"
)

// MaxWorkqueues bounds the workqueues counted apart: the first
// MaxWorkqueues names seen each get their counters, the queueings of any
// further ones are counted together under OtherWorkqueues. It keeps the
// label values of a metrics exporter bounded when a program makes
// workqueues with names of its own (one per device, say).
const MaxWorkqueues = 64

// OtherWorkqueues is the name the workqueues beyond MaxWorkqueues are
// counted under.
const OtherWorkqueues = "(other)"

// maxTrackedWorks bounds the work items followed from their queueing to
// their execution (per shard of workMap, 16 shards). An item cancelled
// while queued leaves no record, so without a bound a program that queues
// and cancels items of its own would grow the table without end; past
// it, an item waiting for its execution is taken to be cancelled.
const maxTrackedWorks = 4096

// WorkqueueStats are one workqueue's counters, counted from its
// tracepoints (per workqueue name: workqueues of the same name count
// together).
type WorkqueueStats struct {
	// Name is the workqueue's name ("events"), or OtherWorkqueues.
	Name string `json:"name"`
	// Queued counts workqueue_queue_work: items queued (a delayed item
	// when its timer queues it), as workqueue.Stats.Queued counts them.
	Queued uint64 `json:"queued"`
	// Started and Executed count the executions of those queueings that
	// began (workqueue_execute_start) and ended (workqueue_execute_end).
	Started  uint64 `json:"started"`
	Executed uint64 `json:"executed"`
	// Running is the number of items running now (started and not
	// ended while counting).
	Running int64 `json:"running"`
	// InFlight is the number of items queued and not yet finished. The
	// kernel has no tracepoint for a cancel, so an item cancelled while
	// queued counts until it is queued again (its new queue_work shows
	// that the old one never ran), or until it is forgotten to make room
	// when more than 65536 items wait; workqueue.Snapshot reads the exact
	// number from the workqueue itself.
	InFlight int64 `json:"in_flight"`
	// Latency is the histogram of queue-to-start latency: from an item's
	// workqueue_queue_work to the workqueue_execute_start it caused, in
	// seconds.
	Latency Histogram `json:"latency"`
}

// wqCounters are one workqueue name's counters: those the queueing side
// writes and those the workers write on cache lines of their own. The
// gauges are differences of counters, less what Disable set aside.
type wqCounters struct {
	id   uint64 // the name's interned string id
	name string // resolved at creation ("" until a snapshot names it)

	_         [64]byte
	queued    atomic.Uint64 // queue_work
	cancelled atomic.Uint64 // queueings that never ran (taken to be cancelled)

	_                 [64]byte
	started, executed atomic.Uint64
	latency           histogram

	// What Disable set aside: in flight = queued − executed − cancelled
	// − flightBase, running = started − executed − runningBase.
	flightBase, runningBase atomic.Int64
}

// inFlight and running are the gauges.
func (c *wqCounters) inFlight() int64 {
	q, x, n := c.queued.Load(), c.executed.Load(), c.cancelled.Load()
	return int64(q-x-n) - c.flightBase.Load()
}

func (c *wqCounters) running() int64 {
	return int64(c.started.Load()-c.executed.Load()) - c.runningBase.Load()
}

// wqTable maps interned workqueue names to their counters: read with one
// load, replaced whole when a name is added (rarely).
type wqTable struct {
	mu    sync.Mutex
	m     atomic.Pointer[map[uint64]*wqCounters]
	other wqCounters
}

// get returns the counters of the workqueue name id (a Str), adding them
// while there are fewer than MaxWorkqueues; str names it (nil: later).
func (t *wqTable) get(id uint64, str func(uint64) string) *wqCounters {
	if m := t.m.Load(); m != nil {
		if c, ok := (*m)[id]; ok {
			return c
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m.Load()
	if old != nil {
		if c, ok := (*old)[id]; ok {
			return c
		}
		if len(*old) >= MaxWorkqueues {
			return &t.other
		}
	}
	c := &wqCounters{id: id}
	if str != nil {
		c.name = str(id)
	}
	nm := make(map[uint64]*wqCounters, 1)
	if old != nil {
		for k, v := range *old {
			nm[k] = v
		}
	}
	nm[id] = c
	t.m.Store(&nm)
	return c
}

// resetGauges zeroes the in-flight and running counts (Disable): the
// executions that end while not counting are not seen.
func (t *wqTable) resetGauges() {
	t.mu.Lock()
	defer t.mu.Unlock()
	reset := func(c *wqCounters) {
		c.flightBase.Store(c.inFlight() + c.flightBase.Load())
		c.runningBase.Store(c.running() + c.runningBase.Load())
	}
	if m := t.m.Load(); m != nil {
		for _, c := range *m {
			reset(c)
		}
	}
	reset(&t.other)
}

// queueing is a queue_work waiting for its execution.
type queueing struct {
	wq *wqCounters
	ts int64
}

// workState is what is known of one work item: its queueing waiting for
// an execution (pending), the workqueue of its execution in progress
// (running), and the workqueue of a queueing taken to be cancelled
// (tomb; see wqStart).
type workState struct {
	pending queueing
	running *wqCounters
	tomb    *wqCounters
}

// tombstone is an item whose last execution ended with a queueing taken
// to be cancelled.
type tombstone struct {
	ptr uint64
	wq  *wqCounters
}

// workMap follows work items by address, sharded. The states are values:
// following an item allocates nothing once its shard's map has grown.
type workMap struct {
	shards [16]struct {
		mu     sync.Mutex
		m      map[uint64]workState
		recent [8]tombstone // the latest ended items with a tomb
		next   int
		_      [40]byte
	}
}

func (wm *workMap) clear() {
	for i := range wm.shards {
		sh := &wm.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.recent = [8]tombstone{}
		sh.mu.Unlock()
	}
}

// wqQueue is the workqueue_queue_work probe: the item is queued on the
// workqueue Args[2] names. If an earlier queueing of it has not started,
// that one is taken to be cancelled (a pending item cannot be queued:
// queue_work would have returned false and recorded nothing) — but see
// wqStart.
func (s *counters) wqQueue(r *trace.Record) {
	wc := s.wqs.get(r.Args[2], s.str)
	wc.queued.Add(1)
	sh := &s.works.shards[int((r.Args[0]>>4)&15)]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = map[uint64]workState{}
	}
	ws, ok := sh.m[r.Args[0]]
	if !ok && len(sh.m) >= maxTrackedWorks {
		forgetOne(sh.m)
	}
	if ws.pending.wq != nil {
		ws.pending.wq.cancelled.Add(1)
		ws.tomb = ws.pending.wq
	}
	ws.pending = queueing{wq: wc, ts: r.TS}
	sh.m[r.Args[0]] = ws
	sh.mu.Unlock()
}

// forgetOne drops an item that waits for its execution and is not running
// (taken to be cancelled), to make room.
func forgetOne(m map[uint64]workState) {
	for k, ws := range m {
		if ws.running == nil {
			if ws.pending.wq != nil {
				ws.pending.wq.cancelled.Add(1)
			}
			delete(m, k)
			return
		}
	}
}

// wqStart is the workqueue_execute_start probe: the item's latest
// queueing runs, its latency measured.
//
// The worker clears an item's PENDING before it records execute_start, so
// another CPU may queue the item again in between: its queue_work is then
// recorded first, and the earlier queueing, which is the one starting,
// looks cancelled. This start is taken for the new queueing; when the
// item then starts with nothing pending, it is the earlier queueing after
// all: its tomb is raised (no longer cancelled) and the execution counted,
// without a latency. An execution of nothing counted (queued before
// Enable) is not counted.
func (s *counters) wqStart(r *trace.Record) {
	ptr := r.Args[0]
	sh := &s.works.shards[int((ptr>>4)&15)]
	sh.mu.Lock()
	ws, ok := sh.m[ptr]
	if q := ws.pending; q.wq != nil {
		sh.m[ptr] = workState{running: q.wq, tomb: ws.tomb}
		sh.mu.Unlock()
		q.wq.started.Add(1)
		q.wq.latency.observe(r.TS - q.ts)
		return
	}
	tomb := ws.tomb
	if !ok {
		for i := range sh.recent {
			if t := &sh.recent[i]; t.ptr == ptr && ptr != 0 {
				tomb = t.wq
				*t = tombstone{}
				break
			}
		}
	}
	if tomb == nil {
		sh.mu.Unlock()
		return
	}
	if sh.m == nil {
		sh.m = map[uint64]workState{}
	}
	sh.m[ptr] = workState{running: tomb}
	sh.mu.Unlock()
	tomb.cancelled.Add(^uint64(0))
	tomb.started.Add(1)
}

// wqEnd is the workqueue_execute_end probe. The item is forgotten unless
// it was queued again meanwhile (its tomb, if any, is kept a while in its
// shard's recent list).
func (s *counters) wqEnd(r *trace.Record) {
	ptr := r.Args[0]
	sh := &s.works.shards[int((ptr>>4)&15)]
	sh.mu.Lock()
	ws := sh.m[ptr]
	if ws.running == nil {
		sh.mu.Unlock()
		return
	}
	wc := ws.running
	if ws.pending.wq == nil {
		delete(sh.m, ptr)
		if ws.tomb != nil {
			sh.recent[sh.next] = tombstone{ptr: ptr, wq: ws.tomb}
			sh.next = (sh.next + 1) % len(sh.recent)
		}
	} else {
		sh.m[ptr] = workState{pending: ws.pending, tomb: ws.tomb}
	}
	sh.mu.Unlock()
	wc.executed.Add(1)
}

// wqSnapshot fills snap.Workqueues, by name.
func (s *counters) wqSnapshot(snap *Snapshot) {
	var all []*wqCounters
	if m := s.wqs.m.Load(); m != nil {
		for _, c := range *m {
			all = append(all, c)
		}
	}
	if s.wqs.other.queued.Load() > 0 {
		all = append(all, &s.wqs.other)
	}
	for _, c := range all {
		name := c.name
		switch {
		case c == &s.wqs.other:
			name = OtherWorkqueues
		case name == "" && s.str != nil:
			name = s.str(c.id)
		}
		if name == "" {
			name = "#" + strconv.FormatUint(c.id, 10)
		}
		st := WorkqueueStats{Name: name, Queued: c.queued.Load(), Started: c.started.Load(),
			Executed: c.executed.Load(), Running: max(c.running(), 0), InFlight: max(c.inFlight(), 0),
			Latency: c.latency.snapshot()}
		snap.Workqueues = append(snap.Workqueues, st)
	}
	slices.SortFunc(snap.Workqueues, func(a, b WorkqueueStats) int { return cmp.Compare(a.Name, b.Name) })
}
