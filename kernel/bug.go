package kernel

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kdefer/kdefer/printk"
)

// Warning is the value a report panics with when Config.PanicOnWarn is set.
type Warning struct {
	// Kind is "BUG" or "WARNING".
	Kind string
	// Report is the full text of the report.
	Report string
}

// Error returns the report's first line, prefixed "kernel: panic_on_warn: ".
func (w *Warning) Error() string {
	first, _, _ := strings.Cut(w.Report, "\n")
	return "kernel: panic_on_warn: " + first
}

// Taint flags (include/linux/panic.h), as letters in the taint string.
const (
	TaintWarn = 1 << 9  // TAINT_WARN 'W'
	TaintDie  = 1 << 7  // TAINT_DIE 'D'
	TaintOOT  = 1 << 12 // TAINT_OOT_MODULE 'O'
)

// AddTaint is add_taint(): it sets taint flags (TaintWarn, TaintDie,
// TaintOOT…), shown in reports' "Tainted:" field.
func (k *Kernel) AddTaint(flag uint32) { k.taint.Or(flag) }

// Tainted returns the kernel's taint mask.
func (k *Kernel) Tainted() uint32 { return k.taint.Load() }

// Warnings returns how many WARN and BUG reports the kernel has printed.
func (k *Kernel) Warnings() uint64 { return k.warnings.Load() }

// taintFlags is the kernel's taint_flags table (kernel/panic.c, v6.15+):
// bit i's letter when set, when clear, and its name.
var taintFlags = [...]struct {
	set, clear byte
	name       string
}{
	{'P', 'G', "PROPRIETARY_MODULE"}, {'F', ' ', "FORCED_MODULE"}, {'S', ' ', "CPU_OUT_OF_SPEC"},
	{'R', ' ', "FORCED_RMMOD"}, {'M', ' ', "MACHINE_CHECK"}, {'B', ' ', "BAD_PAGE"},
	{'U', ' ', "USER"}, {'D', ' ', "DIE"}, {'A', ' ', "OVERRIDDEN_ACPI_TABLE"},
	{'W', ' ', "WARN"}, {'C', ' ', "CRAP"}, {'I', ' ', "FIRMWARE_WORKAROUND"},
	{'O', ' ', "OOT_MODULE"}, {'E', ' ', "UNSIGNED_MODULE"}, {'L', ' ', "SOFTLOCKUP"},
	{'K', ' ', "LIVEPATCH"}, {'X', ' ', "AUX"}, {'T', ' ', "RANDSTRUCT"},
	{'N', ' ', "TEST"}, {'J', ' ', "FWCTL"},
}

// taintString is print_tainted(): "Not tainted", or "Tainted: " and one
// letter per flag ('G' for a clear flag 0, a space for the others).
func (k *Kernel) taintString() string {
	t := k.taint.Load()
	if t == 0 {
		return "Not tainted"
	}
	b := []byte("Tainted: ")
	for i, f := range taintFlags {
		if t&(1<<i) != 0 {
			b = append(b, f.set)
		} else {
			b = append(b, f.clear)
		}
	}
	return string(b)
}

// taintVerbose is print_tainted_verbose(): "Tainted: [W]=WARN, [O]=OOT_MODULE".
func (k *Kernel) taintVerbose() string {
	t := k.taint.Load()
	var parts []string
	for i, f := range taintFlags {
		if t&(1<<i) != 0 {
			parts = append(parts, fmt.Sprintf("[%c]=%s", f.set, f.name))
		}
	}
	return "Tainted: " + strings.Join(parts, ", ")
}

const modPath = "github.com/kdefer/kdefer/"

// userDirs are the directories of the repository whose packages are
// kdefer's users, not its core: the demo modules, the CLI and examples.
var userDirs = [...]string{"modules/", "cmd/", "examples/"}

// isCoreFrame reports whether a frame belongs to kdefer's core (or to the
// Go runtime, sync or testing underneath it) rather than to its user. The
// rule needs no list of packages: every non-test frame of a package under
// the module path is core, except those of userDirs.
func isCoreFrame(fn, file string) bool {
	if strings.HasSuffix(file, "_test.go") {
		return false
	}
	if !strings.HasPrefix(fn, modPath) {
		return strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "testing.")
	}
	rest := fn[len(modPath):]
	for _, d := range userDirs {
		if strings.HasPrefix(rest, d) || strings.Contains(rest, "/"+d) {
			return false
		}
	}
	return true
}

