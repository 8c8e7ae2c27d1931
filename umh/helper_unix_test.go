//go:build unix

package umh_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// helperMain is the helper program, run as a host process by
// call_usermodehelper:
//
//	env FILE           write argv, the working directory and the
//	                   environment to FILE, one item a line
//	exit N             exit with status N
//	block PIDFIFO GO   write the pid to the fifo PIDFIFO, then wait until
//	                   something is written to the fifo GO, and exit 0
//	killself           die of SIGKILL
func helperMain(mode string, args []string) int {
	switch mode {
	case "env":
		wd, _ := os.Getwd()
		var b strings.Builder
		fmt.Fprintf(&b, "argv=%q\ncwd=%s\n", os.Args, wd)
		for _, e := range os.Environ() {
			fmt.Fprintf(&b, "env=%s\n", e)
		}
		if err := os.WriteFile(args[0], []byte(b.String()), 0o644); err != nil {
			return 2
		}
		return 0
	case "exit":
		n, _ := strconv.Atoi(args[0])
		return n
	case "block":
		if err := os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return 2
		}
		if _, err := os.ReadFile(args[1]); err != nil {
			return 3
		}
		return 0
	case "killself":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return 100
}
