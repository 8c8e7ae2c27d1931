// Package timersimple is the seed demo timer_simple (Linux Kernel
// Programming Part 2, ch5/timer_simple/timer_simple.c, book-era tree
// f947bc9): a repeating kernel timer whose callback reaches its context
// structure with from_timer() (timer.ContainerOf).
//
// Init sets ctx.data to INITIAL_VALUE (3), sets the timer's expiry to
// jiffies + msecs_to_jiffies(exp_ms), runs timer_setup(&ctx.tmr, ding, 0),
// logs "timer set to expire in 420 ms" and arms it with add_timer. The
// callback ding() runs in timer softirq context; it logs
//
//	timer_simple:ding(): timed out... data=3
//	timer_simple:ding(): 001) [swapper/1]:0   |  ..s1   /* ding() */
//
// (pr_debug of data with a post-decrement, then PRINT_CTX) and re-arms the
// timer exp_ms later while data is not zero, so it fires three times,
// printing 3, 2, 1 — the book-era order; the repository's HEAD decrements
// first and prints 2, 1, 0. Exit runs timer_delete_sync (del_timer_sync)
// and logs "removed".
//
// Parameters (both read-only at runtime). In the C module exp_ms is a
// static variable, not a module parameter; kdefer exposes it with the same
// default:
//
//	exp_ms  ulong, 420, 0444  the timer period in ms
//	debug   bool,  Y,   0444  pr_debug and PRINT_CTX output (the book
//	                          builds with -DDEBUG; N is the HEAD Makefile's
//	                          MYDEBUG=n without dynamic debug)
//
// Deliberate differences: the context lives in the module instance, not
// in a static variable, so that two kernels in one process each have
// their own.
package timersimple

import (
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/timer"
)

// Name is the module's name (KBUILD_MODNAME).
const Name = "timer_simple"

// InitialValue is INITIAL_VALUE, the countdown's start.
const InitialValue = 3

// DefaultExpMs is exp_ms's default: the timer period in ms.
const DefaultExpMs = 420

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "a simple LKM to demo a (repeating) kernel timer",
	License:     "Dual MIT/GPL",
	Author:      "Kaiwan N Billimoria",
	Version:     "0.1",
	New:         newCtx,
}

// stCtx is struct st_ctx together with the rest of the module's data
// (exp_ms and the debug switch): one loaded copy of the module. tmr is
// its first field, as in the C struct, so from_timer is an offset of 0.
type stCtx struct {
	tmr   timer.Timer
	data  int
	expMs uint64
	debug bool
	pr    kernel.Logger
}

func newCtx(p *module.Params) module.Instance {
	m := &stCtx{}
	p.Ulong(&m.expMs, "exp_ms", DefaultExpMs, 0444, "timer period in ms (default=420)")
	p.Bool(&m.debug, "debug", true, 0444, "pr_debug and PRINT_CTX output (default=Y)")
	return m
}

// ding is the timer's callback: it runs in timer softirq context.
func ding(c *kernel.Ctx, t *timer.Timer) {
	priv := timer.ContainerOf[stCtx](t, unsafe.Offsetof(stCtx{}.tmr))
	priv.pr.Debug(c, "timed out... data=%d\n", priv.data)
	priv.data--
	convenient.PrintCtx(c, priv.pr)

	// until countdown done, fire it again!
	if priv.data != 0 {
		timer.Mod(c, &priv.tmr, c.Jiffies()+c.Kernel().HZ().MsecsToJiffies(uint32(priv.expMs)))
	}
}

// Init is module_init(timer_simple_init).
func (m *stCtx) Init(c *kernel.Ctx) error { return m.timer_simple_init(c) }

// Exit is module_exit(timer_simple_exit).
func (m *stCtx) Exit(c *kernel.Ctx) { m.timer_simple_exit(c) }

// timer_simple_init is named as the C function: pr_fmt prints the name.
func (m *stCtx) timer_simple_init(c *kernel.Ctx) error {
	m.pr = kernel.Logger{Module: Name, NoDebug: !m.debug}
	m.data = InitialValue

	// Initialize our kernel timer
	timer.SetExpires(&m.tmr, c.Jiffies()+c.Kernel().HZ().MsecsToJiffies(uint32(m.expMs)))
	timer.Setup(c, &m.tmr, ding, 0)

	m.pr.Info(c, "timer set to expire in %d ms\n", m.expMs)
	timer.Add(c, &m.tmr) // Arm it; lets get going!
	return nil
}

// timer_simple_exit is named as the C function: pr_fmt prints the name.
func (m *stCtx) timer_simple_exit(c *kernel.Ctx) {
	// Wait for possible timeouts to complete... and then delete the timer
	timer.DeleteSync(c, &m.tmr)
	m.pr.Info(c, "removed\n")
}
