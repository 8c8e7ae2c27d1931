//go:build !unix

package umh

import (
	"os"
	"syscall"
)

// sysProcAttr: no sessions outside Unix.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// waitStatus encodes the exit code as a Unix wait status would.
func waitStatus(ps *os.ProcessState) int { return (ps.ExitCode() & 0xff) << 8 }
