package console

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
)

// ps is `ps -eo pid,ppid,stat,psr,cmd` (procps-ng 4's column widths):
// every task but the idle tasks, by pid, with its state letter, its CPU
// and its name, in brackets for a kernel thread. Differences: the command
// of a user task is its name (comm), not its argument list, and STAT has
// no modifiers (<, N, s, l, +).
func (sh *Shell) ps(args []string, out *bytes.Buffer) error {
	for _, a := range args {
		if a != "-e" && a != "-A" {
			return fmt.Errorf("unsupported option %q (ps here takes none: it lists every task, as ps -eo pid,ppid,stat,psr,cmd)", a)
		}
	}
	out.WriteString(PS(sh.k))
	return nil
}

// PS returns the ps listing of k's tasks (see the ps command):
// procfs.PS.
func PS(k *kernel.Kernel) string { return procfs.PS(k) }

// kill is kill(1): `kill [-SIGNAL | -s SIGNAL] PID...` sends the signal
// (SIGTERM by default; a name with or without SIG, any case, or a number
// 0..64) to each task, and `kill -l` lists the names. The kernel's rules
// apply: a kernel thread ignores every signal it has not allowed
// (allow_signal), and init every signal; both are silent, as kill's
// success is. Signal 0 only checks that the task exists. A pid with no
// task is reported ("kill: (42) - No such process") and the others are
// still signalled. Process groups (pid 0 or negative) are not supported.
func (sh *Shell) kill(args []string, out *bytes.Buffer) error {
	sig := kernel.SIGTERM
	i := 0
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-l" || a == "-L":
			if len(args) > 1 {
				return errors.New("usage: kill -l")
			}
			out.WriteString(signalList())
			return nil
		case a == "-s" || a == "--signal":
			if len(args) < 2 {
				return fmt.Errorf("%s: a signal name or number is required", a)
			}
			s, err := parseSignal(args[1])
			if err != nil {
				return err
			}
			sig, i = s, 2
		case a == "--":
		case len(a) > 1 && a[0] == '-': // -9, -INT, -SIGINT
			s, err := parseSignal(a[1:])
			if err != nil {
				return err
			}
			sig, i = s, 1
		}
	}
	if i < len(args) && args[i] == "--" {
		i++
	}
	pids := args[i:]
	if len(pids) == 0 {
		return errors.New("usage: kill [-SIGNAL | -s SIGNAL] PID... | -l")
	}
	nums := make([]int, len(pids))
	for j, p := range pids {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("%s: arguments must be process IDs", p)
		}
		if n <= 0 {
			return fmt.Errorf("%s: process groups are not supported", p)
		}
		nums[j] = n
	}
	var missing []string
	for _, pid := range nums {
		t := sh.k.FindTask(pid)
		if t == nil {
			missing = append(missing, fmt.Sprintf("(%d) - No such process", pid))
			continue
		}
		if sig != 0 {
			sh.k.SendSignal(t, sig) // ignored by kthreads that did not allow it, and by init
		}
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "\nkill: "))
	}
	return nil
}

// signalNames are the x86-64 Linux signal names, by number (1..31).
var signalNames = [...]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE",
	9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
	16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU",
	23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "POLL",
	30: "PWR", 31: "SYS",
}

// Real-time signals: glibc's SIGRTMIN is 34 (32 and 33 are its own).
const (
	sigRTMin = 34
	sigRTMax = 64
)

// signalAliases are the other names kill accepts.
var signalAliases = map[string]kernel.Signal{"IOT": 6, "CLD": 17, "IO": 29}

// parseSignal parses a signal given to kill: a number 0..64, or a name
// with or without "SIG", in any case (INT, sigint, RTMIN+2).
func parseSignal(s string) (kernel.Signal, error) {
	bad := fmt.Errorf("%s: invalid signal specification", s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > sigRTMax {
			return 0, bad
		}
		return kernel.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for n, v := range signalNames {
		if v != "" && v == name {
			return kernel.Signal(n), nil
		}
	}
	if n, ok := signalAliases[name]; ok {
		return n, nil
	}
	for _, rt := range []struct {
		prefix string
		base   int
		dir    int
	}{{"RTMIN", sigRTMin, 1}, {"RTMAX", sigRTMax, -1}} {
		if !strings.HasPrefix(name, rt.prefix) {
			continue
		}
		off := 0
		if rest := name[len(rt.prefix):]; rest != "" {
			sign := "+"
			if rt.dir < 0 {
				sign = "-"
			}
			n, err := strconv.Atoi(strings.TrimPrefix(rest, sign))
			if !strings.HasPrefix(rest, sign) || err != nil || n < 0 {
				return 0, bad
			}
			off = n
		}
		if n := rt.base + rt.dir*off; n >= sigRTMin && n <= sigRTMax {
			return kernel.Signal(n), nil
		}
		return 0, bad
	}
	return 0, bad
}

// SignalName returns the name of sig as kill -l spells it, with "SIG"
// ("SIGINT", "SIGRTMIN+2"), or its number.
func SignalName(sig kernel.Signal) string {
	switch n := int(sig); {
	case n > 0 && n < len(signalNames):
		return "SIG" + signalNames[n]
	case n == sigRTMin:
		return "SIGRTMIN"
	case n == sigRTMax:
		return "SIGRTMAX"
	case n > sigRTMin && n < sigRTMax:
		return fmt.Sprintf("SIGRTMIN+%d", n-sigRTMin)
	}
	return strconv.Itoa(int(sig))
}

// signalList is kill -l: the names of signals 1..31, as procps prints them.
func signalList() string {
	names := make([]string, 0, len(signalNames))
	for _, n := range signalNames[1:] {
		names = append(names, n)
	}
	return strings.Join(names, " ") + "\n"
}
