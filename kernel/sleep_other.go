//go:build !linux

package kernel

import "time"

func setTimerSlack(uintptr) {}

func nanosleep(d time.Duration) { time.Sleep(d) }
