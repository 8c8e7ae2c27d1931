package trace

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultBufferRecords is the capacity of each CPU's ring when Options
// gives none.
const DefaultBufferRecords = 4096

// The enable mask is one 64-bit word, so that testing an event is one
// load: this fails to compile once there are more than 64 events (make the
// mask an array indexed by e>>6 then).
var _ [64 - NumEvents]struct{}

// Options configure a Tracer.
type Options struct {
	// CPUs is the number of per-CPU rings (at least 1).
	CPUs int
	// BufferRecords is each CPU's ring capacity in records, rounded up to
	// a power of two (0: DefaultBufferRecords). The rings are allocated
	// when the first event is enabled, as the kernel expands its ring
	// buffer on first use.
	BufferRecords int
	// Clock returns the time stamped on records, in ns since boot.
	Clock func() int64
}

// Tracer is one kernel's tracing instance (the top-level tracefs
// instance): the enable state of every static event, one fixed-size ring
// of records per CPU that overwrites its oldest record when full, and the
// table of strings records refer to. Two Tracers share nothing. Emitting
// and reading may happen concurrently from any goroutine.
type Tracer struct {
	// mask has bit e set when event e is enabled in the rings or has a
	// probe attached: Tracer.On reads it. ring and probed are its two
	// parts; they change only under mu.
	mask   atomic.Uint64
	ring   atomic.Uint64
	probed atomic.Uint64
	probes atomic.Pointer[probeTable]
	// scratch holds the *Record a probed Emit builds its record in.
	scratch sync.Pool

	clock func() int64
	seq   atomic.Uint64
	size  int // per-CPU capacity, a power of two
	cpus  []cpuBuffer

	mu        sync.Mutex // serialises enabling (ring allocation), probes and interning
	allocated bool
	strs      atomic.Pointer[strTable]
	probeID   uint64 // the last probe's id; under mu
}

// cpuBuffer is one CPU's ring (ring_buffer_per_cpu). head counts records
// ever written, tail the oldest one still in the ring; a writer that finds
// the ring full overwrites the record at tail and counts it lost.
type cpuBuffer struct {
	mu      sync.Mutex
	recs    []Record
	head    uint64 // next record's position
	tail    uint64 // oldest unread record's position
	lost    uint64 // records overwritten unread since the last consuming read (or Clear)
	overrun uint64 // records overwritten unread since the last Clear
	read    uint64 // records consumed by Read since the last Clear
	_       [64]byte
}

type strTable struct {
	ids  map[string]uint64
	strs []string // strs[id-1]
}

// New returns a Tracer with every event disabled. It fails with an error
// wrapping ErrBadOptions for a CPU count below 1, a negative capacity or a
// nil clock.
func New(opts Options) (*Tracer, error) {
	if opts.CPUs < 1 || opts.BufferRecords < 0 || opts.Clock == nil {
		return nil, fmt.Errorf("trace: new tracer with %d CPUs, %d records, clock set %t: %w",
			opts.CPUs, opts.BufferRecords, opts.Clock != nil, ErrBadOptions)
	}
	n := opts.BufferRecords
	if n == 0 {
		n = DefaultBufferRecords
	}
	size := 1
	for size < n {
		size <<= 1
	}
	t := &Tracer{clock: opts.Clock, size: size, cpus: make([]cpuBuffer, opts.CPUs)}
	t.scratch.New = func() any { return new(Record) }
	t.strs.Store(&strTable{ids: map[string]uint64{}})
	return t, nil
}

// ErrBadOptions is wrapped by New's error for unusable Options.
var ErrBadOptions = errors.New("trace: bad options")

// On reports whether event e is enabled, in the rings or by an attached
// probe: one atomic load and a test. Call
// sites guard the recording with it, so that a disabled tracepoint costs
// only this (the kernel's static-key branch):
//
//	if tr.On(trace.TimerStart) {
//		tr.Emit(&h, trace.TimerStart, &args)
//	}
func (t *Tracer) On(e Event) bool {
	return t.mask.Load()>>e&1 != 0
}

// Set returns the enable-mask bits of events, for OnAny.
func Set(events ...Event) uint64 {
	var m uint64
	for _, e := range events {
		if e < NumEvents {
			m |= 1 << e
		}
	}
	return m
}

// OnAny reports whether any event of set (see Set) is enabled: one load,
// for a call site that fires one of several events.
func (t *Tracer) OnAny(set uint64) bool { return t.mask.Load()&set != 0 }

