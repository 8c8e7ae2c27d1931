//go:build linux

package lab345deferred

import (
	"os"
	"strconv"
	"strings"

	"github.com/kdefer/kdefer/kernel"
)

// hostTask is the part of a host process's task_struct the monitor keeps:
// its pid, its comm and its start time (field 22 of /proc/PID/stat), which
// tells a process from a later one given the same pid.
type hostTask struct {
	pid   int
	comm  string
	start string
}

// findHostTask is get_proc's pid_task(find_vpid(pid)) for a process of the
// host: ESRCH when /proc has no such process (or it is a zombie already).
func findHostTask(pid int) (*hostTask, error) {
	if pid <= 0 {
		return nil, kernel.ESRCH
	}
	state, start, ok := hostStat(pid)
	if !ok || state == 'Z' || state == 'X' {
		return nil, kernel.ESRCH
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return nil, kernel.ESRCH
	}
	return &hostTask{pid: pid, comm: strings.TrimSuffix(string(comm), "\n"), start: start}, nil
}

// dead is the timer's p->task->state == TASK_DEAD: the process has exited
// (it is gone, a zombie, or its pid belongs to a newer process).
func (t *hostTask) dead() bool {
	state, start, ok := hostStat(t.pid)
	return !ok || state == 'Z' || state == 'X' || start != t.start
}

// hostStat reads the state and start time of /proc/PID/stat. The comm in
// parentheses may hold spaces and parentheses: the fields follow the last
// ')'.
func hostStat(pid int) (state byte, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, "", false
	}
	return f[0][0], f[19], true
}
