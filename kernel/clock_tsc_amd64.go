package kernel

// rdtsc reads the time-stamp counter, unordered (no LFENCE): the read may
// execute a few cycles before earlier instructions complete or after
// later ones start, which for a jiffies or nanosecond clock is the same
// as having been read a moment earlier or later.
//
//go:noescape
func rdtsc() uint64

// haveTSC reports whether this architecture has a time-stamp counter.
const haveTSC = true

// readJiffiesFast is Ctx.Jiffies in real time (see the assembly): the
// same jiffy as the context's last read in one call, else readJiffies.
//
//go:noescape
func readJiffiesFast(c *Ctx) uint64