// NumCPUs returns the number of per-CPU rings.
func (t *Tracer) NumCPUs() int { return len(t.cpus) }

// BufferRecords returns each CPU's ring capacity in records.
func (t *Tracer) BufferRecords() int { return t.size }

// Emit records event e with the common fields of h and the arguments a on
// h.CPU's ring, unless e is disabled or h.CPU has no ring. It takes that
// ring's lock, stamps the record with the clock and the next sequence
// number, and allocates nothing: h and a are read, not kept. When the
// ring is full the oldest record is overwritten and counted lost. Then,
// if probes are attached to e (AttachProbe), each is called with the
// record, in the caller's context.
func (t *Tracer) Emit(h *Header, e Event, a *Args) {
	if e >= NumEvents || !t.On(e) || uint(h.CPU) >= uint(len(t.cpus)) {
		return
	}
	if t.probed.Load()>>e&1 != 0 {
		t.emitProbed(h, e, a)
		return
	}
	b := &t.cpus[h.CPU]
	b.mu.Lock()
	if b.recs == nil { // enabled while rings were being allocated
		b.mu.Unlock()
		return
	}
	if b.head-b.tail == uint64(len(b.recs)) {
		b.tail++
		b.lost++
		b.overrun++
	}
	r := &b.recs[b.head&uint64(len(b.recs)-1)]
	b.head++
	t.fill(r, h, e, a)
	b.mu.Unlock()
}

// fill stamps r and copies the common fields and arguments into it.
func (t *Tracer) fill(r *Record, h *Header, e Event, a *Args) {
	r.TS = t.clock()
	r.Seq = t.seq.Add(1)
	r.PID = int32(h.PID)
	r.CPU = uint16(h.CPU)
	r.Event = e
	r.Flags = h.Flags
	r.Preempt = h.Preempt
	n := copy(r.Comm[:len(r.Comm)-1], h.Comm)
	clear(r.Comm[n:])
	r.Args = *a
}

// emitProbed is Emit for an event with probes: the record is built in a
// scratch record (a probe keeps no pointer to it), written to the ring if the event is enabled there, and handed to
// every probe.
//
//go:noinline
func (t *Tracer) emitProbed(h *Header, e Event, a *Args) {
	rp := t.scratch.Get().(*Record)
	defer t.scratch.Put(rp)
	r := rp
	t.fill(r, h, e, a)
	if t.ring.Load()>>e&1 != 0 {
		b := &t.cpus[h.CPU]
		b.mu.Lock()
		if b.recs != nil {
			if b.head-b.tail == uint64(len(b.recs)) {
				b.tail++
				b.lost++
				b.overrun++
			}
			b.recs[b.head&uint64(len(b.recs)-1)] = *r
			b.head++
		}
		b.mu.Unlock()
	}
	if pt := t.probes.Load(); pt != nil {
		for _, p := range pt[e] {
			p.fn(r)
		}
	}
}

// EnableEvent enables event e (allocating the rings on first use).
func (t *Tracer) EnableEvent(e Event) { t.setEvents([]Event{e}, true) }

// DisableEvent disables event e. Records already taken stay in the rings.
func (t *Tracer) DisableEvent(e Event) { t.setEvents([]Event{e}, false) }

// Enable enables the events a pattern selects (see Match: "timer",
// "sched:sched_switch", "irq:softirq_*", "all"); several patterns may be
// given separated by commas, as in the trace_event= boot parameter. It
// fails with an error wrapping ErrNoEvent, enabling nothing, if a pattern
// selects no event.
func (t *Tracer) Enable(patterns string) error { return t.set(patterns, true) }

// Disable disables the events patterns select (see Enable).
func (t *Tracer) Disable(patterns string) error { return t.set(patterns, false) }

func (t *Tracer) set(patterns string, on bool) error {
	var evs []Event
	for _, p := range strings.Split(patterns, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		m, err := Match(p)
		if err != nil {
			return err
		}
		evs = append(evs, m...)
	}
	t.setEvents(evs, on)
	return nil
}

func (t *Tracer) setEvents(evs []Event, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on && !t.allocated {
		for i := range t.cpus {
			b := &t.cpus[i]
			b.mu.Lock()
			b.recs = make([]Record, t.size)
			b.mu.Unlock()
		}
		t.allocated = true
	}
	ring := t.ring.Load()
	for _, e := range evs {
		if e >= NumEvents {
			continue
		}
		if on {
			ring |= 1 << e
		} else {
			ring &^= 1 << e
		}
	}
	t.ring.Store(ring)
	t.mask.Store(ring | t.probed.Load())
}

