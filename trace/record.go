package trace

import "unsafe"

// NArgs is the number of integer arguments a record carries.
const NArgs = 8

// Args are an event's integer arguments, in the order of its fields (see
// Event.Fields; a char[16] comm takes two, see PackComm). Pointers,
// function PCs and interned strings are stored as integers and resolved
// only when formatting.
type Args [NArgs]uint64

// Record is one fixed-size trace entry: the kernel's ring-buffer event with
// its common fields (timestamp, CPU, pid, comm, flags, preempt count) and
// the event's own fields as integers. It holds no Go pointers, so a ring
// of records costs the garbage collector nothing to scan.
type Record struct {
	// TS is the time of the event in ns since boot (the kernel's
	// CLOCK_MONOTONIC, as the "local" trace clock of a booted kernel).
	TS int64
	// Seq numbers the records of a Tracer in emission order, across CPUs:
	// it orders records with equal timestamps (virtual time stands still
	// while tasks run).
	Seq uint64
	// PID is the pid of the task current when the event fired (0 for the
	// idle tasks swapper/N, -1 when the caller had no context to give).
	PID int32
	// CPU is the CPU the event fired on.
	CPU uint16
	// Event is the event's id.
	Event Event
	// Flags are the kernel's trace flags of the context (FlagIRQsOff,
	// FlagHardirq, FlagSoftirq, FlagBHOff).
	Flags uint8
	// Preempt is the context's preemption depth (common_preempt_count,
	// capped at 15 as the kernel does).
	Preempt uint8
	// Comm is the current task's name, NUL-padded (TASK_COMM_LEN).
	Comm [16]byte
	// Args are the event's fields.
	Args Args
}

// RecordSize is the size of a Record in bytes.
const RecordSize = int(unsafe.Sizeof(Record{}))

// Trace flags of a record's context (kernel/trace/trace.h TRACE_FLAG_*).
const (
	FlagIRQsOff = 0x01 // TRACE_FLAG_IRQS_OFF: interrupts disabled
	FlagHardirq = 0x08 // TRACE_FLAG_HARDIRQ: in hard interrupt context
	FlagSoftirq = 0x10 // TRACE_FLAG_SOFTIRQ: serving a softirq
	FlagBHOff   = 0x80 // TRACE_FLAG_BH_OFF: bottom halves disabled
)

// CommString returns r's comm as a string.
func (r *Record) CommString() string {
	n := 0
	for n < len(r.Comm) && r.Comm[n] != 0 {
		n++
	}
	return string(r.Comm[:n])
}

// Header is what the caller of Emit knows about the context an event fires
// in: the common fields of the record.
type Header struct {
	CPU     int    // the CPU the event fires on
	PID     int    // current's pid (0: idle task; -1: unknown)
	Comm    string // current's comm (at most 15 bytes are kept; "" when unknown)
	Flags   uint8  // Flag* bits
	Preempt uint8  // preemption depth
}

// PackComm packs a task name (at most 15 bytes are kept) into two
// arguments, for events with a char[16] comm field.
func PackComm(s string) (lo, hi uint64) {
	var b [16]byte
	copy(b[:15], s)
	for i := 7; i >= 0; i-- {
		lo = lo<<8 | uint64(b[i])
		hi = hi<<8 | uint64(b[8+i])
	}
	return lo, hi
}

// UnpackComm is the inverse of PackComm.
func UnpackComm(lo, hi uint64) string {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(lo >> (8 * i))
		b[8+i] = byte(hi >> (8 * i))
	}
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return string(b[:n])
}

// FuncPC returns the entry PC of the function value fn, or 0 for nil: the
// identity a record stores for a %ps field. F must be a func type. It
// allocates nothing; the name is looked up only when formatting.
func FuncPC[F any](fn F) uint64 {
	fv := *(*unsafe.Pointer)(unsafe.Pointer(&fn))
	if fv == nil {
		return 0
	}
	return uint64(*(*uintptr)(fv))
}

// Addr returns p's address, the identity a record stores for a %p field.
func Addr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }
