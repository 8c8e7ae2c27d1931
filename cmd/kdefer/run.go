package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/console"
	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
)

// virtualDefaultFor is how long a virtual-time run without --for and
// without --exec lasts: a virtual kernel runs as fast as the host allows,
// so "until Ctrl-C" would flood the terminal with a periodic timer's log.
const virtualDefaultFor = 10 * time.Second

const runLong = `Boots a kernel, loads MODULE (insmod, with its name=value parameters parsed
as the kernel's parse_args does), streams the kernel log as dmesg -w does,
and unloads the module (rmmod) when --for has passed, when --exec's program
has exited, or when kdefer is interrupted.

Flags may come before or after the module's parameters; after "--" every
word goes to the module. MODULE may be a short name (sed1 for sed1_drv) or
spelled with dashes for underscores (1-2-timer); 'kdefer modules' lists the
modules, their parameters and their programs.

How long: the module stays loaded for --for of kernel time, or with --for 0
(no limit) until kdefer is interrupted. With --exec "APP ARGS" the demo's
program (e.g. "userapp_sed1 /dev/sed1_drv hello") runs as a user task once
the module is loaded, printing to stdout and stderr, and the module stays
until the program has exited and --for has passed. Without --for: no limit,
except in virtual time without --exec: 10s. In virtual time --for 0 also
ends when the kernel has nothing left to do (no runnable task, no pending
timer), since its clock could never move again.

Time: by default the kernel runs on the host's monotonic clock. With
--virtual its clock moves only when every task is blocked, jumping to the
next event: a run takes milliseconds and the same flags and --seed give the
same log, byte for byte (pass --cpus to compare runs across machines).

Console: while the module runs, kdefer reads commands from standard input
when it is a terminal (in the foreground) or a pipe, and prints their
replies between the log's lines: ps, kill [-SIGNAL] PID, dmesg, cat
/proc/softirqs (and every other view: 'ls /proc'), lsmod, exec APP ARGS (a
demo's program as a new user task), sleep DURATION, rmmod, quit, help.
rmmod unloads the module and the kernel runs on without it, as after a
real rmmod, until --for has passed, a signal or quit: what the module left
behind lives on (kt1's thread, which Oopses when it runs again); quit
unloads the module if it is still loaded and ends the run (exit status 0).
A terminal gets a prompt; a script does not:
  printf 'ps\nexec userapp_sed1 /dev/sed1_drv hi\nsleep 0.5\nkill -INT 6\n' |
    kdefer run sed1 --virtual
  printf 'ps\nrmmod\nkill -INT 6\nquit\n' | kdefer run kt1 --virtual
The end of input does not end the run. In virtual time the clock stands
still while the console waits for a command, so a script's commands run at
the same instant of every run, each once what the one before it woke has
run; 'sleep D' lets D of kernel time pass first, and the end of input lets
the clock run on. --console=false leaves standard input alone.

Signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP all end the run the same way,
with or without --exec: the program gets the same signal, a module init
that is running finishes (init is not interruptible), the module is
unloaded, and kdefer exits with 128+signal. A second signal quits at once,
without waiting, and says whether the module was still loaded.

Exit status:
  0              the run ended by itself, or by the console's quit, and
                 --exec's program (if any) exited 0
  1              the kernel did not boot or shut down, insmod or rmmod failed,
                 or the output could not be written (the run then stops)
  2              usage error
  N              --exec's program exited with status N
  129, 130, 143  interrupted by SIGHUP, SIGINT or SIGTERM; the module was unloaded`

const runExample = `  kdefer run timer_simple --for 2s
  kdefer run delays_sleeps --virtual
  kdefer run sed1 make_it_fail=1 --exec "userapp_sed1 /dev/sed1_drv hello"
  kdefer run 1-2-timer periodic=N --for 3s
  kdefer run testmod count=5 --virtual --for 2s --proc
  printf 'ps\nlsmod\ncat /proc/softirqs\n' | kdefer run timer_simple --virtual`

// runFlags are `kdefer run`'s flags, parsed into their types.
type runFlags struct {
	forD     durationFlag
	exec     execFlag
	virtual  bool
	hz       hzFlag
	cpus     cpusFlag
	seed     int64
	proc     bool
	noStamps bool
	console  bool

	hooks *runHooks // set by the commands that wrap run (trace record, top)
}

