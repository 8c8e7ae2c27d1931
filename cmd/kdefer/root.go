package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdefer/kdefer/kernel"
)

// Exit statuses shared by every command.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed; it said why on stderr
	exitUsage   = 2 // the command line is wrong
)

// env is what every command gets: its standard input (nil: none), its
// output streams and, when kdefer reads signals, the relay that a running
// module registers with.
type env struct {
	stdin  *os.File
	stdout *checkedWriter
	stderr io.Writer
	relay  *relay // nil in tests that call run
}

// commands is the command table: one constructor per command, each in its
// own file. The help command (help.go) is installed separately, as cobra
// wants it.
var commands = []func(*env) *cobra.Command{
	newRunCmd,
	newTraceCmd,
	newTopCmd,
	newPlotCmd,
	newModulesCmd,
	newVersionCmd,
}

// execute runs kdefer's command line args and returns the exit status.
// stdin may be nil (no standard input: no console).
func execute(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer, rl *relay) int {
	e := &env{stdin: stdin, stdout: &checkedWriter{w: stdout}, stderr: stderr, relay: rl}
	root := newRootCmd(e)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := e.report(err)
	if werr := e.stdout.Err(); werr != nil {
		fmt.Fprintf(stderr, "kdefer: cannot write output: %v\n", werr)
		code = max(code, exitFailure)
	}
	return code
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "kdefer",
		Short: "the Linux kernel's time and deferred-work subsystem, in userspace",
		Long: `kdefer — the Linux kernel's time and deferred-work subsystem, in userspace.

It boots a kernel (jiffies, the timer wheel, hrtimers, softirqs, tasks) in this
process, loads the classic kernel-programming demos into it as modules and
prints the kernel log as dmesg does.`,
		Example: `  kdefer run timer_simple --for 2s
  kdefer run sed1 --exec "userapp_sed1 /dev/sed1_drv hello"
  kdefer trace record -- run timer_simple --virtual --for 2s && kdefer trace report
  kdefer top -- run 1-2-timer periodic=Y
  kdefer top -b -n 3 --step 1s trace.kdt
  kdefer plot sleeps
  kdefer modules`,
		Version:       versionString(),
		SilenceErrors: true, // execute reports errors: one line and a hint
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs, // RunE names an unknown command
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprint(e.stderr, c.UsageString())
				return exitStatus(exitUsage)
			}
			err := fmt.Errorf("unknown command %q", args[0])
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				err = fmt.Errorf("unknown command %q (did you mean %q?)", args[0], s[0])
			}
			return usage(c, err)
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage(c, err) })
	root.SetHelpCommand(newHelpCmd(e))
	for _, newCmd := range commands {
		root.AddCommand(newCmd(e))
	}
	return root
}

func versionString() string {
	return fmt.Sprintf("kdefer %s (%s %s/%s)", kernel.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// usageErr is a wrong command line: execute prints it as one line, then
// a hint where to read more.
type usageErr struct {
	cmd  *cobra.Command
	err  error
	hint string // "see 'kdefer help run'" unless set
}

func (u *usageErr) Error() string { return u.err.Error() }
func (u *usageErr) Unwrap() error { return u.err }

// usage returns err as a usage error of command c.
func usage(c *cobra.Command, err error) error { return &usageErr{cmd: c, err: err} }

// exitStatus is an exit status for a command that has already said what
// it had to.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// report prints err as execute's caller sees it and returns the exit
// status.
func (e *env) report(err error) int {
	var ue *usageErr
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		hint := ue.hint
		if hint == "" {
			hint = "see '" + helpCommandFor(ue.cmd) + "'"
		}
		fmt.Fprintf(e.stderr, "%s: %v\n%s\n", ue.cmd.CommandPath(), ue.err, hint)
		return exitUsage
	case errors.As(err, &st):
		return int(st)
	case e.stdout.Err() != nil && errors.Is(err, e.stdout.Err()):
		return exitFailure // execute says it once for every command
	}
	// Cobra's own errors (an unknown command under "help", say) and any
	// other failure.
	fmt.Fprintf(e.stderr, "kdefer: %v\n", err)
	return exitFailure
}

// helpCommandFor returns the command line that shows c's help
// ("kdefer help run").
func helpCommandFor(c *cobra.Command) string {
	if !c.HasParent() {
		return "kdefer help"
	}
	return "kdefer help " + strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}

// noArgs is the Args check of a command that takes no arguments.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage(c, fmt.Errorf("takes no arguments (got %q)", strings.Join(args, " ")))
	}
	return nil
}
