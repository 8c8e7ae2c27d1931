package trace

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
)

// The trace file: what `kdefer trace record` writes and `kdefer trace
// report` reads, kdefer's trace.dat. It keeps the records as the rings
// held them together with what formatting them needs in another process:
// the interned strings and the names of the functions records point to
// (a PC means nothing outside the process that recorded it), and the
// events' names (event ids are stable within one build only).
//
// Layout, little-endian. The file starts with FileMagic and a uint32
// version (FileVersion), then a sequence of chunks, each a kind byte, a
// uint32 payload length and the payload:
//
//	'H' header    JSON of FileHeader (first chunk; exactly once)
//	'S' strings   uint64 id of the first, uint32 count, then count × (uint32 len, bytes)
//	'Y' symbols   uint32 count, then count × (uint64 pc, uint32 len, bytes)
//	'L' lost      uint16 CPU, uint64 count: records of that CPU overwritten
//	              before they were read; they are older than the CPU's next record
//	'R' records   uint32 count, then count × FileRecordSize bytes (see below)
//	'T' trailer   JSON of FileTrailer (last chunk)
//
// A record is TS int64, Seq uint64, PID int32, CPU uint16, the event's id
// in the header's Events uint16, Flags uint8, Preempt uint8, Comm [16]byte
// and the 8 Args uint64. Strings and symbols come before the first record
// that refers to them. A file cut short (a recorder that was killed) reads
// up to its last whole chunk, with an error wrapping ErrTruncated.
const (
	FileMagic      = "KDFTRACE"
	FileVersion    = 1
	FileRecordSize = 8 + 8 + 4 + 2 + 2 + 1 + 1 + 16 + 8*NArgs
)

// Errors reading a trace file.
var (
	// ErrNotTraceFile: the data does not start with FileMagic.
	ErrNotTraceFile = errors.New("trace: not a kdefer trace file")
	// ErrVersion: the file's version is not one this build reads.
	ErrVersion = errors.New("trace: unsupported trace file version")
	// ErrTruncated: the file ends inside a chunk or without its trailer;
	// what came before is returned.
	ErrTruncated = errors.New("trace: trace file truncated")
	// ErrCorrupt: a chunk does not parse.
	ErrCorrupt = errors.New("trace: corrupt trace file")
)

// FileHeader describes a recording: the kernel it ran in and the command
// that ran.
type FileHeader struct {
	// CPUs is the kernel's CPU count (the number of rings).
	CPUs int `json:"cpus"`
	// HZ is the kernel's tick rate.
	HZ int `json:"hz,omitempty"`
	// Virtual tells whether the kernel ran in virtual time, Seed its seed.
	Virtual bool  `json:"virtual,omitempty"`
	Seed    int64 `json:"seed,omitempty"`
	// Version is the kernel's version string.
	Version string `json:"version,omitempty"`
	// Command is what was recorded ("run timer_simple --for 2s").
	Command []string `json:"command,omitempty"`
	// BufferRecords is each CPU's ring capacity while recording.
	BufferRecords int `json:"buffer_records,omitempty"`
	// Enabled are the events enabled while recording ("timer:timer_start").
	Enabled []string `json:"enabled,omitempty"`
	// Events names the event ids used in the file: Events[id] is
	// "system:name". NewRecorder fills it.
	Events []string `json:"events"`
}

// FileTrailer closes a recording.
type FileTrailer struct {
	// Records is the number of records written.
	Records uint64 `json:"records"`
	// Lost is, per CPU, the number of records overwritten before they
	// could be read.
	Lost []uint64 `json:"lost"`
}

// Drop is a run of records of one CPU that were lost: overwritten in the
// ring before the recorder read them.
type Drop struct {
	CPU   int
	Count uint64
	// Before is the Seq of the CPU's first record read after the loss (0:
	// none followed). The lost records are older than it.
	Before uint64
}

