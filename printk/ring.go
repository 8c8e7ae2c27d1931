package printk

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultCapacity is the number of records a [Ring] holds when [NewRing] is
// given a capacity of zero or less.
const DefaultCapacity = 8192

// followBatch bounds how many records Follow copies under the ring's lock at
// a time, so that a follower far behind does not hold the lock for long.
const followBatch = 256

// A Record is one committed line of the log.
type Record struct {
	// Seq is the record's sequence number. The first record of a Ring has
	// Seq 0 and every commit takes the next number, so a jump in Seq seen
	// by a reader means that records were overwritten before it read them.
	Seq uint64
	// TimeNs is the caller-supplied timestamp, in nanoseconds since boot,
	// of the line's first piece.
	TimeNs int64
	// Level is the line's log level.
	Level Level
	// CPU and PID identify the caller that wrote the line's first piece.
	CPU int
	PID int
	// Text is one line with no trailing newline. It may be empty.
	Text string
}

// A Ring is a fixed-capacity log of [Record]s with increasing sequence
// numbers: the kernel's printk ring buffer. When it is full, each commit
// overwrites the oldest record. It also assembles lines from printk-style
// pieces (see the package documentation) and feeds committed records to
// followers ([Ring.Follow]) and sinks ([Ring.AddSink]).
//
// A Ring must be created with [NewRing]. It is safe for concurrent use.
type Ring struct {
	// mu guards every field below except sinkMu. It is never held while
	// calling a sink or a Follow callback.
	mu sync.Mutex

	// buf holds the newest min(next, capacity) records; record seq lives
	// at buf[seq%capacity]. It grows by append until it reaches capacity.
	buf      []Record
	capacity int
	// next is the sequence number the next committed record gets.
	next uint64

	// open is the pending continuation line, valid when hasOpen is set.
	// Its text is kept as bytes so that Cont appends in place.
	open    openLine
	hasOpen bool

	// wake is closed, and set to nil, by the next commit. It is nil when no
	// follower has asked to be woken since the last commit.
	wake chan struct{}

	// sinks is replaced, never modified in place (copy on write), so a
	// delivery can keep the slice it was queued with.
	sinks []*sink
	// pending holds committed records not yet handed to their sinks, in
	// commit order.
	pending []delivery

	// sinkMu serializes delivery to sinks. It is acquired without mu held;
	// the goroutine that holds it takes pending batches under mu and
	// delivers them with mu released.
	sinkMu sync.Mutex
}

type openLine struct {
	timeNs   int64
	level    Level
	cpu, pid int
	text     []byte
}

type sink struct {
	fn      func(Record)
	removed atomic.Bool
}

type delivery struct {
	rec   Record
	sinks []*sink
}

// NewRing returns an empty ring that holds up to capacity records. A
// capacity of zero or less means [DefaultCapacity].
func NewRing(capacity int) *Ring {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Ring{
		buf:      make([]Record, 0, min(capacity, 64)),
		capacity: capacity,
	}
}

// Emit is printk: it logs text at level for the caller (cpu, pid) at
// timeNs nanoseconds since boot.
//
// Emit is never a continuation: if a line is open, from this caller or any
// other, it is committed first. Then every "\n"-terminated line of text is
// committed as one record, so "a\nb\n" gives two records and "\n" gives one
// empty record. A trailing piece without a newline (or the whole text, if
// it has no newline, even when it is empty) stays open for this caller; see
// the package documentation for what commits it. A level outside
// [LevelEmerg, LevelDebug] is stored as [LevelInfo].
//
// When Emit returns, every record it committed has been passed to the
// sinks registered before the commit.
func (r *Ring) Emit(timeNs int64, level Level, cpu, pid int, text string) {
	r.mu.Lock()
	r.commitOpenLocked()
	r.storeLocked(timeNs, level.normalize(), cpu, pid, text)
	queued := len(r.pending) > 0
	r.mu.Unlock()
	if queued {
		r.deliver()
	}
}

