package console

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
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

// rmmod unloads the module (rmmod(8)): it checks the command and asks
// the session to unload (Action.Unload), which runs the module's exit and
// keeps the kernel running, as after a real rmmod; what the module left
// behind (a thread it never stopped) lives on. A name, if given, must be
// the run's module (dashes and underscores are the same, as for kmod), and
// the module must still be loaded: else kmod's "ERROR: Module X is not
// currently loaded".
func (sh *Shell) rmmod(args []string, _ *bytes.Buffer) error {
	name := sh.run.Module()
	switch {
	case len(args) > 1 || len(args) == 1 && strings.HasPrefix(args[0], "-"):
		return errors.New("usage: rmmod [MODULE] (options are not supported)")
	case len(args) == 1:
		name = args[0]
	}
	if strings.ReplaceAll(name, "-", "_") != sh.run.Module() || module.Loader(sh.k, nil).Find(sh.run.Module()) == nil {
		return fmt.Errorf("ERROR: Module %s is not currently loaded", name)
	}
	return nil
}

// quit ends the run: the module is unloaded if it is still loaded.
func (sh *Shell) quit(args []string, _ *bytes.Buffer) error {
	if len(args) > 0 {
		return errors.New("takes no arguments")
	}
	sh.run.Stop(ErrQuit)
	return nil
}