// File is a trace file read back.
type File struct {
	Header FileHeader
	// Records are the records in file order (see SortRecords for time
	// order). Their Event ids are this build's; an event this build does
	// not know gets an id of NumEvents or more and prints as unknown.
	Records []Record
	// Strings is the string table: Strings[id-1] is interned string id.
	Strings []string
	// Symbols names the functions of Sym fields by PC.
	Symbols map[uint64]string
	// Drops lists the losses, in file order.
	Drops []Drop
	// Trailer is the closing chunk (zero if the file is truncated).
	Trailer FileTrailer
}

// String returns interned string id, or "".
func (f *File) String(id uint64) string {
	if id == 0 || id > uint64(len(f.Strings)) {
		return ""
	}
	return f.Strings[id-1]
}

// Symbol names the function at pc as it was named when recorded, or in
// hex if the file does not name it.
func (f *File) Symbol(pc uint64) string {
	if s, ok := f.Symbols[pc]; ok {
		return s
	}
	return fmt.Sprintf("0x%x", pc)
}

// Formatter returns a Formatter that resolves the file's strings and
// symbols.
func (f *File) Formatter() *Formatter {
	fm := NewFormatter(f.String)
	fm.SetSymbolizer(f.Symbol)
	return fm
}

// Lost returns the number of lost records per CPU.
func (f *File) Lost() []uint64 {
	lost := make([]uint64, max(f.Header.CPUs, 1))
	for _, d := range f.Drops {
		if d.CPU < len(lost) {
			lost[d.CPU] += d.Count
		}
	}
	return lost
}

// Report writes the file's records in time order in trace-cmd report's
// layout: "cpus=N", then one line per record, with a
// "CPU:N [K EVENTS DROPPED]" line before the first record of a CPU read
// after a loss (and at the end for losses no record followed).
func (f *File) Report(w io.Writer) error {
	recs := append([]Record(nil), f.Records...)
	SortRecords(recs)
	before := map[uint64][]Drop{}
	var tail []Drop
	for _, d := range f.Drops {
		if d.Before == 0 {
			tail = append(tail, d)
		} else {
			before[d.Before] = append(before[d.Before], d)
		}
	}
	fm := f.Formatter()
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "cpus=%d\n", f.Header.CPUs)
	var line []byte
	for i := range recs {
		for _, d := range before[recs[i].Seq] {
			fmt.Fprintln(bw, DroppedLine(d.CPU, d.Count))
		}
		line = fm.AppendLine(line[:0], &recs[i])
		line = append(line, '\n')
		bw.Write(line)
	}
	for _, d := range tail {
		fmt.Fprintln(bw, DroppedLine(d.CPU, d.Count))
	}
	return bw.Flush()
}

// argKinds records, per event, which Args hold a Sym (bit i set: Args[i])
// and which a Str: what a recorder must resolve to names. It is computed
// once from the events' value functions and never changes.
var argKinds = func() (k [NumEvents]struct{ syms, strs uint8 }) {
	for e := range events {
		var r Record
		r.Event = Event(e)
		for i := range r.Args {
			r.Args[i] = uint64(i+1) << 40
		}
		for _, v := range events[e].values(&r) {
			switch v := v.(type) {
			case Sym:
				if i := uint64(v)>>40 - 1; i < NArgs {
					k[e].syms |= 1 << i
				}
			case Str:
				if i := uint64(v)>>40 - 1; i < NArgs {
					k[e].strs |= 1 << i
				}
			}
		}
	}
	return k
}()

// Recorder drains a Tracer's rings into a trace file: trace-cmd record's
// reader threads, as one object. Each Drain reads every CPU's unread
// records (consuming them, as trace_pipe_raw does) and appends them to the
// file with the strings and symbol names they need, so that memory stays
// bounded by the rings however long the recording runs; records a CPU
// overwrote before a Drain reached them are counted as lost and written as
// such. Call Drain often enough for the event rate and ring size, and
// Close at the end. Its methods are safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	tr      *Tracer
	w       *bufio.Writer
	buf     []Record
	nstrs   int                 // strings written so far
	syms    map[uint64]struct{} // PCs named so far
	lost    []uint64
	written uint64
	chunk   []byte
	err     error
	closed  bool
}