// Cont is pr_cont (a KERN_CONT message): it appends text to the line this
// caller (cpu, pid) left open. If the text contains "\n", the open line is
// committed there, and any further lines are handled as [Ring.Emit] would
// handle them, at the open line's level and time: in the kernel they are
// lines of the same record, printed under its prefix.
//
// If no line is open for this caller, any line open for another caller is
// committed and Cont behaves like Emit at [LevelInfo]. (The kernel uses
// default_message_loglevel there, CONFIG_MESSAGE_LOGLEVEL_DEFAULT, which is
// KERN_WARNING unless configured otherwise.)
func (r *Ring) Cont(timeNs int64, cpu, pid int, text string) {
	r.mu.Lock()
	if r.hasOpen && r.open.cpu == cpu && r.open.pid == pid {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			r.open.text = append(r.open.text, text...)
			r.mu.Unlock()
			return
		}
		r.open.text = append(r.open.text, text[:i]...)
		level, openTime := r.open.level, r.open.timeNs
		r.commitOpenLocked()
		// The kernel appends the whole text to the open record, whose
		// lines all print under its prefix: same time, same level.
		if rest := text[i+1:]; rest != "" {
			r.storeLocked(openTime, level, cpu, pid, rest)
		}
	} else {
		r.commitOpenLocked()
		r.storeLocked(timeNs, LevelInfo, cpu, pid, text)
	}
	queued := len(r.pending) > 0
	r.mu.Unlock()
	if queued {
		r.deliver()
	}
}

// Flush commits the open line, if there is one, as if it had ended with a
// newline. When Flush returns, that record has been passed to the sinks.
func (r *Ring) Flush() {
	r.mu.Lock()
	r.commitOpenLocked()
	queued := len(r.pending) > 0
	r.mu.Unlock()
	if queued {
		r.deliver()
	}
}

// storeLocked commits every complete line of text and leaves the rest open.
// The caller must hold r.mu and must have committed any open line.
func (r *Ring) storeLocked(timeNs int64, level Level, cpu, pid int, text string) {
	sawNewline := false
	for {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		sawNewline = true
		r.commitLocked(Record{TimeNs: timeNs, Level: level, CPU: cpu, PID: pid, Text: text[:i]})
		text = text[i+1:]
	}
	if text == "" && sawNewline {
		return
	}
	r.open.timeNs = timeNs
	r.open.level = level
	r.open.cpu = cpu
	r.open.pid = pid
	r.open.text = append(r.open.text[:0], text...)
	r.hasOpen = true
}

// commitOpenLocked commits the open line, if any. The caller must hold r.mu.
func (r *Ring) commitOpenLocked() {
	if !r.hasOpen {
		return
	}
	r.hasOpen = false
	o := &r.open
	r.commitLocked(Record{TimeNs: o.timeNs, Level: o.level, CPU: o.cpu, PID: o.pid, Text: string(o.text)})
}

// commitLocked gives rec the next sequence number, stores it (overwriting
// the oldest record if the ring is full), wakes followers and queues rec
// for the current sinks. The caller must hold r.mu.
func (r *Ring) commitLocked(rec Record) {
	rec.Seq = r.next
	r.next++
	if len(r.buf) < r.capacity {
		r.buf = append(r.buf, rec)
	} else {
		r.buf[rec.Seq%uint64(r.capacity)] = rec
	}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	if len(r.sinks) > 0 {
		r.pending = append(r.pending, delivery{rec: rec, sinks: r.sinks})
	}
}

// deliver hands every pending record to its sinks, in commit order. It must
// be called without r.mu held. A caller that queued records and then calls
// deliver returns only after they were delivered: either it delivers them
// itself, or the goroutine holding sinkMu before it took them first.
func (r *Ring) deliver() {
	r.sinkMu.Lock()
	defer r.sinkMu.Unlock()
	for {
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		r.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, d := range batch {
			for _, s := range d.sinks {
				if !s.removed.Load() {
					s.fn(d.rec)
				}
			}
		}
	}
}

