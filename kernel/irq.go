package kernel

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/trace"
)

// IRQReturn is irqreturn_t.
type IRQReturn int

// Handler return values (include/linux/irqreturn.h).
const (
	IRQNone       IRQReturn = 0 // IRQ_NONE: not our device
	IRQHandled    IRQReturn = 1 // IRQ_HANDLED
	IRQWakeThread IRQReturn = 2 // IRQ_WAKE_THREAD (threaded IRQs are not modelled: treated as handled)
)

// IRQ flags accepted by RequestIRQ (include/linux/interrupt.h).
const (
	IRQFShared = 0x00000080 // IRQF_SHARED
)

// NRIRQs is the number of interrupt lines (nr_irqs).
const NRIRQs = 256

// IRQHandler is an interrupt handler (irq_handler_t). It runs in hardirq
// context with interrupts disabled and must not sleep.
type IRQHandler func(c *Ctx, irq int, devID any) IRQReturn

type irqAction struct {
	handler IRQHandler
	flags   uint32
	name    string
	devID   any
}

type irqDesc struct {
	actions   []*irqAction
	count     [NRCPUs]atomic.Uint64
	unhandled atomic.Uint64

	// note_interrupt's state (kernel/irq/spurious.c), guarded by mu.
	mu            sync.Mutex
	irqCount      int         // interrupts since the last check
	irqsUnhandled int         // of which recent ones nobody handled
	lastUnhandled uint64      // jiffies of the last unhandled one
	disabled      atomic.Bool // IRQS_SPURIOUS_DISABLED
}

// RequestIRQ is request_irq(): it installs handler on line irq. Several
// handlers may share a line when all pass IRQFShared (and a distinct devID).
// Errors: EINVAL for a bad line, a nil handler, or a shared request without
// devID; EBUSY when the line is taken and not shareable; ErrShutdown once
// the kernel is shutting down.
func (k *Kernel) RequestIRQ(irq int, handler IRQHandler, flags uint32, name string, devID any) error {
	if irq < 0 || irq >= NRIRQs || handler == nil || (flags&IRQFShared != 0 && devID == nil) {
		return fmt.Errorf("kernel: request_irq(%d, %q): %w", irq, name, EINVAL)
	}
	if k.dying.Load() {
		return fmt.Errorf("kernel: request_irq(%d, %q): %w", irq, name, ErrShutdown)
	}
	k.irqMu.Lock()
	defer k.irqMu.Unlock()
	d := k.irqs[irq]
	if d == nil {
		d = &irqDesc{}
		k.irqs[irq] = d
	}
	for _, a := range d.actions {
		if a.flags&IRQFShared == 0 || flags&IRQFShared == 0 {
			// __setup_irq's mismatch path (pr_fmt "genirq: ").
			Printk(k.IdleCtx(0), printk.LevelErr, "genirq: Flags mismatch irq %d. %08x (%s) vs. %08x (%s)\n", irq, flags, name, a.flags, a.name)
			return fmt.Errorf("kernel: request_irq(%d, %q): line held by %q: %w", irq, name, a.name, EBUSY)
		}
	}
	d.actions = append(append([]*irqAction(nil), d.actions...), &irqAction{handler: handler, flags: flags, name: name, devID: devID})
	// __setup_irq: reset the broken-irq detection and give a line the
	// spurious detector disabled another chance.
	d.mu.Lock()
	d.irqCount, d.irqsUnhandled = 0, 0
	d.disabled.Store(false)
	d.mu.Unlock()
	return nil
}

// FreeIRQ is free_irq(): it removes the handler registered with devID from
// line irq and returns its name. Freeing a handler that is not there warns
// ("Trying to free already-free IRQ %d") and returns "".
func FreeIRQ(c *Ctx, irq int, devID any) string {
	k := c.k
	if irq < 0 || irq >= NRIRQs {
		return "" // no descriptor: free_irq returns quietly
	}
	// free_irq may sleep (synchronize_irq). From atomic context (its own
	// handler, say) that is the might_sleep report, and kdefer skips the
	// wait, which would never end.
	canWait := MightSleep(c)
	k.irqMu.Lock()
	d := k.irqs[irq]
	if d != nil {
		for i, a := range d.actions {
			if a.devID == devID {
				acts := append(append([]*irqAction(nil), d.actions[:i]...), d.actions[i+1:]...)
				d.actions = acts
				k.irqMu.Unlock()
				// synchronize_irq(): wait for running handlers on every CPU.
				if canWait {
					for _, cpu := range k.cpus {
						k.lockMutex(c, &cpu.irqMu)
						k.unlockMutex(&cpu.irqMu)
					}
				}
				return a.name
			}
		}
	}
	k.irqMu.Unlock()
	k.warn(c, 1, "Trying to free already-free IRQ %d\n", irq)
	return ""
}

