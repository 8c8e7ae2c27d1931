package procfs

import (
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
)

// TaskStatus returns the essentials of /proc/PID/status for t, in the
// kernel's order and format (fs/proc/array.c proc_pid_status): Name (as
// TaskName gives it), State
// ("S (sleeping)"), Tgid, Ngid, Pid, PPid, TracerPid, Kthread, Threads,
// and the voluntary and nonvoluntary context-switch counts (see
// kernel.Task.ContextSwitches).
//
// Differences: the lines kdefer has no data for (Umask, Uid, Gid, the
// memory, signal-mask, capability, seccomp and cpuset lines) are left out.
// Every task is its own thread group (Tgid is the pid, Threads 1).
func TaskStatus(t *kernel.Task) string {
	var b strings.Builder
	ppid := 0
	if p := t.Parent(); p != nil {
		ppid = p.PID()
	}
	kthread := 0
	if t.IsKthread() {
		kthread = 1
	}
	vol, invol := t.ContextSwitches()
	fmt.Fprintf(&b, "Name:\t%s\n", escapeName(TaskName(t)))
	fmt.Fprintf(&b, "State:\t%s\n", StateName(t.State()))
	fmt.Fprintf(&b, "Tgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n", t.PID(), t.PID(), ppid)
	fmt.Fprintf(&b, "Kthread:\t%d\nThreads:\t1\n", kthread)
	fmt.Fprintf(&b, "voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n", vol, invol)
	return b.String()
}

// StateName returns the state as /proc/PID/status shows it
// (task_state_array): "R (running)", "S (sleeping)", "D (disk sleep)",
// "T (stopped)", "t (tracing stop)", "X (dead)", "Z (zombie)",
// "P (parked)" or "I (idle)".
func StateName(s kernel.TaskState) string {
	switch l := s.Letter(); l {
	case 'R':
		return "R (running)"
	case 'S':
		return "S (sleeping)"
	case 'D':
		return "D (disk sleep)"
	case 'T':
		return "T (stopped)"
	case 't':
		return "t (tracing stop)"
	case 'X':
		return "X (dead)"
	case 'Z':
		return "Z (zombie)"
	case 'P':
		return "P (parked)"
	case 'I':
		return "I (idle)"
	default:
		return string(l)
	}
}

// escapeName is proc_task_name's escaping: a backslash is doubled and a
// newline shown as \n.
func escapeName(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
