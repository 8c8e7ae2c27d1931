package kernel

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/kdefer/kdefer/printk"
)

// Printk is printk(level, format, …) from context c: the message goes into
// the ring buffer stamped with the time since boot, c's CPU and pid. A
// message without a trailing newline stays open for PrCont.
func (k *Kernel) Printk(c *Ctx, level printk.Level, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	k.log.Emit(k.Now(), level, c.cpu.id, c.task.pid, text)
}

// PrCont is pr_cont(): it continues the caller's open line.
func (k *Kernel) PrCont(c *Ctx, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	k.log.Cont(k.Now(), c.cpu.id, c.task.pid, text)
}

// Logger prints like the pr_*() family of a source file that defines
//
//	#define pr_fmt(fmt) "%s:%s(): " fmt, KBUILD_MODNAME, __func__
//
// Every line starts with "Module:func(): ", where func is the name of the
// Go function that called the Logger (a closure reports its enclosing
// function). With Module empty there is no prefix (a file without pr_fmt).
// pr_debug output is on unless NoDebug is set: the seed demos were built
// with -DDEBUG.
type Logger struct {
	Module  string
	NoDebug bool
}

// PrFmt returns a Logger with the modname:func(): prefix.
func PrFmt(module string) Logger { return Logger{Module: module} }

func callerFunc(skip int) string {
	pc, _, _, ok := runtime.Caller(skip + 1)
	if !ok {
		return "?"
	}
	f := runtime.FuncForPC(pc)
	if f == nil {
		return "?"
	}
	return ShortFuncName(f.Name(), false)
}

func (l Logger) prefix(skip int) string {
	if l.Module == "" {
		return ""
	}
	return l.Module + ":" + callerFunc(skip+1) + "(): "
}

func (l Logger) print(c *Ctx, level printk.Level, format string, args []any) {
	text := fmt.Sprintf(format, args...)
	c.k.log.Emit(c.k.Now(), level, c.cpu.id, c.task.pid, l.prefix(2)+text)
}

// Emerg is pr_emerg.
func (l Logger) Emerg(c *Ctx, format string, args ...any) {
	l.print(c, printk.LevelEmerg, format, args)
}

// Alert is pr_alert.
func (l Logger) Alert(c *Ctx, format string, args ...any) {
	l.print(c, printk.LevelAlert, format, args)
}

// Crit is pr_crit.
func (l Logger) Crit(c *Ctx, format string, args ...any) { l.print(c, printk.LevelCrit, format, args) }

// Err is pr_err.
func (l Logger) Err(c *Ctx, format string, args ...any) { l.print(c, printk.LevelErr, format, args) }

// Warn is pr_warn.
func (l Logger) Warn(c *Ctx, format string, args ...any) {
	l.print(c, printk.LevelWarning, format, args)
}

// Notice is pr_notice.
func (l Logger) Notice(c *Ctx, format string, args ...any) {
	l.print(c, printk.LevelNotice, format, args)
}

// Info is pr_info.
func (l Logger) Info(c *Ctx, format string, args ...any) { l.print(c, printk.LevelInfo, format, args) }

// Debug is pr_debug: printed at KERN_DEBUG unless NoDebug.
func (l Logger) Debug(c *Ctx, format string, args ...any) {
	if l.NoDebug {
		return
	}
	l.print(c, printk.LevelDebug, format, args)
}

// Cont is pr_cont: it continues the open line, without a prefix.
func (l Logger) Cont(c *Ctx, format string, args ...any) {
	c.k.PrCont(c, format, args...)
}

// CtxLine returns the text PRINT_CTX() prints (after the pr_fmt prefix) for
// context c and function fn, without the newline:
//
//  001. [swapper/1]:0   |  ..s1   /* ding() */
//
// The fields are the CPU; the comm in brackets for a kernel thread (spaces
// for a user task) and pid; irqs_disabled 'd'; need_resched 'N' (never set:
// kdefer does not model preemption requests); 'H' hardirq inside softirq,
// 'h' hardirq, 's' serving softirq, '.' task; and (preempt_count() && 0xff),
// the seed's logical-and quirk: 1 whenever the preempt count is non-zero.
func CtxLine(c *Ctx, fn string) string {
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
	open, close := byte(' '), byte(' ')
	if c.task.kthread {
		open, close = '[', ']'
	}
	irq := byte('.')
	if c.irqsOff {
		irq = 'd'
	}
	return fmt.Sprintf("%03d) %c%s%c:%d   |  %c%c%c%d   /* %s() */",
		c.cpu.id, open, c.task.Comm(), close, c.task.pid, irq, '.', intr, b2i(c.preempt != 0), fn)
}

// PrintCtx is the seed's PRINT_CTX(): a pr_debug line describing the
// execution context of the calling function (see CtxLine).
func (l Logger) PrintCtx(c *Ctx) {
	if l.NoDebug {
		return
	}
	fn := callerFunc(1)
	pfx := ""
	if l.Module != "" {
		pfx = l.Module + ":" + fn + "(): "
	}
	c.k.log.Emit(c.k.Now(), printk.LevelDebug, c.cpu.id, c.task.pid, pfx+CtxLine(c, fn)+"\n")
}

// ShowDelta is the seed's SHOW_DELTA(later, earlier) in its current
// convenient.h form: "delta: N ns", then " (~ U us" when at least 1 µs,
// " ~ M ms" when at least 1 ms, and ")" — each later part a pr_cont. When
// later is not after earlier it warns "SHOW_DELTA(): *invalid* earlier >
// later? (check order of params)". Times are ktime values in ns.
func (l Logger) ShowDelta(c *Ctx, later, earlier int64) {
	if later <= earlier {
		l.print(c, printk.LevelWarning, "SHOW_DELTA(): *invalid* earlier > later? (check order of params)\n", nil)
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
	l.print(c, printk.LevelInfo, "%s", []any{b.String()})
}

// ShowDeltaBook is SHOW_DELTA as the book-era convenient.h (2021) printed
// it: "delta: N ns (= U us = M ms)", or "SHOW_DELTA(): *invalid* earlier >
// later?".
func (l Logger) ShowDeltaBook(c *Ctx, later, earlier int64) {
	if later <= earlier {
		l.print(c, printk.LevelWarning, "SHOW_DELTA(): *invalid* earlier > later?\n", nil)
		return
	}
	d := later - earlier
	l.print(c, printk.LevelInfo, "delta: %d ns (= %d us = %d ms)\n", []any{d, d / 1000, d / 1000000})
}