// Enabled returns the events enabled in the rings, in numbering order
// (events that only have probes attached are not listed).
func (t *Tracer) Enabled() []Event {
	var out []Event
	ring := t.ring.Load()
	for e := Event(0); e < NumEvents; e++ {
		if ring>>e&1 != 0 {
			out = append(out, e)
		}
	}
	return out
}

// Intern returns the id of s in the tracer's string table, adding it on
// first use; records store the id (a Str field) instead of the string.
// Looking up a known string takes no lock and allocates nothing. The empty
// string is 0.
func (t *Tracer) Intern(s string) uint64 {
	if s == "" {
		return 0
	}
	if id, ok := t.strs.Load().ids[s]; ok {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.strs.Load()
	if id, ok := old.ids[s]; ok {
		return id
	}
	nt := &strTable{ids: make(map[string]uint64, len(old.ids)+1), strs: append(old.strs[:len(old.strs):len(old.strs)], s)}
	for k, v := range old.ids {
		nt.ids[k] = v
	}
	id := uint64(len(nt.strs))
	nt.ids[s] = id
	t.strs.Store(nt)
	return id
}

// String returns the interned string with id, or "" if there is none.
func (t *Tracer) String(id uint64) string {
	strs := t.strs.Load().strs
	if id == 0 || id > uint64(len(strs)) {
		return ""
	}
	return strs[id-1]
}

// Strings returns the string table: Strings()[id-1] is the string with id.
// A recorder saves it beside the records it drains.
func (t *Tracer) Strings() []string { return slices.Clone(t.strs.Load().strs) }

// Read consumes up to len(dst) of cpu's oldest records into dst, as
// reading the kernel's per-CPU trace_pipe_raw does. It returns how many it
// copied and how many records of cpu were overwritten before being read
// since the previous Read of cpu (a recorder reports them as dropped). A
// CPU out of range has no records.
func (t *Tracer) Read(cpu int, dst []Record) (n int, lost uint64) {
	if uint(cpu) >= uint(len(t.cpus)) {
		return 0, 0
	}
	b := &t.cpus[cpu]
	b.mu.Lock()
	defer b.mu.Unlock()
	for n < len(dst) && b.tail < b.head {
		dst[n] = b.recs[b.tail&uint64(len(b.recs)-1)]
		b.tail++
		n++
	}
	b.read += uint64(n)
	lost, b.lost = b.lost, 0
	return n, lost
}

// Snapshot returns a copy of every unread record of every CPU, merged in
// time order (by timestamp, then emission order), and per CPU the number
// of records lost to overwriting since the last Clear or Read of that CPU.
// It consumes nothing, as reading the kernel's trace file does not.
func (t *Tracer) Snapshot() (recs []Record, lost []uint64) {
	lost = make([]uint64, len(t.cpus))
	for i := range t.cpus {
		b := &t.cpus[i]
		b.mu.Lock()
		for p := b.tail; p < b.head; p++ {
			recs = append(recs, b.recs[p&uint64(len(b.recs)-1)])
		}
		lost[i] = b.lost
		b.mu.Unlock()
	}
	SortRecords(recs)
	return recs, lost
}

// SortRecords sorts records in time order: by timestamp, then by Seq.
func SortRecords(recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int {
		if c := cmp.Compare(a.TS, b.TS); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

// Clear empties every ring and resets the lost counts and statistics, as
// truncating the kernel's trace file does. The enabled events stay.
func (t *Tracer) Clear() {
	for i := range t.cpus {
		b := &t.cpus[i]
		b.mu.Lock()
		b.tail = b.head
		b.lost, b.overrun, b.read = 0, 0, 0
		b.mu.Unlock()
	}
}

// CPUStats are one CPU's ring statistics (tracefs per_cpu/cpuN/stats).
type CPUStats struct {
	Entries uint64 // records in the ring, unread
	Overrun uint64 // records overwritten before being read
	Written uint64 // records written since the ring was allocated
	Read    uint64 // records consumed by Read
}

// Stats returns every CPU's ring statistics since the last Clear (Written
// counts from the start).
func (t *Tracer) Stats() []CPUStats {
	out := make([]CPUStats, len(t.cpus))
	for i := range t.cpus {
		b := &t.cpus[i]
		b.mu.Lock()
		out[i] = CPUStats{Entries: b.head - b.tail, Overrun: b.overrun, Written: b.head, Read: b.read}
		b.mu.Unlock()
	}
	return out
}
