package kernel

// cpuRelax is cpu_relax(): a PAUSE, the hint a spin-wait loop gives the
// processor.
func cpuRelax()