// NewRecorder writes the start of a trace file to w (the magic, the
// version and h, with h.Events filled in) and returns a Recorder that
// drains tr into it. It fails with w's error.
func NewRecorder(w io.Writer, tr *Tracer, h FileHeader) (*Recorder, error) {
	h.Events = make([]string, NumEvents)
	for e := range h.Events {
		h.Events[e] = Event(e).String()
	}
	if h.CPUs == 0 {
		h.CPUs = tr.NumCPUs()
	}
	if h.BufferRecords == 0 {
		h.BufferRecords = tr.BufferRecords()
	}
	if h.Enabled == nil {
		for _, e := range tr.Enabled() {
			h.Enabled = append(h.Enabled, e.String())
		}
	}
	r := &Recorder{tr: tr, w: bufio.NewWriterSize(w, 64<<10), buf: make([]Record, 1024),
		syms: map[uint64]struct{}{}, lost: make([]uint64, tr.NumCPUs())}
	r.w.WriteString(FileMagic)
	r.w.Write(binary.LittleEndian.AppendUint32(nil, FileVersion))
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("trace: recorder: %w", err)
	}
	r.writeChunk('H', js)
	if err := r.w.Flush(); err != nil {
		return nil, fmt.Errorf("trace: recorder: %w", err)
	}
	return r, nil
}

// writeChunk writes one chunk; errors stick in w and are returned by
// Flush.
func (r *Recorder) writeChunk(kind byte, payload []byte) {
	var hdr [5]byte
	hdr[0] = kind
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(payload)))
	r.w.Write(hdr[:])
	r.w.Write(payload)
}

// Drain appends every CPU's unread records to the file and returns how
// many it wrote. After a write error it writes nothing more and returns
// that error.
func (r *Recorder) Drain() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, fmt.Errorf("trace: recorder closed")
	}
	return r.drain()
}

func (r *Recorder) drain() (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	total := 0
	for cpu := 0; cpu < r.tr.NumCPUs(); cpu++ {
		for {
			n, lost := r.tr.Read(cpu, r.buf)
			if lost > 0 {
				r.lost[cpu] += lost
				p := binary.LittleEndian.AppendUint16(r.chunk[:0], uint16(cpu))
				r.chunk = binary.LittleEndian.AppendUint64(p, lost)
				r.writeChunk('L', r.chunk)
			}
			if n == 0 {
				break
			}
			r.writeRecords(r.buf[:n])
			total += n
			if n < len(r.buf) {
				break
			}
		}
	}
	if err := r.w.Flush(); err != nil {
		r.err = fmt.Errorf("trace: recorder: %w", err)
		return total, r.err
	}
	return total, nil
}

// writeRecords writes the strings and symbols recs need that are not in
// the file yet, then recs.
func (r *Recorder) writeRecords(recs []Record) {
	if strs := r.tr.strs.Load().strs; len(strs) > r.nstrs {
		p := binary.LittleEndian.AppendUint64(r.chunk[:0], uint64(r.nstrs+1))
		p = binary.LittleEndian.AppendUint32(p, uint32(len(strs)-r.nstrs))
		for _, s := range strs[r.nstrs:] {
			p = binary.LittleEndian.AppendUint32(p, uint32(len(s)))
			p = append(p, s...)
		}
		r.chunk = p
		r.writeChunk('S', p)
		r.nstrs = len(strs)
	}
	var newSyms []uint64
	for i := range recs {
		rec := &recs[i]
		if rec.Event >= NumEvents {
			continue
		}
		for m, j := argKinds[rec.Event].syms, 0; m != 0; m, j = m>>1, j+1 {
			if m&1 == 0 {
				continue
			}
			pc := rec.Args[j]
			if _, ok := r.syms[pc]; !ok && pc != 0 {
				r.syms[pc] = struct{}{}
				newSyms = append(newSyms, pc)
			}
		}
	}
	if len(newSyms) > 0 {
		p := binary.LittleEndian.AppendUint32(r.chunk[:0], uint32(len(newSyms)))
		for _, pc := range newSyms {
			name := SymbolName(pc)
			p = binary.LittleEndian.AppendUint64(p, pc)
			p = binary.LittleEndian.AppendUint32(p, uint32(len(name)))
			p = append(p, name...)
		}
		r.chunk = p
		r.writeChunk('Y', p)
	}
	p := binary.LittleEndian.AppendUint32(r.chunk[:0], uint32(len(recs)))
	for i := range recs {
		p = appendRecord(p, &recs[i])
	}
	r.chunk = p
	r.writeChunk('R', p)
	r.written += uint64(len(recs))
}

