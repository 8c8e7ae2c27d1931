// Package console is the shell of a running kdefer kernel: the commands a
// user types while a module is loaded to look at it and poke it, as the
// seed documents do from a terminal — ps, kill, dmesg, cat /proc/…, lsmod,
// running the demo's program, rmmod.
//
// A Shell runs one command line at a time and writes its reply; it does not
// care where the lines come from. Serve feeds it from a reader (kdefer
// run's standard input); a daemon can feed it from a connection. Both go
// through the runner (package runner): each line runs on the kernel's
// driver with runner.Runner.Do, so that commands are safe, and a scripted
// session reproducible, in virtual time.
//
// There is no kernel counterpart: this is the userspace around the kernel
// (procps, util-linux, kmod and a shell), reduced to what the demos use.
// The outputs follow those tools' formats; differences are noted at each
// command (see Help).
package console

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/shellwords"
	"github.com/kdefer/kdefer/kernel"
)

// ErrQuit is the cause the quit command gives Run.Stop: the user asked for
// the end of the run, which is not a failure (kdefer run exits as if the
// module's time were up).
var ErrQuit = errors.New("console: rmmod or quit")

// Run is the run of a module that the commands act on; *runner.Runner
// implements it.
type Run interface {
	// Module is the loaded module's name (rmmod checks it).
	Module() string
	// Stop ends the run: the module is unloaded if it is still loaded
	// (quit).
	Stop(cause error)
	// StartApp starts a demo's program as a new user task (exec).
	StartApp(argv []string, exited func(t *kernel.Task, status int)) (*kernel.Task, error)
}

// Options configure a Shell.
type Options struct {
	// Out receives the commands' replies, Err their error lines (nil:
	// discarded). Each reply is one Write.
	Out, Err io.Writer
	// Files adds readable files to cat and ls, by absolute path, beside
	// the built-in /proc and /sys views: views of higher layers (the
	// workqueue dump, say). Each function renders the file's text with the
	// kernel; it runs where the command runs.
	Files map[string]func(k *kernel.Kernel) string
}

// Shell runs command lines against one running module. Its methods run on
// the kernel's driver (inside runner.Runner.Do); they are not safe for
// concurrent use.
type Shell struct {
	k     *kernel.Kernel
	run   Run
	out   io.Writer
	err   io.Writer
	files map[string]func(k *kernel.Kernel) string
}

// New returns a shell for the module run runs in kernel k.
func New(k *kernel.Kernel, run Run, opts Options) *Shell {
	sh := &Shell{k: k, run: run, out: opts.Out, err: opts.Err, files: map[string]func(*kernel.Kernel) string{}}
	if sh.out == nil {
		sh.out = io.Discard
	}
	if sh.err == nil {
		sh.err = io.Discard
	}
	for p, fn := range opts.Files {
		sh.files[p] = fn
	}
	return sh
}

// Action is what the session does after a command line.
type Action struct {
	// Quit: the run is ending (quit); read no more lines.
	Quit bool
	// Sleep: let this much kernel time pass before the next line
	// (runner.Runner.Advance).
	Sleep time.Duration
	// Unload: unload the module before the next line, keeping the kernel
	// running (rmmod: runner.Runner.Unload, which waits for the module's
	// exit and so cannot run inside the command). The session prints
	// rmmod's error, if any.
	Unload bool
}

// command is one of the shell's commands: it writes its reply to out and
// returns an error line (printed as "NAME: error") or nil. Only run
// changes anything, and only once its arguments have been checked.
type command struct {
	name     string
	args     string // synopsis of the arguments
	summary  string // one line for help
	run      func(sh *Shell, args []string, out *bytes.Buffer) error
	quits    bool   // the session ends after it
	unloads  bool   // the session unloads the module after it (Action.Unload)
	aliasFor string // set for an alias: the command it stands for
	// sleep, for the sleep command: the duration its arguments ask for.
	sleep func(args []string) (time.Duration, error)
}

