package kernel

import (
	"fmt"
	"github.com/kdefer/kdefer/printk"
	"reflect"
	"runtime"
	"sort"
	"sync/atomic"
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
}

// RequestIRQ is request_irq(): it installs handler on line irq. Several
// handlers may share a line when all pass IRQFShared (and a distinct devID).
// Errors: EINVAL for a bad line, a nil handler, or a shared request without
// devID; EBUSY when the line is taken and not shareable.
func (k *Kernel) RequestIRQ(irq int, handler IRQHandler, flags uint32, name string, devID any) error {
	if irq < 0 || irq >= NRIRQs || handler == nil || (flags&IRQFShared != 0 && devID == nil) {
		return fmt.Errorf("kernel: request_irq(%d, %q): %w", irq, name, EINVAL)
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
			k.Printk(k.IdleCtx(0), printk.LevelErr, "genirq: Flags mismatch irq %d. %08x (%s) vs. %08x (%s)\n", irq, flags, name, a.flags, a.name)
			return fmt.Errorf("kernel: request_irq(%d, %q): line held by %q: %w", irq, name, a.name, EBUSY)
		}
	}
	d.actions = append(append([]*irqAction(nil), d.actions...), &irqAction{handler: handler, flags: flags, name: name, devID: devID})
	return nil
}

// FreeIRQ is free_irq(): it removes the handler registered with devID from
// line irq and returns its name. Freeing a handler that is not there warns
// ("Trying to free already-free IRQ %d") and returns "".
func (k *Kernel) FreeIRQ(c *Ctx, irq int, devID any) string {
	if irq < 0 || irq >= NRIRQs {
		return "" // no descriptor: free_irq returns quietly
	}
	k.irqMu.Lock()
	d := k.irqs[irq]
	if d != nil {
		for i, a := range d.actions {
			if a.devID == devID {
				acts := append(append([]*irqAction(nil), d.actions[:i]...), d.actions[i+1:]...)
				d.actions = acts
				k.irqMu.Unlock()
				// synchronize_irq(): wait for running handlers on every CPU.
				for _, cpu := range k.cpus {
					cpu.irqMu.Lock()
					cpu.irqMu.Unlock()
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
// the calling goroutine. It returns EINVAL for a bad CPU or line.
func (k *Kernel) GenerateIRQ(cpu, irq int) error {
	if cpu < 0 || cpu >= len(k.cpus) || irq < 0 || irq >= NRIRQs {
		return fmt.Errorf("kernel: generate irq %d on cpu %d: %w", irq, cpu, EINVAL)
	}
	k.irqMu.Lock()
	d := k.irqs[irq]
	if d == nil {
		d = &irqDesc{}
		k.irqs[irq] = d
	}
	acts := d.actions
	k.irqMu.Unlock()
	c := k.cpus[cpu]
	// handle_fasteoi_irq/handle_edge_irq: a line without a handler is
	// masked before kstat_incr_irqs_this_cpu, so it is not counted.
	if len(acts) > 0 {
		d.count[cpu].Add(1)
	}
	hc := c.irqEnter(c.idle)
	handled := false
	for _, a := range acts {
		a := a
		k.runHandler(hc, func() {
			if a.handler(hc, irq, a.devID) != IRQNone {
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
	c.irqExit(c.idle)
	return nil
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
		return ShortFuncName(f.Name(), false)
	}
	return "?"
}