// Context boundaries: the functions that run a handler or a task function.
// User code found beyond one of them (further out) did not cause what
// happens inside.
const (
	fnRunHandler = modPath + "kernel.(*Kernel).runHandler"
	fnRunTaskFn  = modPath + "kernel.(*Kernel).runTaskFn"
)

var srcRoot = func() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Dir(filepath.Dir(file)) + string(filepath.Separator)
}()

func shortFile(file string) string {
	if srcRoot != "" && strings.HasPrefix(file, srcRoot) {
		return file[len(srcRoot):]
	}
	if strings.HasPrefix(file, modPath) {
		return file[len(modPath):]
	}
	return file
}

// callerSite returns the file:line and function of the first frame outside
// kdefer's core packages (the user code that called into the kernel). When
// there is none before the handler or task function that is running (a
// report kdefer raises on its own, say after a callback returned), it
// returns the innermost frame outside the reporting code of this file:
// the site that raised the report, as the kernel's WARN names its own line.
func callerSite() (file string, line int, fn string) {
	var pcs [48]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var site runtime.Frame
	for {
		f, more := frames.Next()
		if f.Function == fnRunHandler || f.Function == fnRunTaskFn {
			break
		}
		if !isCoreFrame(f.Function, f.File) {
			return shortFile(f.File), f.Line, f.Function
		}
		if site.PC == 0 && !strings.HasSuffix(f.File, "kernel/bug.go") && !strings.HasPrefix(f.Function, "runtime.") {
			site = f
		}
		if !more {
			break
		}
	}
	return shortFile(site.File), site.Line, site.Function
}

func stackLines() []string {
	var pcs [48]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "testing.") {
			out = append(out, fmt.Sprintf(" %s (%s:%d)", shortFuncName(f.Function, true), shortFile(f.File), f.Line))
		}
		if !more {
			break
		}
	}
	return out
}