// runHooks let a command that wraps `kdefer run` (trace record, top) add
// to the run's configuration and act once it has ended.
type runHooks struct {
	// config adjusts the runner's configuration before the run; an error
	// is a usage error of the run.
	config func(cfg *runner.Config) error
	// started is called once the module is loaded (Start returned nil),
	// while the run goes on.
	started func(r *runner.Runner)
	// done is called once the run has ended (Wait returned), before the
	// exit status is worked out; its error is reported as a failure.
	done func(res runner.Result, err error) error
}

// newRunCmd is `kdefer run MODULE [param=value ...]`.
func newRunCmd(e *env) *cobra.Command { return newRunCmdWith(e, nil) }

// newRunCmdWith is `kdefer run` with hooks (nil: none).
func newRunCmdWith(e *env, h *runHooks) *cobra.Command {
	o := &runFlags{hz: hzFlag{jiffies.DefaultHZ}, seed: 1, console: true, hooks: h}
	c := &cobra.Command{
		Use:     "run MODULE [param=value ...] [flags]",
		Short:   "Boot a kernel, load MODULE, stream the kernel log, unload",
		Long:    runLong,
		Example: runExample,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usage(c, errors.New("missing MODULE"))
			}
			for _, p := range args[1:] {
				if strings.HasPrefix(p, "=") {
					return usage(c, fmt.Errorf("bad module parameter %q: want name=value", p))
				}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return o.run(c, e, args) },
	}
	f := c.Flags()
	f.Var(&o.forD, "for", "unload after `DURATION` of kernel time (500ms, 2s, 1m30s; 0: no limit); default 0, or 10s with --virtual")
	f.Var(&o.exec, "exec", "run the demo's userspace program `\"APP ARGS\"` once MODULE is loaded; see 'kdefer modules'")
	f.BoolVar(&o.virtual, "virtual", false, "virtual time: deterministic, as fast as the host allows")
	f.Var(&o.hz, "hz", "tick rate (CONFIG_HZ): 100, 250, 300 or 1000")
	f.Var(&o.cpus, "cpus", "number of logical CPUs, 1..64 (default: the host's cores)")
	f.Int64Var(&o.seed, "seed", 1, "seed `N` of virtual time's choices: the same seed, the same log")
	f.BoolVar(&o.proc, "proc", false, "print ps, /proc/loadavg, /proc/softirqs, /proc/interrupts, /proc/timer_list, the timer wheel and /proc/workqueues before unloading")
	f.BoolVar(&o.noStamps, "no-timestamps", false, "print the log without its [seconds.micros] stamps")
	f.BoolVar(&o.console, "console", true, "read commands (ps, kill, cat /proc/…) from standard input when it is a terminal or a pipe; see above")
	return c
}

func (o *runFlags) run(c *cobra.Command, e *env, args []string) error {
	cfg := runner.Config{
		Module:  args[0],
		Params:  args[1:],
		HZ:      o.hz.hz,
		CPUs:    o.cpus.n,
		Virtual: o.virtual,
		Seed:    o.seed,
		For:     o.forD.d,
		Exec:    o.exec.argv,
		Log:     e.stdout, NoTimestamps: o.noStamps,
		Stdout: e.stdout, Stderr: e.stderr,
	}
	if !c.Flags().Changed("for") && o.virtual && o.exec.argv == nil {
		cfg.For = virtualDefaultFor
	}
	if o.proc {
		cfg.BeforeUnload = printProc
	}
	if o.hooks != nil && o.hooks.config != nil {
		if err := o.hooks.config(&cfg); err != nil {
			return usage(c, err)
		}
	}
	var in *os.File
	terminal := false
	if ok, term := consoleInput(e.stdin); o.console && ok {
		in, terminal = e.stdin, term
		cfg.HoldClock = true // virtual time waits for the console's commands
	}
	r, err := runner.New(cfg)
	switch {
	case errors.Is(err, runner.ErrUnknownModule):
		return &usageErr{cmd: c, err: fmt.Errorf("no module %q", args[0]), hint: "see 'kdefer modules'"}
	case errors.Is(err, runner.ErrUnknownApp):
		return &usageErr{cmd: c, err: fmt.Errorf("--exec: no program %q", o.exec.argv[0]), hint: "see 'kdefer modules'"}
	case err != nil:
		return usage(c, err)
	}
	e.relay.setActive(r)
	// An interrupt (ctx done) stops the run; main's cause names the signal.
	if err := r.Start(c.Context()); err == nil {
		if in != nil {
			go serveConsole(r, in, terminal, e)
		}
		if o.hooks != nil && o.hooks.started != nil {
			o.hooks.started(r)
		}
	}
	res, err := r.Wait()
	if o.hooks != nil && o.hooks.done != nil {
		if herr := o.hooks.done(res, err); herr != nil {
			fmt.Fprintf(e.stderr, "kdefer: %v\n", herr)
			if st := runStatus(e, res, err); st != nil {
				return st
			}
			return exitStatus(exitFailure)
		}
	}
	return runStatus(e, res, err)
}

