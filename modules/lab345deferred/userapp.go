package lab345deferred

import (
	"errors"
	"fmt"
	"io"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
)

// AppName is the test program's name.
const AppName = "test"

// usageText is the test program's usage message.
const usageText = "Usage: test <options>\n options:\n" +
	"\ts <seconds> - set timer to run after <seconds> seconds\n" +
	"\tc           - cancel timer\n" +
	"\ta <seconds> - allocate memory after <seconds> seconds\n" +
	"\tp <pid>     - monitor pid\n" +
	"\n"

// Test is the lab's user/test.c, run as a user task from process context c
// with argv ("test", OPTION, [ARG]): it opens /dev/deferred read-only
// (before it looks at its arguments, as the C program does) and sends one
// ioctl:
//
//	test s N   "Set timer to N seconds"          MY_IOCTL_TIMER_SET, N
//	test c     "Cancel timer"                    MY_IOCTL_TIMER_CANCEL
//	test a N   "Allocate memory after N seconds" MY_IOCTL_TIMER_ALLOC, N
//	test p PID "Monitor PID PID."                MY_IOCTL_TIMER_MON, PID
//
// Only the first character of OPTION counts, and numbers are read with
// atoi(). It returns 0, or 1 after the usage message (on stdout), a failed
// open ("/dev/deferred: No such device or address") or a failed ioctl
// ("ioctl monitor pid error: No such process"), or an unknown option
// ("Wrong parameter: Success": perror with errno 0, as in C).
//
// kdefer's addition: when /dev/deferred does not exist the program first
// does the lab's makenode step, mknod /dev/deferred c 42 0, and says so.
func Test(c *kernel.Ctx, argv []string, stdout, stderr io.Writer) int {
	if len(argv) < 2 {
		fmt.Fprint(stdout, usageText)
		return 1
	}
	if err := module.Mknod(c, DevicePath, MyMajor, MyMinor); err == nil {
		fmt.Fprintf(stdout, "mknod %s c %d %d\n", DevicePath, MyMajor, MyMinor)
	} else if !errors.Is(err, kernel.EEXIST) {
		fmt.Fprintf(stderr, "mknod: %s: %v\n", DevicePath, err)
		return 1
	}

	fd, err := module.Open(c, DevicePath, module.ORdOnly)
	if err != nil {
		perror(stderr, DevicePath, err)
		return 1
	}

	var opt byte
	if argv[1] != "" {
		opt = argv[1][0]
	}
	ioctl := func(cmd uint32, arg uint64, what string) bool {
		if _, err := fd.Ioctl(c, cmd, module.NewUserArg(arg)); err != nil {
			perror(stderr, what, err)
			return false
		}
		return true
	}
	switch opt {
	case 's':
		if len(argv) < 3 {
			fmt.Fprint(stdout, usageText)
			return 1
		}
		seconds := atoi(argv[2])
		fmt.Fprintf(stdout, "Set timer to %d seconds\n", seconds)
		if !ioctl(CmdTimerSet, uint64(seconds), "ioctl set timer error") {
			return 1
		}
	case 'c':
		fmt.Fprintf(stdout, "Cancel timer\n")
		if !ioctl(CmdTimerCancel, 0, "ioctl cancel timer error") {
			return 1
		}
	case 'a':
		if len(argv) < 3 {
			fmt.Fprint(stdout, usageText)
			return 1
		}
		seconds := atoi(argv[2])
		fmt.Fprintf(stdout, "Allocate memory after %d seconds\n", seconds)
		if !ioctl(CmdTimerAlloc, uint64(seconds), "ioctl allocate memory error") {
			return 1
		}
	case 'p':
		if len(argv) < 3 {
			fmt.Fprint(stdout, usageText)
			return 1
		}
		pid := uint64(atoi(argv[2]))
		fmt.Fprintf(stdout, "Monitor PID %d.\n", pid)
		if !ioctl(CmdTimerMon, pid, "ioctl monitor pid error") {
			return 1
		}
	default:
		fmt.Fprintf(stderr, "Wrong parameter: Success\n") // perror with errno 0
		return 1
	}

	fd.Close(c)
	return 0
}

// perror prints "what: strerror(errno)".
func perror(w io.Writer, what string, err error) {
	fmt.Fprintf(w, "%s: %v\n", what, err)
}

// atoi is atoi(3): optional blanks, an optional sign, then digits; 0 if
// there are none.
func atoi(s string) int64 {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] >= '\t' && s[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var n int64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}
