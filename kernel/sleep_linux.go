//go:build linux

package kernel

import (
	"syscall"
	"time"
)

// nanosleep sleeps the calling thread for d (clock_nanosleep relative).
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}
