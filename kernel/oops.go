package kernel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/printk"
)

// ErrOops is the sentinel every *Oops matches: errors.Is(err, ErrOops)
// tells an error that reports a panic in kernel code from the others.
var ErrOops = errors.New("kernel: Oops")

// Oops describes a panic that escaped a task function or an
// interrupt-context handler (a timer or hrtimer callback, a softirq or
// interrupt handler): the kernel's Oops (kernel/traps die() and
// oops_end()). kdefer logs the report ("Oops: …" and a stack) at
// KERN_EMERG, taints the kernel with D and goes on: a task dies with
// -EFAULT, a handler's context carries on with the next one.
//
// Where it goes: the log ring always; Config.OnOops if set; and, when the
// kernel has no log sink at all (no Config.Log, LogWriter or OnOops), the
// process's stderr, so that a panic is never silent. RunTask returns the
// Oops of its task as its error, and Task.Oops keeps it; with
// Config.PanicOnOops the Oops is raised as a panic (panic_on_oops).
//
// An *Oops is an error: Unwrap returns ErrOops and, when the panic value
// is an error, that error, so errors.Is and errors.As see through it.
type Oops struct {
	// Task is current when it happened ("comm/pid"): the task itself, or
	// the task the interrupt ran on (swapper/N, ksoftirqd/N…).
	Task string
	// CPU is the CPU it happened on.
	CPU int
	// Context is "task", "softirq" or "hardirq".
	Context string
	// Value is the value the code panicked with.
	Value any
	// Report is the report as logged, one line per log record.
	Report string
}

// Error returns the report's first line with the "kernel: " prefix, e.g.
// "kernel: Oops: task test/5 panicked: boom".
func (o *Oops) Error() string {
	first, _, _ := strings.Cut(o.Report, "\n")
	return "kernel: " + first
}

// Unwrap returns ErrOops and, if the panic value is an error, that error.
func (o *Oops) Unwrap() []error {
	if err, ok := o.Value.(error); ok {
		return []error{ErrOops, err}
	}
	return []error{ErrOops}
}

// Oops returns the Oops the task died of, or nil (a task that returned,
// or one still running).
func (t *Task) Oops() *Oops { return t.oops.Load() }

// oopsErr is t.Oops() as an error (a nil error for no Oops).
func (t *Task) oopsErr() error {
	if o := t.oops.Load(); o != nil {
		return o
	}
	return nil
}

// keptPanic boxes a report's panic value for the virtual-time driver.
type keptPanic struct{ v any }

// keepPanic keeps the first report's panic value for runVirtual to
// re-raise on the driver goroutine.
func (k *Kernel) keepPanic(v any) { k.panicked.CompareAndSwap(nil, &keptPanic{v}) }

// oops reports a panic that escaped a task function or a handler running
// in c: the log, taint D, the hook, and stderr when nothing else would
// show it. It returns the Oops.
func (k *Kernel) oops(c *Ctx, value any, what string) *Oops {
	k.oopses.Add(1)
	lines := []string{"Oops: " + what}
	lines = append(lines, k.dumpStackLines(c)...)
	k.warnings.Add(1)
	now := k.Now()
	k.emitLines(c, printk.LevelEmerg, lines)
	k.taint.Or(TaintDie) // oops_end, after the report
	o := &Oops{Task: c.task.String(), CPU: c.cpu.id, Context: contextName(c), Value: value, Report: strings.Join(lines, "\n")}
	if h := k.cfg.OnOops; h != nil {
		h(o)
	}
	if k.cfg.Log == nil && k.cfg.LogWriter == nil && k.cfg.OnOops == nil && k.stderr != nil {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(printk.FormatDmesg(printk.Record{TimeNs: now, Text: l}))
			b.WriteByte('\n')
		}
		fmt.Fprint(k.stderr, b.String())
	}
	return o
}
