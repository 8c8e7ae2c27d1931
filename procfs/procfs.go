// Package procfs renders kdefer's /proc views in the kernel's formats:
// /proc/softirqs (fs/proc/softirqs.c), /proc/interrupts (kernel/irq/proc.c
// show_interrupts with x86's arch_show_interrupts) and /proc/timer_list
// (kernel/time/timer_list.c, via package hrtimer), /proc/loadavg
// (fs/proc/loadavg.c with kernel/sched/loadavg.c), the essentials of
// /proc/PID/status (fs/proc/array.c) with the task names ps shows
// (proc_task_name, a kworker's "+desc"), the ps listing, and
// /sys/module/MOD/parameters/NAME, readable and writable as sysfs allows
// (kernel/params.c), plus two views the kernel does not offer as files: a
// dump of the timer wheel, and the workqueue dump it prints on SysRq-t
// (show_all_workqueues, kernel/workqueue.c).
//
// Differences: /proc/interrupts lists the simulated lines with the chip name
// "kdefer" and no hwirq or trigger columns, and of the x86 summary rows it
// prints NMI, LOC (local timer interrupts: the CPU's clock-event wakeups),
// RES (kicks that woke an idle CPU) and ERR. /proc/timer_list has no tick
// device section (kdefer has no clock-event devices).
package procfs

import (
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
)

// Softirqs returns the text of /proc/softirqs: a header of 20 spaces and
// "CPU%-8d" per CPU, then one row per vector, "%12s:" and " %10u" per CPU.
func Softirqs(k *kernel.Kernel) string {
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", 20))
	for cpu := 0; cpu < k.NumCPUs(); cpu++ {
		fmt.Fprintf(&b, "CPU%-8d", cpu)
	}
	b.WriteByte('\n')
	for nr := 0; nr < kernel.NRSoftirqs; nr++ {
		fmt.Fprintf(&b, "%12s:", kernel.SoftirqName(nr))
		for cpu := 0; cpu < k.NumCPUs(); cpu++ {
			fmt.Fprintf(&b, " %10d", k.SoftirqCount(nr, cpu))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Interrupts returns the text of /proc/interrupts.
func Interrupts(k *kernel.Kernel) string {
	prec := 3
	for j := 1000; prec < 10 && j <= kernel.NRIRQs; prec++ {
		j *= 10
	}
	n := k.NumCPUs()
	var b strings.Builder
	fmt.Fprintf(&b, "%*s", prec+8, "")
	for cpu := 0; cpu < n; cpu++ {
		fmt.Fprintf(&b, "CPU%-8d", cpu)
	}
	b.WriteByte('\n')
	for _, l := range k.IRQLines() {
		// show_interrupts (v6.13+): "%*d:", " %10u" per CPU, one
		// separator, then the chip name in 8 columns.
		fmt.Fprintf(&b, "%*d:", prec, l.IRQ)
		for _, c := range l.Counts {
			fmt.Fprintf(&b, " %10d", c)
		}
		fmt.Fprintf(&b, " %8s", "kdefer")
		if len(l.Names) > 0 {
			fmt.Fprintf(&b, "  %s", strings.Join(l.Names, ", "))
		}
		b.WriteByte('\n')
	}
	row := func(name, desc string, count func(cpu int) uint64) {
		fmt.Fprintf(&b, "%*s: ", prec, name)
		for cpu := 0; cpu < n; cpu++ {
			fmt.Fprintf(&b, "%10d ", count(cpu))
		}
		fmt.Fprintf(&b, "  %s\n", desc)
	}
	row("NMI", "Non-maskable interrupts", func(int) uint64 { return 0 })
	row("LOC", "Local timer interrupts", k.LocalTimerInterrupts)
	row("RES", "Rescheduling interrupts", k.ReschedInterrupts)
	fmt.Fprintf(&b, "%*s: %10d\n", prec, "ERR", 0)
	return b.String()
}
