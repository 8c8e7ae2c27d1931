//go:build !linux

package lab345deferred

import "github.com/kdefer/kdefer/kernel"

// hostTask is a monitored process of the host; outside Linux there is no
// /proc to find one in.
type hostTask struct {
	pid  int
	comm string
}

// findHostTask fails with ENOSYS: MY_IOCTL_TIMER_MON needs Linux's /proc.
func findHostTask(pid int) (*hostTask, error) { return nil, kernel.ENOSYS }

func (t *hostTask) dead() bool { return true }
