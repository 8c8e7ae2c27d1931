package ktest

import "github.com/kdefer/kdefer/jiffies"

func hzOf(hz int) jiffies.HZ { return jiffies.HZ(hz) }
