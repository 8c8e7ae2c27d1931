package kernel

// preempt_count layout (include/linux/preempt.h).
const (
	PreemptBits  = 8
	SoftirqBits  = 8
	HardirqBits  = 4
	NMIBits      = 4
	PreemptShift = 0
	SoftirqShift = PreemptShift + PreemptBits
	HardirqShift = SoftirqShift + SoftirqBits
	NMIShift     = HardirqShift + HardirqBits

	PreemptMask = 0x000000ff // PREEMPT_MASK
	SoftirqMask = 0x0000ff00 // SOFTIRQ_MASK
	HardirqMask = 0x000f0000 // HARDIRQ_MASK
	NMIMask     = 0x00f00000 // NMI_MASK

	PreemptOffset        = 1 << PreemptShift // PREEMPT_OFFSET
	SoftirqOffset        = 1 << SoftirqShift // SOFTIRQ_OFFSET (serving a softirq)
	SoftirqDisableOffset = 2 * SoftirqOffset // SOFTIRQ_DISABLE_OFFSET (local_bh_disable)
	HardirqOffset        = 1 << HardirqShift // HARDIRQ_OFFSET
	NMIOffset            = 1 << NMIShift     // NMI_OFFSET

	PreemptNeedResched = 0x80000000 // PREEMPT_NEED_RESCHED (x86 folds it in inverted; we keep it out)
)

// PreemptCount returns the context's preempt_count().
func (c *Ctx) PreemptCount() uint32 { return c.preempt }

// SoftirqCount is softirq_count(): the softirq bits (BH disabled or serving).
func (c *Ctx) SoftirqCount() uint32 { return c.preempt & SoftirqMask }

// HardirqCount is hardirq_count().
func (c *Ctx) HardirqCount() uint32 { return c.preempt & HardirqMask }

// InNMI is in_nmi(). kdefer never enters NMI context, so it is always false.
func (c *Ctx) InNMI() bool { return c.preempt&NMIMask != 0 }

// InHardirq is in_hardirq() (formerly in_irq()).
func (c *Ctx) InHardirq() bool { return c.preempt&HardirqMask != 0 }

// InSoftirq is in_softirq(): serving a softirq or BH disabled.
func (c *Ctx) InSoftirq() bool { return c.preempt&SoftirqMask != 0 }

// InServingSoftirq is in_serving_softirq(): a softirq handler is running.
func (c *Ctx) InServingSoftirq() bool { return c.preempt&SoftirqOffset != 0 }

// InInterrupt is in_interrupt(): NMI, hardirq, softirq or BH disabled.
func (c *Ctx) InInterrupt() bool { return c.preempt&(NMIMask|HardirqMask|SoftirqMask) != 0 }

// InTask is in_task(): process context (BH disabled still counts as task).
func (c *Ctx) InTask() bool { return c.preempt&(NMIMask|HardirqMask|SoftirqOffset) == 0 }

// InAtomic is in_atomic(): preempt_count() != 0. As in a CONFIG_PREEMPT_COUNT
// kernel, held spinlocks are visible to it.
func (c *Ctx) InAtomic() bool { return c.preempt != 0 }

// IRQsDisabled is irqs_disabled() for this context.
func (c *Ctx) IRQsDisabled() bool { return c.irqsOff }

// InterruptContextLevel is interrupt_context_level(): 0 task, 1 softirq,
// 2 hardirq, 3 NMI.
func (c *Ctx) InterruptContextLevel() int {
	switch {
	case c.InNMI():
		return 3
	case c.InHardirq():
		return 2
	case c.InServingSoftirq():
		return 1
	}
	return 0
}

// PreemptDisable is preempt_disable(): it raises the preempt count, making
// the context atomic (sleeping in it is a bug).
func PreemptDisable(c *Ctx) { c.preempt += PreemptOffset }

// PreemptEnable is preempt_enable().
func PreemptEnable(c *Ctx) {
	if c.preempt&PreemptMask == 0 {
		c.k.warn(c, 1, "preempt_enable: preempt count underflow\n")
		return
	}
	c.preempt -= PreemptOffset
}

// LocalIRQDisable is local_irq_disable(). kdefer records the state for
// irqs_disabled() and might_sleep(); it does not hold off simulated
// hardirqs, which run on their own goroutine (see the package doc).
func LocalIRQDisable(c *Ctx) { c.irqsOff = true }

// LocalIRQEnable is local_irq_enable().
func LocalIRQEnable(c *Ctx) { c.irqsOff = false }

// LocalIRQSave is local_irq_save(): it disables interrupts and returns the
// previous state for LocalIRQRestore.
func LocalIRQSave(c *Ctx) (flags uint64) {
	if c.irqsOff {
		flags = 1
	}
	c.irqsOff = true
	return flags
}

// LocalIRQRestore is local_irq_restore(flags).
func LocalIRQRestore(c *Ctx, flags uint64) { c.irqsOff = flags != 0 }

// SetPreemptCount overwrites the context's preempt count. It exists for
// the kernel's own repair paths (a callback that leaked a preempt count is
// reported and the count restored, as call_timer_fn does).
func SetPreemptCount(c *Ctx, v uint32) { c.preempt = v }