// shortFuncName turns a Go function name into what the kernel's %ps prints:
// the bare function name ("ding"), or package-qualified when qualified is set.
func shortFuncName(name string, qualified bool) string {
	name = strings.TrimSuffix(name, "-fm")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if qualified {
		return name
	}
	// pkg.(*T).method.func1 → method.func1? The kernel's __func__ of a
	// closure has no name; use the enclosing function's.
	parts := strings.Split(name, ".")
	for i := len(parts) - 1; i >= 1; i-- {
		p := parts[i]
		if strings.HasPrefix(p, "func") && isDigits(p[4:]) {
			continue
		}
		if isDigits(p) {
			continue
		}
		return strings.Trim(p, "()*")
	}
	return parts[len(parts)-1]
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (k *Kernel) emitLines(c *Ctx, level printk.Level, lines []string) {
	for _, l := range lines {
		Printk(c, level, "%s\n", l)
	}
}

func (k *Kernel) modulesLinkedIn() string {
	if f := k.moduleLister.Load(); f != nil {
		if mods := (*f)(); len(mods) > 0 {
			return "Modules linked in: " + strings.Join(mods, " ")
		}
	}
	return "Modules linked in:"
}

// SetModuleLister installs the function that names the loaded modules in
// reports ("Modules linked in: …"); the module layer calls it.
func (k *Kernel) SetModuleLister(f func() []string) { k.moduleLister.Store(&f) }

func (k *Kernel) dumpStackLines(c *Ctx) []string {
	// dump_stack_print_info (v6.12+); the release is kdefer's version.
	out := []string{fmt.Sprintf("CPU: %d UID: 0 PID: %d Comm: %.20s %s kdefer-%s", c.cpu.id, c.task.pid, c.task.Comm(), k.taintString(), Version)}
	if k.taint.Load() != 0 {
		out = append(out, k.taintVerbose())
	}
	out = append(out, "Call Trace:")
	ctxTag := "TASK"
	switch {
	case c.InHardirq():
		ctxTag = "IRQ"
	case c.InServingSoftirq():
		ctxTag = "SOFTIRQ"
	}
	out = append(out, " <"+ctxTag+">")
	out = append(out, stackLines()...)
	out = append(out, " </"+ctxTag+">")
	return out
}

// DumpStack is dump_stack(): it logs the CPU, task and Go call stack.
func DumpStack(c *Ctx) {
	c.k.emitLines(c, printk.LevelWarning, c.k.dumpStackLines(c))
}

// report prints a WARN or BUG report and then, as __warn, __might_resched
// and __schedule_bug do after their dump_stack, taints the kernel with W.
func (k *Kernel) report(c *Ctx, kind string, level printk.Level, lines []string) {
	k.warnings.Add(1)
	k.emitLines(c, level, lines)
	k.taint.Or(TaintWarn)
	if k.cfg.PanicOnWarn {
		w := &Warning{Kind: kind, Report: strings.Join(lines, "\n")}
		panic(w)
	}
}

// reportNoTaint prints a report that does not taint the kernel (spin_dump
// has no add_taint), counting it and honouring PanicOnWarn as report does.
func (k *Kernel) reportNoTaint(c *Ctx, kind string, level printk.Level, lines []string) {
	k.warnings.Add(1)
	k.emitLines(c, level, lines)
	if k.cfg.PanicOnWarn {
		panic(&Warning{Kind: kind, Report: strings.Join(lines, "\n")})
	}
}

// MightSleep is might_sleep(): called at the top of every function that may
// sleep. In atomic context (preempt count not zero, interrupts disabled, or
// the idle task) it prints the kernel's report — "BUG: sleeping function
// called from invalid context at FILE:LINE", naming the caller's Go file and
// line, then the in_atomic() line, the preempt count and a stack — at most
// once per second of jiffies, as ___might_sleep does, and returns false:
// the caller must then not sleep. It returns true when sleeping is allowed.
func MightSleep(c *Ctx) bool {
	if c.task.attached && !c.k.attachedMaySleep(c) {
		return false
	}
	if c.preempt == 0 && !c.irqsOff && !c.task.idle {
		return true
	}
	k := c.k
	file, line, _ := callerSite()
	k.bugMu.Lock()
	now := k.Jiffies()
	if k.mightPrev != 0 && now-k.mightPrev < uint64(k.hz) {
		k.bugMu.Unlock()
		return false
	}
	k.mightPrev = now
	if k.mightPrev == 0 {
		k.mightPrev = 1
	}
	k.bugMu.Unlock()
	lines := []string{
		fmt.Sprintf("BUG: sleeping function called from invalid context at %s:%d", file, line),
		fmt.Sprintf("in_atomic(): %d, irqs_disabled(): %d, non_block: 0, pid: %d, name: %s",
			b2i(c.preempt != 0), b2i(c.irqsOff), c.task.pid, c.task.Comm()),
		fmt.Sprintf("preempt_count: %x, expected: 0", c.preempt),
	}
	lines = append(lines, k.dumpStackLines(c)...)
	k.report(c, "BUG", printk.LevelErr, lines)
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scheduleBug is __schedule_bug(): "BUG: scheduling while atomic".
func (k *Kernel) scheduleBug(c *Ctx) {
	lines := []string{
		// schedule() has done its own preempt_disable by now.
		fmt.Sprintf("BUG: scheduling while atomic: %s/%d/0x%08x", c.task.Comm(), c.task.pid, c.preempt+PreemptOffset),
		k.modulesLinkedIn(),
	}
	lines = append(lines, k.dumpStackLines(c)...)
	k.report(c, "BUG", printk.LevelErr, lines)
}

// Warn is WARN(1, format, …): it prints the message and the kernel's
// "WARNING: CPU: n PID: p at FILE:LINE func" report with a stack, taints
// the kernel with W and goes on (or panics if Config.PanicOnWarn).
func Warn(c *Ctx, format string, args ...any) { c.k.warn(c, 1, format, args...) }

// WarnOn is WARN_ON(cond): it reports when cond is true and returns cond.
func WarnOn(c *Ctx, cond bool) bool {
	if cond {
		c.k.warn(c, 1, "")
	}
	return cond
}

// WarnOnce is WARN_ONCE(cond, format, …): it reports only the first time
// cond is true at the place WarnOnce is called from, once per kernel (the
// kernel keeps a static flag per WARN_ON_ONCE). When kdefer's own code
// warns once, say in add_timer, that is once for all callers; the report
// still names the caller's file and line. It returns cond.
func WarnOnce(c *Ctx, cond bool, format string, args ...any) bool {
	if cond {
		pc, _, _, _ := runtime.Caller(1)
		c.k.warnOnce(c, pc, format, args...)
	}
	return cond
}

func (k *Kernel) warnOnce(c *Ctx, key any, format string, args ...any) {
	if _, loaded := k.onceWarnings.LoadOrStore(key, true); loaded {
		return
	}
	k.warn(c, 1, format, args...)
}

func (k *Kernel) warn(c *Ctx, _ int, format string, args ...any) {
	file, line, fn := callerSite()
	lines := []string{"------------[ cut here ]------------"}
	if format != "" {
		msg := strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")
		lines = append(lines, strings.Split(msg, "\n")...)
	}
	lines = append(lines,
		fmt.Sprintf("WARNING: CPU: %d PID: %d at %s:%d %s", c.cpu.id, c.task.pid, file, line, shortFuncName(fn, false)),
		k.modulesLinkedIn(),
	)
	lines = append(lines, k.dumpStackLines(c)...)
	lines = append(lines, "---[ end trace 0000000000000000 ]---")
	k.report(c, "WARNING", printk.LevelWarning, lines) // __warn's pr_warn
}

// runHandler runs an interrupt-context handler. A panic in it is an Oops
// (see Oops): reported, and the kernel goes on. With PanicOnWarn or
// PanicOnOops in virtual time the panic is kept and re-raised on the
// driver goroutine by Run; in real time it goes on up the goroutine.
func (k *Kernel) runHandler(c *Ctx, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if w, ok := r.(*Warning); ok {
				if !k.virtual {
					panic(w)
				}
				k.keepPanic(w)
				return
			}
			o := k.oops(c, r, fmt.Sprintf("handler panicked: %v", r))
			if k.cfg.PanicOnOops {
				if !k.virtual {
					panic(o)
				}
				k.keepPanic(o)
			}
		}
	}()
	fn()
}

