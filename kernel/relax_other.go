//go:build !amd64

package kernel

// cpuRelax is cpu_relax(); a no-op where kdefer has no PAUSE.
func cpuRelax() {}