// GenerateIRQ makes interrupt line irq fire on cpu, as a device would: the
// CPU enters hardirq context (interrupting its idle task), every handler on
// the line runs, and irq_exit runs the softirqs they raised. It is the hook
// for device models and tests. The interrupt is handled synchronously on
// the calling goroutine. It returns EINVAL for a bad CPU or line and
// ErrShutdown (running nothing) once the kernel is shutting down.
//
// As in the kernel, a line with no handler is masked (nothing runs, nothing
// is counted), and a line whose handlers almost never handle their
// interrupts is reported ("nobody cared") and disabled until the next
// RequestIRQ on it.
//
// Called from hard interrupt context (a handler, or a hard hrtimer
// callback) while the target CPU is in hardirq context — its own CPU, say —
// the interrupt cannot be taken at once: as on real hardware, where
// interrupts are disabled in a handler, it is latched and taken as soon as
// the CPU's running handler is done, before that interrupt's irq_exit runs
// softirqs. GenerateIRQ then returns before the handlers ran.
func (k *Kernel) GenerateIRQ(cpu, irq int) error {
	if cpu < 0 || cpu >= len(k.cpus) || irq < 0 || irq >= NRIRQs {
		return fmt.Errorf("kernel: generate irq %d on cpu %d: %w", irq, cpu, EINVAL)
	}
	if k.dying.Load() {
		return fmt.Errorf("kernel: generate irq %d on cpu %d: %w", irq, cpu, ErrShutdown)
	}
	d, acts := k.irqLine(irq)
	// handle_fasteoi_irq/handle_edge_irq: a line without a handler, or
	// one the spurious detector disabled, is masked before
	// kstat_incr_irqs_this_cpu: not counted, no handler runs.
	if len(acts) == 0 || d.disabled.Load() {
		return nil
	}
	c := k.cpus[cpu]
	if !c.irqMu.TryLock() {
		if inHardirqHandler() {
			// Waiting could be waiting for ourselves: latch it.
			c.latchIRQ(irq)
			c.drainLatched()
			return nil
		}
		k.lockMutex(c.driverCtx(), &c.irqMu)
	}
	hc := c.enterLocked(c.idle)
	k.handleIRQ(hc, irq, d, acts)
	c.irqExit(c.idle)
	return nil
}

// irqLine returns line irq's descriptor (created on first use) and its
// handlers.
func (k *Kernel) irqLine(irq int) (*irqDesc, []*irqAction) {
	k.irqMu.Lock()
	defer k.irqMu.Unlock()
	d := k.irqs[irq]
	if d == nil {
		d = &irqDesc{}
		k.irqs[irq] = d
	}
	return d, d.actions
}

// handleIRQ is handle_irq_event(): it runs acts, the handlers of line irq,
// in hardirq context hc and lets note_interrupt judge the result.
func (k *Kernel) handleIRQ(hc *Ctx, irq int, d *irqDesc, acts []*irqAction) {
	d.count[hc.cpu.id].Add(1)
	handled := false
	var ret IRQReturn
	for _, a := range acts {
		a := a
		k.runHandler(hc, func() {
			if k.tr.On(trace.IRQHandlerEntry) {
				emitIRQEntry(hc, irq, a)
			}
			r := a.handler(hc, irq, a.devID)
			if k.tr.On(trace.IRQHandlerExit) {
				emitIRQExit(hc, irq, r)
			}
			ret |= r
			if r != IRQNone {
				handled = true
			}
		})
		// __handle_irq_event_percpu
		if !hc.irqsOff {
			k.warnOnce(hc, "irq-handler-enabled-interrupts", "irq %d handler %s enabled interrupts\n", irq, handlerName(a.handler))
			hc.irqsOff = true
		}
	}
	if !handled {
		d.unhandled.Add(1)
	}
	k.noteInterrupt(hc, irq, d, acts, ret)
}

// Hardirq handlers run inside these functions; inHardirqHandler looks for
// them on the caller's stack.
const (
	fnHandleIRQ    = modPath + "kernel.(*Kernel).handleIRQ"
	fnRunTickHooks = modPath + "kernel.(*CPU).runTickHooks"
)

// inHardirqHandler reports whether the calling goroutine is running a
// hardirq handler (of any CPU). Go has no goroutine identity to compare
// with a lock's holder, so the stack is searched; it is only done when a
// CPU's hardirq lock is contended.
func inHardirqHandler() bool {
	var pcs [256]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Function == fnHandleIRQ || f.Function == fnRunTickHooks {
			return true
		}
		if !more {
			return false
		}
	}
}

// latchIRQ marks line irq pending on cpu (the interrupt controller's IRR)
// for the context in hardirq on it to take.
func (cpu *CPU) latchIRQ(irq int) {
	cpu.latchMu.Lock()
	cpu.latched = append(cpu.latched, irq)
	cpu.latchedN.Store(int32(len(cpu.latched)))
	cpu.latchMu.Unlock()
}

