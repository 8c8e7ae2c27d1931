package procfs

import (
	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
)

// TimerList returns the text of /proc/timer_list: the hrtimer clock bases
// of every CPU with their active timers (kernel/time/timer_list.c). As in
// the kernel, timer-wheel timers are not listed there; see TimerWheel.
func TimerList(k *kernel.Kernel) string { return hrtimer.TimerList(k) }

// TimerWheel returns a dump of the timer wheel: for every CPU and base
// (BASE_LOCAL, BASE_GLOBAL, BASE_DEF) its clock and next expiry, then each pending timer
// with its level, bucket, expiry, the jiffy its bucket fires at and its
// function. The kernel has no such file; it is kdefer's window on
// kernel/time/timer.c.
func TimerWheel(k *kernel.Kernel) string { return timer.Dump(k) }
