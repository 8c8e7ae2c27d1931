package kernel

// rdtsc reads the time-stamp counter, unordered (no LFENCE): the read may
// execute a little before the instructions that precede it, so the value
// can only be slightly older than program order says, never newer.
//
//go:noescape
func rdtsc() uint64

// haveTSC reports whether this architecture has a time-stamp counter.
const haveTSC = true
