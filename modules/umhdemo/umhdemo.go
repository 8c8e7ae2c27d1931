// Package umhdemo is kdefer's user-mode-helper demo, module umh_demo: the
// lesson of seed 002's "Invoking userspace applications from within the
// kernel" — call_usermodehelper(path, argv, envp, wait) runs a program of
// the host from kernel code — shown in each wait mode, with the value the
// kernel returns in each:
//
//	umh_demo:umh_run(): UMH_NO_WAIT: /bin/true -> 0 (queued; the result is not reported)
//	umh_demo:umh_run(): UMH_WAIT_EXEC: /bin/true -> 0 (executing)
//	umh_demo:umh_run(): UMH_WAIT_PROC: /bin/false -> 256 (exited, status 1)
//	umh_demo:umh_run(): UMH_WAIT_EXEC: /nonexistent/umh_demo -> -2 (-ENOENT)
//	…
//
// Init runs the tour: /bin/true with UMH_NO_WAIT, UMH_WAIT_EXEC,
// UMH_WAIT_PROC and UMH_WAIT_PROC|UMH_KILLABLE; /bin/false and /bin/sh -c
// 'exit 3' (UMH_WAIT_PROC returns the wait status: the exit code shifted
// left 8); a shell that kills itself with SIGKILL (the signal number, 9); a
// shell that checks that its environment is exactly envp (0); and a
// missing program, whose exec fails with -ENOENT under UMH_WAIT_EXEC and
// UMH_WAIT_PROC and goes unreported under UMH_NO_WAIT. The programs are
// /bin/true, /bin/false and /bin/sh, which every Linux has. envp is the
// kernel's own run_cmd() environment (kernel/reboot.c): HOME=/ and
// PATH=/sbin:/bin:/usr/sbin:/usr/bin, and nothing of the host's.
//
// Parameters:
//
//	cmd     charp, "",  0444  a command line to run instead of the tour,
//	                          split at spaces as argv_split() does
//	                          (kdefer run umh_demo 'cmd="/bin/echo hi"')
//	wait    int,   2,   0444  cmd's wait mode: 0 UMH_NO_WAIT,
//	                          1 UMH_WAIT_EXEC, 2 UMH_WAIT_PROC, |4
//	                          UMH_KILLABLE
//	atomic  bool,  N,   0444  also call it from a timer callback (softirq
//	                          context): UMH_NO_WAIT is fine there;
//	                          UMH_WAIT_PROC gets the kernel's might_sleep
//	                          report and -EAGAIN (the helper still runs)
//
// There is no C original: this module is kdefer's, written the way the
// seed's examples are (pr_fmt "umh_demo:func(): ").
package umhdemo

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/umh"
)

// Name is the module's name.
const Name = "umh_demo"

// Missing is the program the tour runs to show a failed exec.
const Missing = "/nonexistent/umh_demo"

// Envp returns the helpers' environment: kernel/reboot.c's run_cmd() one.
func Envp() []string { return []string{"HOME=/", "PATH=/sbin:/bin:/usr/sbin:/usr/bin"} }

// Info defines the module.
var Info = module.Info{
	Name:        Name,
	Description: "call_usermodehelper() in each wait mode: host programs run from kernel code, and the values returned",
	License:     "Dual MIT/GPL",
	Author:      "kdefer",
	Version:     "0.1",
	New:         newMod,
}

// Step is one call of the tour.
type Step struct {
	Argv []string // argv; Argv[0] is the path
	Wait int      // the wait mode
}

// Tour returns the calls Init makes when cmd is empty, in order.
func Tour() []Step {
	envCheck := `test "$HOME" = / && test "$PATH" = /sbin:/bin:/usr/sbin:/usr/bin && test -z "$USER$LANG$TERM$GOPATH"`
	return []Step{
		{[]string{"/bin/true"}, umh.NoWait},
		{[]string{"/bin/true"}, umh.WaitExec},
		{[]string{"/bin/true"}, umh.WaitProc},
		{[]string{"/bin/true"}, umh.WaitProc | umh.Killable},
		{[]string{"/bin/false"}, umh.WaitProc},
		{[]string{"/bin/sh", "-c", "exit 3"}, umh.WaitProc},
		{[]string{"/bin/sh", "-c", "kill -9 $$"}, umh.WaitProc},
		{[]string{"/bin/sh", "-c", envCheck}, umh.WaitProc},
		{[]string{"/bin/false"}, umh.WaitExec},
		{[]string{Missing}, umh.NoWait},
		{[]string{Missing}, umh.WaitExec},
		{[]string{Missing}, umh.WaitProc},
	}
}