// deliverLatched takes the latched interrupts, in the order they came,
// each in a hardirq context of its own. cpu.irqMu is held.
func (cpu *CPU) deliverLatched() {
	for cpu.latchedN.Load() != 0 {
		cpu.latchMu.Lock()
		irq := cpu.latched[0]
		cpu.latched = cpu.latched[1:]
		cpu.latchedN.Store(int32(len(cpu.latched)))
		cpu.latchMu.Unlock()
		d, acts := cpu.k.irqLine(irq)
		if len(acts) == 0 || d.disabled.Load() {
			continue
		}
		hc := cpu.enterLocked(cpu.idle)
		cpu.k.handleIRQ(hc, irq, d, acts)
	}
}

// drainLatched delivers latched interrupts if no one is in hardirq
// context on cpu; otherwise that context will (it re-checks after
// releasing the lock), so none is lost.
func (cpu *CPU) drainLatched() {
	for cpu.latchedN.Load() != 0 && cpu.irqMu.TryLock() {
		cpu.enterLocked(cpu.idle)
		cpu.irqExit(cpu.idle)
	}
}

// IRQLine describes one interrupt line for /proc/interrupts.
type IRQLine struct {
	IRQ    int
	Counts []uint64 // per CPU
	Names  []string // handler names, in registration order
}

// IRQLines returns every line that has a handler or has fired, by number.
func (k *Kernel) IRQLines() []IRQLine {
	k.irqMu.Lock()
	defer k.irqMu.Unlock()
	var out []IRQLine
	for irq, d := range k.irqs {
		l := IRQLine{IRQ: irq, Counts: make([]uint64, len(k.cpus))}
		var any uint64
		for i := range k.cpus {
			l.Counts[i] = d.count[i].Load()
			any |= l.Counts[i]
		}
		for _, a := range d.actions {
			l.Names = append(l.Names, a.name)
		}
		// show_interrupts (v6.11+): a line without a handler is not
		// listed, whatever it counted before.
		if len(l.Names) == 0 {
			continue
		}
		_ = any
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IRQ < out[j].IRQ })
	return out
}

// handlerName is %ps of an interrupt handler.
func handlerName(h IRQHandler) string {
	if f := runtime.FuncForPC(reflect.ValueOf(h).Pointer()); f != nil {
		return shortFuncName(f.Name(), false)
	}
	return "?"
}

// Spurious interrupt detection (kernel/irq/spurious.c).
const (
	spuriousWindow    = 100000 // interrupts per check
	spuriousThreshold = 99900  // unhandled ones in a window that disable the line
)

// noteInterrupt is note_interrupt(): it counts interrupts nobody handled
// and, when more than 99,900 of 100,000 in a row were (each within HZ/10
// of the previous unhandled one), reports "irq N: nobody cared" and
// disables the line until a handler is requested again. A bogus return
// value is reported instead (at most 100 times per kernel).
func (k *Kernel) noteInterrupt(c *Ctx, irq int, d *irqDesc, acts []*irqAction, ret IRQReturn) {
	if ret > IRQHandled|IRQWakeThread {
		if k.badIRQReports.Add(1) <= 100 {
			k.reportBadIRQ(c, fmt.Sprintf("irq event %d: bogus return value %x", irq, int(ret)), acts)
		}
		return
	}
	d.mu.Lock()
	if ret == IRQNone {
		now := k.Jiffies()
		if d.irqsUnhandled == 0 || int64(now-(d.lastUnhandled+uint64(k.hz)/10)) > 0 {
			d.irqsUnhandled = 1
		} else {
			d.irqsUnhandled++
		}
		d.lastUnhandled = now
	}
	d.irqCount++
	if d.irqCount < spuriousWindow {
		d.mu.Unlock()
		return
	}
	d.irqCount = 0
	stuck := d.irqsUnhandled > spuriousThreshold
	d.irqsUnhandled = 0
	if stuck {
		d.disabled.Store(true)
	}
	d.mu.Unlock()
	if stuck {
		k.reportBadIRQ(c, fmt.Sprintf("irq %d: nobody cared (try booting with the \"irqpoll\" option)", irq), acts)
		Printk(c, printk.LevelEmerg, "Disabling IRQ #%d\n", irq)
	}
}

// reportBadIRQ is __report_bad_irq(): the message, a stack dump and the
// line's handlers.
func (k *Kernel) reportBadIRQ(c *Ctx, msg string, acts []*irqAction) {
	lines := []string{msg}
	lines = append(lines, k.dumpStackLines(c)...)
	lines = append(lines, "handlers:")
	for _, a := range acts {
		// %p prints a hashed pointer; kdefer hashes the name, so the
		// token is the same in every run.
		name := handlerName(a.handler)
		h := fnv.New32a()
		h.Write([]byte(name))
		lines = append(lines, fmt.Sprintf("[<%016x>] %s", h.Sum32(), name))
	}
	k.emitLines(c, printk.LevelErr, lines)
}