func appendRecord(p []byte, rec *Record) []byte {
	le := binary.LittleEndian
	p = le.AppendUint64(p, uint64(rec.TS))
	p = le.AppendUint64(p, rec.Seq)
	p = le.AppendUint32(p, uint32(rec.PID))
	p = le.AppendUint16(p, rec.CPU)
	p = le.AppendUint16(p, uint16(rec.Event))
	p = append(p, rec.Flags, rec.Preempt)
	p = append(p, rec.Comm[:]...)
	for _, a := range rec.Args {
		p = le.AppendUint64(p, a)
	}
	return p
}

func decodeRecord(p []byte) Record {
	le := binary.LittleEndian
	var rec Record
	rec.TS = int64(le.Uint64(p))
	rec.Seq = le.Uint64(p[8:])
	rec.PID = int32(le.Uint32(p[16:]))
	rec.CPU = le.Uint16(p[20:])
	rec.Event = Event(le.Uint16(p[22:]))
	rec.Flags, rec.Preempt = p[24], p[25]
	copy(rec.Comm[:], p[26:42])
	for i := range rec.Args {
		rec.Args[i] = le.Uint64(p[42+8*i:])
	}
	return rec
}

// Records returns the number of records written so far.
func (r *Recorder) Records() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.written
}

// Lost returns, per CPU, the records lost so far.
func (r *Recorder) Lost() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.lost...)
}

// Close drains the rings a last time, writes the trailer and flushes. It
// does not close the underlying writer. A second Close does nothing.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	if _, err := r.drain(); err != nil {
		return err
	}
	js, _ := json.Marshal(FileTrailer{Records: r.written, Lost: r.lost})
	r.writeChunk('T', js)
	if err := r.w.Flush(); err != nil {
		r.err = fmt.Errorf("trace: recorder: %w", err)
	}
	return r.err
}

// maxChunk bounds a chunk's length when reading (a corrupt length should
// not allocate gigabytes).
const maxChunk = 1 << 30

