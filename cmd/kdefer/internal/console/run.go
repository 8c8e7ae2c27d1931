package console

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
)

// exec starts a demo's program (`kdefer run MODULE --exec`'s) as a new
// user task and returns at once, as a shell's `APP ARGS &` would:
// "[PID] APP started" now, "[PID] APP exited with status N" when it ends.
// Its output goes to kdefer's standard output and error.
func (sh *Shell) exec(args []string, out *bytes.Buffer) error {
	if len(args) == 0 {
		return errors.New("usage: exec APP [ARG...] ('kdefer modules' lists the programs)")
	}
	report := sh.out
	t, err := sh.run.StartApp(args, func(t *kernel.Task, status int) {
		fmt.Fprintf(report, "[%d] %s exited with status %d\n", t.PID(), t.Comm(), status)
	})
	switch {
	case errors.Is(err, runner.ErrUnknownApp):
		return fmt.Errorf("%s: no such program ('kdefer modules' lists them)", args[0])
	case errors.Is(err, runner.ErrNotRunning):
		return errors.New("the module is not running")
	case err != nil:
		return fmt.Errorf("%s: %v", args[0], errText(err))
	}
	fmt.Fprintf(out, "[%d] %s started\n", t.PID(), strings.Join(args, " "))
	return nil
}

// errText is err's text without its package prefix ("runner: ").
func errText(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && !strings.Contains(s[:i], " ") {
		return s[i+2:]
	}
	return s
}

// rmmod unloads the module (rmmod(8)), which ends the run. A name, if
// given, must be the loaded module's (dashes and underscores are the same,
// as for kmod).
func (sh *Shell) rmmod(args []string, _ *bytes.Buffer) error {
	switch {
	case len(args) > 1 || len(args) == 1 && strings.HasPrefix(args[0], "-"):
		return errors.New("usage: rmmod [MODULE] (options are not supported)")
	case len(args) == 1 && strings.ReplaceAll(args[0], "-", "_") != sh.run.Module():
		return fmt.Errorf("ERROR: Module %s is not currently loaded", args[0])
	}
	sh.run.Stop(ErrQuit)
	return nil
}

// quit ends the run: the module is unloaded, as by rmmod.
func (sh *Shell) quit(args []string, _ *bytes.Buffer) error {
	if len(args) > 0 {
		return errors.New("takes no arguments")
	}
	sh.run.Stop(ErrQuit)
	return nil
}
