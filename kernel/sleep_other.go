//go:build !linux

package kernel

import "time"

func nanosleep(d time.Duration) { time.Sleep(d) }