// ReadFile reads a trace file. On ErrTruncated it returns the file as far
// as it could be read along with the error; on other errors, nil.
func ReadFile(rd io.Reader) (*File, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	var start [len(FileMagic) + 4]byte
	if _, err := io.ReadFull(br, start[:]); err != nil || string(start[:len(FileMagic)]) != FileMagic {
		return nil, ErrNotTraceFile
	}
	if v := binary.LittleEndian.Uint32(start[len(FileMagic):]); v != FileVersion {
		return nil, fmt.Errorf("%w %d (this build reads %d)", ErrVersion, v, FileVersion)
	}
	f := &File{Symbols: map[uint64]string{}}
	var remap []Event
	haveHeader, haveTrailer := false, false
	pendingDrops := map[int][]int{} // CPU → indexes in f.Drops awaiting a record
	var payload []byte
	for !haveTrailer {
		var hdr [5]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF && haveHeader {
				return f, fmt.Errorf("%w: no trailer", ErrTruncated)
			}
			return f, fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		n := binary.LittleEndian.Uint32(hdr[1:])
		if n > maxChunk {
			return nil, fmt.Errorf("%w: chunk of %d bytes", ErrCorrupt, n)
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return f, fmt.Errorf("%w: inside a chunk: %v", ErrTruncated, err)
		}
		kind := hdr[0]
		if !haveHeader && kind != 'H' {
			return nil, fmt.Errorf("%w: first chunk %q is not the header", ErrCorrupt, kind)
		}
		bad := func(what string) error { return fmt.Errorf("%w: %s chunk: %s", ErrCorrupt, string(kind), what) }
		le := binary.LittleEndian
		switch kind {
		case 'H':
			if haveHeader {
				return nil, bad("second header")
			}
			if err := json.Unmarshal(payload, &f.Header); err != nil {
				return nil, bad(err.Error())
			}
			haveHeader = true
			remap = make([]Event, len(f.Header.Events))
			unknown := 0
			for i, name := range f.Header.Events {
				if e, ok := Lookup(name); ok {
					remap[i] = e
				} else {
					remap[i] = NumEvents + Event(unknown)
					unknown++
				}
			}
		case 'S':
			if len(payload) < 12 {
				return nil, bad("short")
			}
			first, count := le.Uint64(payload), le.Uint32(payload[8:])
			if first != uint64(len(f.Strings))+1 {
				return nil, bad("strings out of order")
			}
			p := payload[12:]
			for range count {
				if len(p) < 4 || uint64(len(p)-4) < uint64(le.Uint32(p)) {
					return nil, bad("short")
				}
				l := le.Uint32(p)
				f.Strings = append(f.Strings, string(p[4:4+l]))
				p = p[4+l:]
			}
		case 'Y':
			if len(payload) < 4 {
				return nil, bad("short")
			}
			count, p := le.Uint32(payload), payload[4:]
			for range count {
				if len(p) < 12 || uint64(len(p)-12) < uint64(le.Uint32(p[8:])) {
					return nil, bad("short")
				}
				pc, l := le.Uint64(p), le.Uint32(p[8:])
				f.Symbols[pc] = string(p[12 : 12+l])
				p = p[12+l:]
			}
		case 'L':
			if len(payload) != 10 {
				return nil, bad("length")
			}
			cpu := int(le.Uint16(payload))
			f.Drops = append(f.Drops, Drop{CPU: cpu, Count: le.Uint64(payload[2:])})
			pendingDrops[cpu] = append(pendingDrops[cpu], len(f.Drops)-1)
		case 'R':
			if len(payload) < 4 {
				return nil, bad("short")
			}
			count := le.Uint32(payload)
			if uint64(len(payload)-4) != uint64(count)*FileRecordSize {
				return nil, bad("length")
			}
			for i := range int(count) {
				rec := decodeRecord(payload[4+i*FileRecordSize:])
				if int(rec.Event) < len(remap) {
					rec.Event = remap[rec.Event]
				} else {
					rec.Event = math.MaxUint16
				}
				if ds := pendingDrops[int(rec.CPU)]; len(ds) > 0 {
					for _, d := range ds {
						f.Drops[d].Before = rec.Seq
					}
					delete(pendingDrops, int(rec.CPU))
				}
				f.Records = append(f.Records, rec)
			}
		case 'T':
			if err := json.Unmarshal(payload, &f.Trailer); err != nil {
				return nil, bad(err.Error())
			}
			haveTrailer = true
		default:
			// An unknown chunk kind from a later minor revision: skipped.
		}
	}
	return f, nil
}

// EventNames returns the "system:name" of every event this build knows,
// with its format: what `kdefer trace list` prints.
func EventNames() []string {
	out := make([]string, 0, NumEvents)
	for _, e := range Events() {
		out = append(out, e.String())
	}
	return out
}

// FormatFile returns event e's format description, as tracefs's
// events/SYSTEM/NAME/format lists it without the offsets: its name, its
// fields (without the common ones) and its print fmt.
func FormatFile(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nformat:\n", e.Name())
	for _, f := range e.Fields() {
		name := f.Name
		typ := f.Type
		if i := strings.Index(typ, "["); i >= 0 && !strings.HasPrefix(typ, "__data_loc") {
			name += typ[i:]
			typ = typ[:i]
		}
		fmt.Fprintf(&b, "\tfield:%s %s;\n", typ, name)
	}
	fmt.Fprintf(&b, "\nprint fmt: %q\n", e.Format())
	return b.String()
}