// umhDemo is one loaded copy of the module.
type umhDemo struct {
	cmd    string
	wait   int
	atomic bool

	pr   kernel.Logger
	timr timer.Timer
}

func newMod(p *module.Params) module.Instance {
	m := &umhDemo{}
	p.Charp(&m.cmd, "cmd", "", 0444, "command line to run instead of the tour, split at spaces")
	p.Int(&m.wait, "wait", umh.WaitProc, 0444,
		"wait mode for cmd: 0 UMH_NO_WAIT, 1 UMH_WAIT_EXEC, 2 UMH_WAIT_PROC, +4 UMH_KILLABLE (default=2)")
	p.Bool(&m.atomic, "atomic", false, 0444,
		"also call it from a timer callback, in softirq context (default=N)")
	return m
}

// WaitName returns the UMH_ name of wait ("UMH_WAIT_PROC|UMH_KILLABLE").
func WaitName(wait int) string {
	names := []string{"UMH_NO_WAIT", "UMH_WAIT_EXEC", "UMH_WAIT_PROC", "UMH_WAIT_?"}
	s := names[wait&3]
	if wait&umh.Killable != 0 {
		s += "|UMH_KILLABLE"
	}
	if wait&umh.Freezable != 0 {
		s += "|UMH_FREEZABLE"
	}
	return s
}

// Explain says what call_usermodehelper's return value ret means for
// wait.
func Explain(wait, ret int) string {
	switch {
	case ret < 0:
		if e := kernel.Errno(-ret); e.Name() != "" {
			return "-" + e.Name()
		}
		return "an error"
	case wait&3 == umh.NoWait:
		return "queued; the result is not reported"
	case wait&3 == umh.WaitExec:
		return "executing"
	case ret&0x7f == 0:
		return fmt.Sprintf("exited, status %d", ret>>8)
	default:
		s := fmt.Sprintf("killed by signal %d", ret&0x7f)
		if ret&0x80 != 0 {
			s += ", core dumped"
		}
		return s
	}
}

// cmdline renders argv as a shell would read it back.
func cmdline(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\;&|<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// umh_run runs argv through call_usermodehelper with wait and logs the
// value returned.
func (m *umhDemo) umh_run(c *kernel.Ctx, argv []string, wait int) int {
	ret := umh.CallUsermodehelper(c, argv[0], argv, Envp(), wait)
	m.pr.Info(c, "%s: %s -> %d (%s)\n", WaitName(wait), cmdline(argv), ret, Explain(wait, ret))
	return ret
}

// umh_timer calls call_usermodehelper from a timer callback (atomic=Y).
func umh_timer(c *kernel.Ctx, t *timer.Timer) {
	m := timer.ContainerOf[umhDemo](t, unsafe.Offsetof(umhDemo{}.timr))
	m.pr.Info(c, "in a timer callback (softirq context):\n")
	m.umh_run(c, []string{"/bin/true"}, umh.NoWait)
	m.umh_run(c, []string{"/bin/true"}, umh.WaitProc)
}

// Init is module_init(umh_demo_init).
func (m *umhDemo) Init(c *kernel.Ctx) error { return m.umh_demo_init(c) }

// Exit is module_exit(umh_demo_exit).
func (m *umhDemo) Exit(c *kernel.Ctx) { m.umh_demo_exit(c) }

func (m *umhDemo) umh_demo_init(c *kernel.Ctx) error {
	m.pr = kernel.Logger{Module: Name}
	if argv := strings.Fields(m.cmd); len(argv) > 0 {
		m.umh_run(c, argv, m.wait)
	} else {
		m.pr.Info(c, "running host programs with call_usermodehelper(), envp = { %s }\n", strings.Join(Envp(), ", "))
		for _, s := range Tour() {
			m.umh_run(c, s.Argv, s.Wait)
		}
	}
	if m.atomic {
		timer.Setup(c, &m.timr, umh_timer, 0)
		timer.Mod(c, &m.timr, c.Jiffies()+1)
	}
	return nil
}

func (m *umhDemo) umh_demo_exit(c *kernel.Ctx) {
	if m.atomic {
		timer.DeleteSync(c, &m.timr)
	}
	m.pr.Info(c, "done\n")
}
