//go:build unix

package umh

import (
	"os"
	"syscall"
)

// sysProcAttr puts the helper in a session of its own, without a
// controlling terminal, as a process forked by a kernel thread is.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// waitStatus is the raw wait status wait4 returned for the process.
func waitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		return int(ws)
	}
	return ps.ExitCode() << 8
}