// CallHandler runs fn, a callback of a higher layer (a timer, a tasklet) on
// behalf of context c, the way the kernel runs softirq handlers: a panic in
// it is logged as an Oops and the kernel goes on. With PanicOnWarn in
// virtual time a report's panic is kept and re-raised by Run.
func CallHandler(c *Ctx, fn func()) { c.k.runHandler(c, fn) }

// Report prints a multi-line report of one of the kernel's debugging
// facilities that does not go through WARN — lockdep's splats, the
// workqueue's "BUG: workqueue leaked atomic, lock or RCU" — at level, one
// record a line, followed by the dump_stack lines (CPU, task, Go stack)
// when stack is set. It is counted in Warnings; unlike WARN it neither
// taints the kernel nor panics under Config.PanicOnWarn, as these reports
// do not in the kernel.
func Report(c *Ctx, level printk.Level, lines []string, stack bool) {
	k := c.k
	k.warnings.Add(1)
	k.emitLines(c, level, lines)
	if stack {
		k.emitLines(c, level, k.dumpStackLines(c))
	}
}

// RecoverCallback handles r, the value recovered from a panic in a
// callback that a kernel thread of a higher layer ran in its process
// context c (a work item on a workqueue worker): it is an Oops of that
// thread, as a panic in a task function is — "Oops: <what> panicked: …"
// with the stack, the kernel tainted D — but the thread goes on: the atomic
// state the callback left behind (preempt count, disabled interrupts,
// bottom halves disabled) is dropped, so that the thread can run its next
// callback. Under Config.PanicOnWarn a report's panic is kept and re-raised
// by Run, as for a task. Call it from the deferred function that recovered
// r.
func RecoverCallback(c *Ctx, r any, what string) {
	k := c.k
	if w, isWarn := r.(*Warning); isWarn && k.cfg.PanicOnWarn {
		k.keepPanic(w)
	}
	c.preempt = 0
	c.irqsOff = false
	if c.bhHeld {
		c.bhHeld = false
		k.unlockMutex(&c.cpu.softirqMu)
	}
	o := k.oops(c, r, fmt.Sprintf("%s panicked: %v", what, r))
	if k.cfg.PanicOnOops {
		k.keepPanic(o)
	}
}

// Oopses returns how many Oopses (panics caught in tasks and handlers) the
// kernel has logged.
func (k *Kernel) Oopses() uint64 { return k.oopses.Load() }
