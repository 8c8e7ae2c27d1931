//go:build !amd64

package kernel

func rdtsc() uint64 { return 0 }

// haveTSC reports whether this architecture has a time-stamp counter.
const haveTSC = false

// readJiffiesFast is Ctx.Jiffies in real time.
func readJiffiesFast(c *Ctx) uint64 { return readJiffies(c) }