// prompt is the console's prompt on a terminal.
const prompt = "kdefer> "

// serveConsole reads console commands from in until its end or quit,
// or the end of the run (see console.Serve). It may outlive the run,
// blocked in a read of standard input: nothing it does then is written.
func serveConsole(r *runner.Runner, in *os.File, terminal bool, e *env) {
	opts := console.ServeOptions{}
	if terminal {
		opts.Prompt = prompt
		hint := "kdefer: console: type 'help' for the commands; Ctrl-C unloads the module\n"
		if r.Kernel().Virtual() {
			hint = "kdefer: console: type 'help' for the commands; virtual time stands still until\n" +
				"the next command, 'sleep D' or the end of input (Ctrl-D)\n"
		}
		io.WriteString(r.Writer(e.stderr), hint)
	}
	if err := console.Serve(r, in, e.stdout, e.stderr, opts); err != nil {
		fmt.Fprintf(r.Writer(e.stderr), "kdefer: %v\n", err)
	}
}

// runStatus prints a run's errors and returns its exit status: an error
// (1) before an interrupt (128+signal) before the program's status.
func runStatus(e *env, res runner.Result, err error) error {
	if err != nil {
		for _, err := range flatten(err) {
			switch {
			case errors.Is(err, runner.ErrOutput):
				// execute reports the failed write once, for every command.
			case errors.Is(err, runner.ErrLoad), errors.Is(err, runner.ErrUnload):
				fmt.Fprintln(e.stderr, err) // kmod's own "insmod: ERROR: …" line
			default:
				fmt.Fprintf(e.stderr, "kdefer: %s\n", strings.TrimPrefix(err.Error(), "runner: "))
			}
		}
		return exitStatus(exitFailure)
	}
	var in *runner.Interrupted
	switch {
	case errors.As(res.Stopped, &in):
		return exitStatus(128 + int(in.Sig))
	case errors.Is(res.Stopped, console.ErrQuit): // as if the time were up
	case res.Stopped != nil: // a context cancelled without a signal: as SIGINT
		return exitStatus(128 + int(kernel.SIGINT))
	}
	if res.AppStatus != 0 {
		return exitStatus(res.AppStatus)
	}
	return nil
}

// flatten returns the errors that errors.Join joined in err, or err.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && !errors.Is(err, runner.ErrLoad) && !errors.Is(err, runner.ErrUnload) {
		return j.Unwrap()
	}
	return []error{err}
}

// printProc is --proc: ps and the /proc views, printed before rmmod so that the
// module's timers still show.
func printProc(k *kernel.Kernel, out io.Writer) {
	fmt.Fprint(out, "\n$ ps\n"+procfs.PS(k)+
		"\n$ cat /proc/loadavg\n"+procfs.Loadavg(k)+
		"\n$ cat /proc/softirqs\n"+procfs.Softirqs(k)+
		"\n$ cat /proc/interrupts\n"+procfs.Interrupts(k)+
		"\n$ cat /proc/timer_list\n"+procfs.TimerList(k)+
		"\n# timer wheel\n"+procfs.TimerWheel(k)+
		"\n$ cat /proc/workqueues\n"+procfs.Workqueues(k))
}
