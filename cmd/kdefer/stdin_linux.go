package main

import (
	"os"
	"syscall"
	"unsafe"
)

// consoleInput says whether kdefer run reads console commands from f, its
// standard input: when f is a pipe, or a terminal of which kdefer is in the
// foreground process group (a job put in the background would be stopped
// by SIGTTIN at its first read: it reads nothing instead). A regular file,
// /dev/null or a closed descriptor is not read.
func consoleInput(f *os.File) (ok, terminal bool) {
	if f == nil {
		return false, false
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil {
		return false, false
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return true, false
	case syscall.S_IFCHR:
		var tio syscall.Termios
		if ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)) != nil {
			return false, false // /dev/null, not a terminal
		}
		var pgrp int32
		if ioctl(f.Fd(), syscall.TIOCGPGRP, unsafe.Pointer(&pgrp)) != nil || int(pgrp) != syscall.Getpgrp() {
			return false, false // in the background
		}
		return true, true
	}
	return false, false
}

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
