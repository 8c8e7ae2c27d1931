//go:build linux

package kernel

import (
	"syscall"
	"time"
)

const prSetTimerslack = 29 // PR_SET_TIMERSLACK

// setTimerSlack sets the calling thread's timer slack (prctl), so that
// nanosleep wakes on time instead of up to 50 µs late.
func setTimerSlack(ns uintptr) {
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, ns, 0)
}

// nanosleep sleeps the calling thread for d (clock_nanosleep relative).
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}
