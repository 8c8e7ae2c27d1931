package kernel

import (
	"fmt"
	"runtime"

	"github.com/kdefer/kdefer/printk"
)

// Printk is printk(level, format, …) from context c: the message goes into
// the ring buffer stamped with the time since boot, c's CPU and pid. A
// message without a trailing newline stays open for PrCont.
func Printk(c *Ctx, level printk.Level, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	c.k.log.Emit(c.k.Now(), level, c.cpu.id, c.task.pid, text)
}

// PrCont is pr_cont(): it continues the caller's open line.
func PrCont(c *Ctx, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	c.k.log.Cont(c.k.Now(), c.cpu.id, c.task.pid, text)
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
	return shortFuncName(f.Name(), false)
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
	PrCont(c, format, args...)
}
