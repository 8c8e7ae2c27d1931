package main

import (
	"errors"
	"syscall"
)

// errStdoutClosed is the write error of a standard output that was closed
// when kdefer started.
var errStdoutClosed = errors.New("standard output is closed")

// stdoutClosedAtStart reports whether standard output was closed when
// kdefer started (`kdefer run … >&-`). The Go runtime then opens /dev/null
// on descriptor 1, and everything written would be lost without an error.
// It opens it read-write, which a shell's `>/dev/null` never does: that is
// how the two are told apart.
func stdoutClosedAtStart() bool {
	var fd1, null syscall.Stat_t
	if syscall.Fstat(1, &fd1) != nil || syscall.Stat("/dev/null", &null) != nil {
		return false
	}
	if fd1.Rdev != null.Rdev || fd1.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		return false
	}
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, 1, syscall.F_GETFL, 0)
	return errno == 0 && flags&syscall.O_ACCMODE == syscall.O_RDWR
}
