package jiffies

// roundCommon is the kernel's round_jiffies_common (kernel/time/timer.c): it
// rounds the absolute time j to a whole second, skewed by 3 jiffies per CPU
// so that CPUs do not all fire at once, and returns j unchanged if the
// rounded time would not be after now.
func (hz HZ) roundCommon(now, j uint64, cpu int, forceUp bool) uint64 {
	h := hz.mustValid()
	original := j

	// "We don't want all cpus firing their timers at once hitting the same
	// lock or cachelines, so we skew each extra cpu with an extra 3
	// jiffies." The C code adds the int cpu*3 to an unsigned long; the
	// conversion below gives the same two's-complement result.
	skew := uint64(cpu) * 3
	j += skew

	rem := j % h
	// Just after a whole second (within HZ/4) round down, unless forced up.
	if rem < h/4 && !forceUp {
		j -= rem
	} else {
		j = j - rem + h
	}

	j -= skew

	if TimeIsAfterJiffies(now, j) {
		return j
	}
	return original
}

// RoundJiffies rounds the absolute time j (in jiffies) to a whole second for
// CPU cpu, so that timers that need not be precise expire together and the
// CPU wakes up less often. The result is a whole second plus 3*cpu skew: j is
// rounded down if it lies less than HZ/4 ticks past such a point, otherwise
// up. If the rounded time is not after now (the current jiffies), j is
// returned unchanged. The result may therefore be earlier than j.
//
// Kernel counterpart: __round_jiffies(j, cpu), with jiffies passed in as now.
func (hz HZ) RoundJiffies(now, j uint64, cpu int) uint64 {
	return hz.roundCommon(now, j, cpu, false)
}

// RoundJiffiesRelative is [HZ.RoundJiffies] for a relative timeout: it
// rounds now+j and returns the result relative to now.
//
// Kernel counterpart: __round_jiffies_relative(j, cpu), with jiffies passed
// in as now.
func (hz HZ) RoundJiffiesRelative(now, j uint64, cpu int) uint64 {
	return hz.roundCommon(now, j+now, cpu, false) - now
}

// RoundJiffiesUp is [HZ.RoundJiffies] but never rounds down: the result is
// never earlier than j. Use it where a timeout must not fire early.
//
// Kernel counterpart: __round_jiffies_up(j, cpu), with jiffies passed in as
// now.
func (hz HZ) RoundJiffiesUp(now, j uint64, cpu int) uint64 {
	return hz.roundCommon(now, j, cpu, true)
}

// RoundJiffiesUpRelative is [HZ.RoundJiffiesUp] for a relative timeout: it
// rounds now+j up and returns the result relative to now.
//
// Kernel counterpart: __round_jiffies_up_relative(j, cpu), with jiffies
// passed in as now.
func (hz HZ) RoundJiffiesUpRelative(now, j uint64, cpu int) uint64 {
	return hz.roundCommon(now, j+now, cpu, true) - now
}