// NextSeq returns the sequence number the next committed record will get,
// which is also the number of records committed so far.
func (r *Ring) NextSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// Records returns a copy of the committed records from fromSeq on, oldest
// first, and the sequence number to pass to the next call to read on from
// where this one stopped. If fromSeq has been overwritten, the records start
// at the oldest one still held, as dmesg does. If fromSeq is beyond the
// newest record, recs is empty and next is fromSeq. The open line is not
// included.
func (r *Ring) Records(fromSeq uint64) (recs []Record, next uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readLocked(fromSeq, 0, nil)
}

// readLocked appends to dst up to limit records (all if limit is 0) from
// fromSeq on and returns the sequence number after the last one. The
// caller must hold r.mu.
func (r *Ring) readLocked(fromSeq uint64, limit int, dst []Record) ([]Record, uint64) {
	oldest := r.next - uint64(len(r.buf))
	if fromSeq < oldest {
		fromSeq = oldest
	}
	if fromSeq >= r.next {
		return dst, fromSeq
	}
	end := r.next
	if limit > 0 && end-fromSeq > uint64(limit) {
		end = fromSeq + uint64(limit)
	}
	dst = slices.Grow(dst, int(end-fromSeq))
	for s := fromSeq; s < end; s++ {
		dst = append(dst, r.buf[s%uint64(r.capacity)])
	}
	return dst, end
}

// Follow is dmesg -w (--follow): it calls fn for every committed record
// from fromSeq on, in order, then waits for new records and calls fn for
// each as it is committed. Overwritten records are skipped as in
// [Ring.Records]; fn sees the jump in [Record.Seq].
//
// Follow returns fn's error as soon as fn returns one, or
// context.Cause(ctx) once ctx is done; records committed but not yet
// passed to fn at that point are not delivered. fn is called on Follow's
// goroutine without any lock of the ring held, so it may call any method
// of the ring. Follow starts no goroutines.
func (r *Ring) Follow(ctx context.Context, fromSeq uint64, fn func(Record) error) error {
	next := fromSeq
	var batch []Record
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var wake chan struct{}
		r.mu.Lock()
		batch, next = r.readLocked(next, followBatch, batch[:0])
		if len(batch) == 0 {
			if r.wake == nil {
				r.wake = make(chan struct{})
			}
			wake = r.wake
		}
		r.mu.Unlock()

		if wake != nil {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-wake:
			}
			continue
		}
		for _, rec := range batch {
			if err := fn(rec); err != nil {
				return err
			}
		}
		clear(batch) // drop references to texts until the next batch
	}
}

// AddSink registers w to be called with every record committed after
// AddSink returns, and returns a function that unregisters it.
//
// Sinks are called synchronously by the goroutines that commit records
// (Emit, Cont, Flush), never with the ring's lock held, one call at a time
// across all sinks of the ring, and in commit order. When a commit's
// Emit, Cont or Flush returns, its records have been passed to every sink.
// A slow sink therefore slows every writer, as a slow console slows printk.
// A sink must not call Emit, Cont or Flush on the same ring: that call would
// wait for the delivery it is part of and deadlock. It may read the ring.
//
// After remove returns, w is not called again, except for a call already
// under way on another goroutine. remove may be called more than once and
// from inside a sink.
func (r *Ring) AddSink(w func(Record)) (remove func()) {
	if w == nil {
		panic("printk: AddSink with nil sink")
	}
	s := &sink{fn: w}
	r.mu.Lock()
	r.sinks = append(slices.Clip(r.sinks), s)
	r.mu.Unlock()
	return sync.OnceFunc(func() {
		s.removed.Store(true)
		r.mu.Lock()
		r.sinks = slices.DeleteFunc(slices.Clone(r.sinks), func(x *sink) bool { return x == s })
		r.mu.Unlock()
	})
}
