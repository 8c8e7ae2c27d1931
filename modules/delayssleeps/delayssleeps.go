// Package delayssleeps is the seed demo delays_sleeps (Linux Kernel
// Programming Part 2, ch5/delays_sleeps/delays_sleeps.c): it calls the
// kernel's delay and sleep APIs from its init function and logs how long
// each really took, measured with ktime_get_real_ns() around the call (the
// DILLY_DALLY macro):
//
//	msleep(10) for      10,000,000 ns-> actual:    15250000 ns =   15250 us =   15 ms
//
// Section 1 busy-waits with ndelay(10), udelay(10) and mdelay(10); section
// 2 sleeps with usleep_range(10,10), msleep(10), msleep_interruptible(10)
// and ssleep(1); section 3 (in the repository's HEAD, kernels ≥ 5.8) calls
// the flexible fsleep() with 1 µs up to 1 s, then logs "delays_sleeps: demo
// complete". The file has no pr_fmt, so the lines carry no prefix. The
// module has no parameters.
//
// The measured times follow kdefer's models of the APIs (delay and hrtimer
// packages; v6.13 semantics): the *delay() calls take exactly the time
// asked for in virtual time (never less in real time); usleep_range wakes
// within [min, max]; msleep(ms) sleeps msecs_to_jiffies(ms) jiffies on the
// timer wheel and so wakes at the wheel's rounded-up expiry (10 ms at
// HZ=250: 3 jiffies, fired on the 4th jiffy boundary, 8 to 16 ms later
// depending on where in its jiffy the call started); fsleep picks udelay,
// usleep_range(us, us+us/4) or msleep by the v6.13 thresholds.
//
// Init takes about 1.2 s of kernel time: in real time insmod blocks that
// long, as in the kernel.
package delayssleeps

import (
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/timekeeping"
)

// Name is the module's name (KBUILD_MODNAME, OURMODNAME).
const Name = "delays_sleeps"

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "a simple LKM to demo delays and sleeps in the kernel",
	License:     "Dual MIT/GPL",
	Author:      "Kaiwan N Billimoria",
	Version:     "0.1",
	New:         func(*module.Params) module.Instance { return &delaysSleeps{} },
}

// pr prints without a pr_fmt prefix: the C file has its pr_fmt commented
// out.
var pr = kernel.Logger{}

// delaysSleeps is one loaded copy of the module (it keeps no state).
type delaysSleeps struct{}

// Init is module_init(delays_sleeps_init).
func (m *delaysSleeps) Init(c *kernel.Ctx) error { return delays_sleeps_init(c) }

// Exit is module_exit(delays_sleeps_exit).
func (m *delaysSleeps) Exit(c *kernel.Ctx) { delays_sleeps_exit(c) }

// dillyDally is DILLY_DALLY(codeStr, runThis): it runs runThis and logs
// the time it took.
func dillyDally(c *kernel.Ctx, codeStr string, runThis func()) {
	t1 := uint64(timekeeping.KtimeGetRealNs(c))
	runThis()
	t2 := uint64(timekeeping.KtimeGetRealNs(c))
	pr.Info(c, codeStr+"-> actual: %11d ns = %7d us = %4d ms\n",
		t2-t1, (t2-t1)/1000, (t2-t1)/1000000)
}

// delays_sleeps_init is named as the C function.
func delays_sleeps_init(c *kernel.Ctx) error {
	pr.Info(c, "%s: inserted\n", Name)

	// Atomic busy-loops, no sleep!
	pr.Info(c, "\n1. *delay() functions (atomic, in a delay loop):\n")
	dillyDally(c, "ndelay() for         10 ns", func() { delay.Ndelay(c, 10) })
	// udelay() is the preferred interface
	dillyDally(c, "udelay() for     10,000 ns", func() { delay.Udelay(c, 10) })
	dillyDally(c, "mdelay() for 10,000,000 ns", func() { delay.Mdelay(c, 10) })

	// Non-atomic blocking APIs; causes schedule() to be invoked
	pr.Info(c, "\n2. *sleep() functions (process ctx, sleeps/schedule()'s out):\n")
	// usleep_range(): HRT-based, 'flexible'; for approx range [10us - 20ms]
	dillyDally(c, "usleep_range(10,10) for 10,000 ns", func() { delay.UsleepRange(c, 10, 10) })
	// msleep(): jiffies/legacy-based; for longer sleeps (> 10ms)
	dillyDally(c, "msleep(10) for      10,000,000 ns", func() { delay.Msleep(c, 10) })
	dillyDally(c, "msleep_interruptible(10)         ", func() { delay.MsleepInterruptible(c, 10) })
	// ssleep() is a wrapper over msleep():  = msleep(ms*1000);
	dillyDally(c, "ssleep(1)                        ", func() { delay.Ssleep(c, 1) })

	// fsleep(): the flexible sleep wrapper (kernels >= 5.8)
	pr.Info(c, "\n3. Use the flexible sleep wrapper fsleep(usecs):\n")
	dillyDally(c, "fsleep() for          1 us        ", func() { delay.Fsleep(c, 1) })
	dillyDally(c, "fsleep() for         10 us        ", func() { delay.Fsleep(c, 10) })
	dillyDally(c, "fsleep() for       1000 us (1 ms) ", func() { delay.Fsleep(c, 1000) })
	dillyDally(c, "fsleep() for      10000 us (10 ms)", func() { delay.Fsleep(c, 10*1000) })
	dillyDally(c, "fsleep() for    100 ms            ", func() { delay.Fsleep(c, 100*1000) })
	dillyDally(c, "fsleep() for   1000 ms (1 s)      ", func() { delay.Fsleep(c, 1000*1000) })

	pr.Info(c, "%s: demo complete\n", Name)
	return nil // success
}

// delays_sleeps_exit is named as the C function.
func delays_sleeps_exit(c *kernel.Ctx) {
	pr.Info(c, "%s: removed\n", Name)
}
