// Package convenient holds the helper macros of the seed books' header
// convenient.h (Kaiwan N Billimoria's Linux Kernel Programming, Part 2; the
// same header serves the LKP tree and its companion repositories) that the
// demo modules use: PRINT_CTX and SHOW_DELTA. They are the book's, not the
// kernel's, so they live here, next to the demos, rather than in package
// kernel; they are built on kernel's exported queries (Ctx.InTask,
// Ctx.PreemptCount, Task.IsKthread…) and on Kernel.Printk.
//
// Every function takes the caller's execution context first and the
// caller's kernel.Logger, whose Module gives the pr_fmt prefix
// ("module:func(): ", func the Go function that called the helper, as
// __func__ names the function a macro is expanded in).
package convenient

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/trace"
)

// callerFunc returns the short name of the function skip frames above the
// caller of callerFunc (a closure reports its enclosing function), as
// __func__ in a macro expanded there.
func callerFunc(skip int) string {
	pc, _, _, ok := runtime.Caller(skip + 1)
	if !ok {
		return "?"
	}
	return trace.SymbolName(uint64(pc))
}

// prefix is pr_fmt's "module:func(): " for pr, or "" without a module.
func prefix(pr kernel.Logger, fn string) string {
	if pr.Module == "" {
		return ""
	}
	return pr.Module + ":" + fn + "(): "
}

// CtxLine returns the text PRINT_CTX() prints (after the pr_fmt prefix) for
// context c and function fn, without the newline:
//
//  001. [swapper/1]:0   |  ..s1   /* ding() */
//
// The fields are the CPU (%03d); the comm in brackets for a kernel thread
// (spaces for a user task) and pid; irqs_disabled() 'd'; need_resched 'N'
// (never set: kdefer does not model preemption requests); 'H' hardirq
// inside softirq, 'h' hardirq, 's' serving softirq, '.' task; and
// (preempt_count() && 0xff), the header's logical-and quirk: 1 whenever the
// preempt count is non-zero.
func CtxLine(c *kernel.Ctx, fn string) string {
	intr := byte('.')
	if !c.InTask() {
		switch {
		case c.InHardirq() && c.InServingSoftirq():
			intr = 'H'
		case c.InHardirq():
			intr = 'h'
		case c.InServingSoftirq():
			intr = 's'
		}
	}
	cur := c.Current()
	open, close := byte(' '), byte(' ')
	if cur.IsKthread() {
		open, close = '[', ']'
	}
	irq := byte('.')
	if c.IRQsDisabled() {
		irq = 'd'
	}
	nonzero := 0
	if c.PreemptCount() != 0 {
		nonzero = 1
	}
	return fmt.Sprintf("%03d) %c%s%c:%d   |  %c%c%c%d   /* %s() */",
		c.CPU(), open, cur.Comm(), close, cur.PID(), irq, '.', intr, nonzero, fn)
}

// PrintCtx is PRINT_CTX(): a pr_debug line describing the execution context
// of the calling function (see CtxLine), with pr's prefix. Like pr.Debug it
// prints nothing when pr.NoDebug is set.
func PrintCtx(c *kernel.Ctx, pr kernel.Logger) {
	if pr.NoDebug {
		return
	}
	fn := callerFunc(1)
	kernel.Printk(c, printk.LevelDebug, "%s%s\n", prefix(pr, fn), CtxLine(c, fn))
}

// ShowDelta is SHOW_DELTA(later, earlier) in the current convenient.h form:
// a pr_info "delta: N ns", then " (~ U us" when at least 1 µs, " ~ M ms"
// when at least 1 ms, and ")\n" (the header prints each later part with
// pr_cont; here the line is printed whole). As in the header, a delta
// under 1 µs leaves the line without its newline, open for a pr_cont. When later is not after
// earlier it warns "SHOW_DELTA(): *invalid* earlier > later? (check order
// of params)" instead. Times are ktime values in ns.
func ShowDelta(c *kernel.Ctx, pr kernel.Logger, later, earlier int64) {
	pfx := prefix(pr, callerFunc(1))
	if later <= earlier {
		kernel.Printk(c, printk.LevelWarning, "%sSHOW_DELTA(): *invalid* earlier > later? (check order of params)\n", pfx)
		return
	}
	d := later - earlier
	var b strings.Builder
	fmt.Fprintf(&b, "delta: %d ns", d)
	if d/1000 >= 1 {
		fmt.Fprintf(&b, " (~ %d us", d/1000)
	}
	if d/1000000 >= 1 {
		fmt.Fprintf(&b, " ~ %d ms", d/1000000)
	}
	if d/1000 >= 1 {
		b.WriteString(")\n")
	}
	kernel.Printk(c, printk.LevelInfo, "%s%s", pfx, b.String())
}

// ShowDeltaBook is SHOW_DELTA as the book-era convenient.h (2021) printed
// it: a pr_info "delta: N ns (= U us = M ms)", or the warning
// "SHOW_DELTA(): *invalid* earlier > later?" when later is not after
// earlier.
func ShowDeltaBook(c *kernel.Ctx, pr kernel.Logger, later, earlier int64) {
	pfx := prefix(pr, callerFunc(1))
	if later <= earlier {
		kernel.Printk(c, printk.LevelWarning, "%sSHOW_DELTA(): *invalid* earlier > later?\n", pfx)
		return
	}
	d := later - earlier
	kernel.Printk(c, printk.LevelInfo, "%sdelta: %d ns (= %d us = %d ms)\n", pfx, d, d/1000, d/1000000)
}

// Msg is MSG() of the courseware's convenient.h in a debug build: a
// KERN_INFO line "func:line : text" (the C macro prints __func__ and
// __LINE__). func and line are the Go function and source line of the
// call — kdefer's own line numbers, not the C file's. The C macro prints
// through a rate-limited printk (printk_ratelimited); Msg does not limit.
func Msg(c *kernel.Ctx, format string, args ...any) {
	fn, line := "?", 0
	if pc, _, l, ok := runtime.Caller(1); ok {
		fn, line = trace.SymbolName(uint64(pc)), l
	}
	kernel.Printk(c, printk.LevelInfo, "%s:%d : "+format, append([]any{fn, line}, args...)...)
}
