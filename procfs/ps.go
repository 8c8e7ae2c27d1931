package procfs

import (
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
)

// PS returns the listing of `ps -eo pid,ppid,stat,psr,cmd` (procps-ng 4's
// column widths): every task but the idle tasks, by pid, with its state
// letter, its CPU and its name, in brackets for a kernel thread.
//
// Differences: the command of a user task is its name (comm), not its
// argument list, and STAT has no modifiers (<, N, s, l, +).
func PS(k *kernel.Kernel) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %7s %-4s %3s %s\n", "PID", "PPID", "STAT", "PSR", "CMD")
	for _, t := range k.Tasks() {
		if t.IsIdle() {
			continue
		}
		ppid := 0
		if p := t.Parent(); p != nil {
			ppid = p.PID()
		}
		cmd := t.Comm()
		if t.IsKthread() {
			cmd = "[" + TaskName(t) + "]" // a kworker shows what it runs: kworker/0:1+events
		}
		fmt.Fprintf(&b, "%7d %7d %-4c %3d %s\n", t.PID(), ppid, t.State().Letter(), t.CPU(), cmd)
	}
	return b.String()
}