// commands returns the command table, in help's order. (A function, not a
// variable: help reads the table it is part of.)
func commands() []command {
	return []command{
		{name: "ps", summary: "list the tasks: pid, ppid, state, CPU, command ([kernel threads])", run: (*Shell).ps},
		{name: "kill", args: "[-SIGNAL | -s SIGNAL] PID... | -l", summary: "send a signal (default SIGTERM) to tasks", run: (*Shell).kill},
		{name: "dmesg", args: "[-t]", summary: "print the kernel log (-t: without timestamps)", run: (*Shell).dmesg},
		{name: "cat", args: "FILE...", summary: "print /proc and /sys files ('ls /proc' lists them)", run: (*Shell).cat},
		{name: "echo", args: "[-n] WORDS... [> FILE]", summary: "print words, or write them to a /sys/module/MOD/parameters file", run: (*Shell).echo},
		{name: "ls", args: "[DIR]", summary: "list the files of /proc, /proc/PID, /sys/module/…", run: (*Shell).ls},
		{name: "lsmod", summary: "list the loaded modules", run: (*Shell).lsmod},
		{name: "exec", args: "APP [ARG...]", summary: "run a demo's program as a new user task (see 'kdefer modules')", run: (*Shell).exec},
		{name: "sleep", args: "DURATION", summary: "let kernel time pass before the next command (2, 0.5, 500ms, 1m)", sleep: parseSleep},
		{name: "rmmod", args: "[MODULE]", summary: "unload the module; the kernel runs on without it (quit ends the run)", run: (*Shell).rmmod, unloads: true},
		{name: "quit", summary: "unload the module if it is still loaded, and end the run", run: (*Shell).quit, quits: true},
		{name: "exit", aliasFor: "quit", run: (*Shell).quit, quits: true},
		{name: "help", args: "[COMMAND]", summary: "list the commands", run: (*Shell).help},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// Exec runs one command line, writes its reply and says what the session
// does next: read no more lines after quit, unload the module after rmmod,
// let time pass after sleep (which the session does: Exec does not wait). A blank line and a
// comment (#…) do nothing. A malformed line gets one error line on Err
// and changes nothing. Call it on the kernel's driver (inside
// runner.Runner.Do).
func (sh *Shell) Exec(line string) Action {
	words, err := shellwords.Split(line)
	if err != nil {
		fmt.Fprintf(sh.err, "kdefer: syntax error: %v\n", err)
		return Action{}
	}
	if len(words) == 0 || strings.HasPrefix(words[0], "#") {
		return Action{}
	}
	c, ok := lookup(words[0])
	if !ok {
		fmt.Fprintf(sh.err, "kdefer: %s: command not found (try 'help')\n", words[0])
		return Action{}
	}
	if c.sleep != nil {
		d, err := c.sleep(words[1:])
		if err != nil {
			fmt.Fprintf(sh.err, "%s: %v\n", c.name, err)
			return Action{}
		}
		return Action{Sleep: d}
	}
	var out bytes.Buffer
	err = c.run(sh, words[1:], &out)
	if out.Len() > 0 {
		sh.out.Write(out.Bytes())
	}
	if err != nil {
		fmt.Fprintf(sh.err, "%s: %v\n", c.name, err)
		return Action{}
	}
	return Action{Quit: c.quits, Unload: c.unloads}
}

// maxSleep bounds sleep's duration (a typo's 1e9 should not hang a script
// for ever).
const maxSleep = 24 * time.Hour

// parseSleep parses sleep's duration: seconds as sleep(1) takes them (2,
// 0.5, with an optional s, m, h or d suffix), or a Go duration (500ms,
// 1m30s). It must be positive and at most a day.
func parseSleep(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, errors.New("usage: sleep DURATION (2, 0.5, 500ms, 1m)")
	}
	a := args[0]
	d, err := time.ParseDuration(a)
	if err != nil {
		num, unit := a, time.Second
		if n := len(a); n > 0 {
			switch a[n-1] {
			case 's':
				num = a[:n-1]
			case 'm':
				num, unit = a[:n-1], time.Minute
			case 'h':
				num, unit = a[:n-1], time.Hour
			case 'd':
				num, unit = a[:n-1], 24*time.Hour
			}
		}
		f, ferr := strconv.ParseFloat(num, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("invalid time interval '%s'", a)
		}
		d = time.Duration(f * float64(unit))
		if f*float64(unit) > float64(maxSleep) {
			d = maxSleep + 1
		}
	}
	if d <= 0 || d > maxSleep {
		return 0, fmt.Errorf("'%s': want more than 0 and at most %v", a, maxSleep)
	}
	return d, nil
}

// Help returns the list of commands, as the help command prints it.
func Help() string {
	var b strings.Builder
	b.WriteString("Commands (the module keeps running meanwhile; end of input leaves it running):\n")
	for _, c := range commands() {
		if c.aliasFor != "" {
			continue
		}
		syn := c.name
		if c.args != "" {
			syn += " " + c.args
		}
		fmt.Fprintf(&b, "  %-40s %s\n", syn, c.summary)
	}
	return b.String()
}

func (sh *Shell) help(args []string, out *bytes.Buffer) error {
	switch len(args) {
	case 0:
		out.WriteString(Help())
		return nil
	case 1:
		c, ok := lookup(args[0])
		if !ok {
			return fmt.Errorf("no command %q", args[0])
		}
		if c.aliasFor != "" {
			c, _ = lookup(c.aliasFor)
		}
		fmt.Fprintf(out, "%s\n  %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		return nil
	}
	return errors.New("usage: help [COMMAND]")
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
