// Command kdefer boots a userspace Linux-style kernel and runs the classic
// kernel-programming examples in it as loadable modules, printing a
// dmesg-style log:
//
//	kdefer run timer_simple            # boot, insmod, stream the log; Ctrl-C unloads
//	kdefer run sed1 make_it_fail=1 --for 3s --virtual
//	kdefer run sed1 --virtual --exec "userapp_sed1 /dev/sed1_drv hello"
//	kdefer modules                     # list modules and their parameters
//	kdefer version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/procfs"
)

func main() {
	// The first Ctrl-C (or SIGTERM) cancels ctx: the module finishes its
	// init if it is in it, is unloaded, and kdefer exits. A second one
	// quits at once, as a stuck insmod would be killed.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel(fmt.Errorf("%v signal received", s))
		<-sigs
		fmt.Fprintln(os.Stderr, "kdefer: second interrupt: quitting without unloading the module")
		os.Exit(130)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}

const usage = `kdefer — the Linux kernel's time and deferred-work subsystem, in userspace.

Usage:
  kdefer run MODULE [param=value ...] [flags]   boot a kernel, load MODULE, stream the log
                                                (--exec "APP ARGS" runs a demo's program)
  kdefer modules                                list the built-in modules and their parameters
  kdefer version                                print the version
  kdefer help [COMMAND]                         show help

Run 'kdefer help run' for the run flags.
`

const runUsage = `Usage: kdefer run MODULE [param=value ...] [flags]

Boots a kernel, loads MODULE (insmod with the given parameters, as the kernel's
parse_args reads them), streams the kernel log as dmesg -w would, and unloads
the module (rmmod) on Ctrl-C or when --for has elapsed. Flags may come before
or after the module's parameters. MODULE may also be a short name (sed1 for
sed1_drv) or spelled with dashes for underscores (1-2-timer for 1_2_timer).

Flags:
  --exec "APP ARGS"  once MODULE is loaded, run the demo's userspace program APP
                   (e.g. "userapp_sed1 /dev/sed1_drv hello") as a user task; its
                   output goes to stdout and stderr. The module stays loaded
                   until APP has exited and --for (if given) has elapsed since
                   the load; kdefer then exits with APP's status when it is not 0.
                   Ctrl-C sends APP SIGINT.
  --for DURATION   run for this long of kernel time, then unload (e.g. 2s, 500ms);
                   in virtual time the default is 10s (without --exec)
  --virtual        virtual time: deterministic, runs as fast as the host allows
  --hz N           tick rate: 100, 250 (default), 300 or 1000
  --cpus N         number of logical CPUs (default: host cores, at most 64)
  --seed N         seed for virtual time (default 1)
  --proc           before unloading, print /proc/softirqs, /proc/interrupts,
                   /proc/timer_list and a dump of the timer wheel
  --no-timestamps  print the log without [seconds.micros] stamps
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "modules":
		if hasHelp(args[1:]) {
			fmt.Fprintln(stdout, "Usage: kdefer modules\n\nLists the built-in modules, their descriptions and parameters (name:type, default, permissions).")
			return 0
		}
		return cmdModules(stdout)
	case "version", "--version":
		if hasHelp(args[1:]) {
			fmt.Fprintln(stdout, "Usage: kdefer version")
			return 0
		}
		fmt.Fprintf(stdout, "kdefer %s (%s %s/%s)\n", kernel.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			switch args[1] {
			case "run", "modules", "version":
				return run(ctx, []string{args[1], "--help"}, stdout, stderr)
			case "help":
			default:
				fmt.Fprintf(stderr, "kdefer help: unknown command %q\n\n%s", args[1], usage)
				return 2
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "kdefer: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func hasHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

type runOpts struct {
	module   string
	exec     string
	params   []string
	forD     time.Duration
	virtual  bool
	hz       int
	cpus     int
	seed     int64
	proc     bool
	noStamps bool
}

// parseRun separates flags (anywhere) from the module name and its
// name=value parameters.
func parseRun(args []string) (runOpts, error) {
	o := runOpts{hz: int(jiffies.DefaultHZ), seed: 1}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.DurationVar(&o.forD, "for", 0, "")
	fs.StringVar(&o.exec, "exec", "", "")
	fs.BoolVar(&o.virtual, "virtual", false, "")
	fs.IntVar(&o.hz, "hz", o.hz, "")
	fs.IntVar(&o.cpus, "cpus", 0, "")
	fs.Int64Var(&o.seed, "seed", 1, "")
	fs.BoolVar(&o.proc, "proc", false, "")
	fs.BoolVar(&o.noStamps, "no-timestamps", false, "")
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		rest := fs.Args()
		// "--" ends the flags: everything after it is MODULE and its
		// parameters, including any further "--" (parse_args' own).
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		args = rest
		if len(args) > 0 {
			positional = append(positional, args[0])
			args = args[1:]
		}
	}
	if len(positional) == 0 {
		return o, errors.New("missing MODULE")
	}
	o.module, o.params = positional[0], positional[1:]
	for _, p := range o.params {
		if strings.HasPrefix(p, "=") {
			return o, fmt.Errorf("bad module parameter %q (want name=value)", p)
		}
	}
	if o.hz <= 0 {
		return o, fmt.Errorf("--hz %d: want 100, 250, 300 or 1000", o.hz)
	}
	if err := jiffies.HZ(o.hz).Valid(); err != nil {
		return o, err
	}
	cpusSet := false
	fs.Visit(func(f *flag.Flag) { cpusSet = cpusSet || f.Name == "cpus" })
	if o.cpus < 0 || o.cpus > kernel.NRCPUs || (cpusSet && o.cpus == 0) {
		return o, fmt.Errorf("--cpus %d: want 1..%d", o.cpus, kernel.NRCPUs)
	}
	if o.forD < 0 {
		return o, fmt.Errorf("--for %v: negative duration", o.forD)
	}
	if o.virtual && o.forD == 0 && o.exec == "" {
		o.forD = 10 * time.Second
	}
	return o, nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if hasHelp(args) {
		fmt.Fprint(stdout, runUsage)
		return 0
	}
	o, err := parseRun(args)
	if err != nil {
		fmt.Fprintf(stderr, "kdefer run: %v\n\n%s", err, runUsage)
		return 2
	}
	reg := modules.Registry()
	name, ok := modules.Resolve(o.module)
	if !ok {
		fmt.Fprintf(stderr, "kdefer run: no module %q (see 'kdefer modules')\n", o.module)
		return 2
	}
	o.module = name
	var app modules.App
	var argv []string
	if o.exec != "" {
		argv, err = splitCommand(o.exec)
		if err == nil && len(argv) == 0 {
			err = errors.New("empty command")
		}
		if err != nil {
			fmt.Fprintf(stderr, "kdefer run: --exec %q: %v\n", o.exec, err)
			return 2
		}
		// Found by its base name; the program sees argv[0] as typed, as
		// the C programs print it in their usage line.
		if app, ok = modules.LookupApp(path.Base(argv[0])); !ok {
			fmt.Fprintf(stderr, "kdefer run: --exec: no program %q (see 'kdefer modules')\n", argv[0])
			return 2
		}
	}
	// The log sink and the program write concurrently in real time.
	var outMu sync.Mutex
	stdout = &lockedWriter{mu: &outMu, w: stdout}
	stderr = &lockedWriter{mu: &outMu, w: stderr}
	cfg := kernel.Config{CPUs: o.cpus, HZ: jiffies.HZ(o.hz), Virtual: o.virtual, Seed: o.seed}
	cfg.Log = func(r printk.Record) {
		if o.noStamps {
			fmt.Fprintln(stdout, r.Text)
		} else {
			fmt.Fprintln(stdout, printk.FormatDmesg(r))
		}
	}
	k, err := kernel.Boot(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "kdefer: %v\n", err)
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Shutdown(sctx); err != nil {
			fmt.Fprintf(stderr, "kdefer: %v\n", err)
		}
		k.Log().Flush()
	}()
	ld := module.Loader(k, reg)
	var loadErr error
	// A module's init is not interruptible (msleep in it sleeps in
	// TASK_UNINTERRUPTIBLE): an interrupt during insmod waits for it, and
	// the module is then unloaded.
	if _, err := k.RunTask(context.WithoutCancel(ctx), "insmod", func(c *kernel.Ctx) int {
		loadErr = ld.Insmod(c, o.module, o.params...)
		return 0
	}); err != nil {
		fmt.Fprintf(stderr, "kdefer: %v\n", err)
		return 1
	}
	if loadErr != nil {
		k.Log().Flush()
		fmt.Fprintln(stderr, loadErr) // kmod's "insmod: ERROR: could not insert module …" line
		return 1
	}
	appCode := 0
	if o.exec == "" {
		if err := k.Run(ctx, o.forD); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "kdefer: %v\n", err)
		}
	} else {
		start := k.Now()
		var err error
		appCode, err = runApp(ctx, k, app, argv, stdout, stderr)
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "kdefer: %s: %v\n", app.Name, err)
		}
		if rest := o.forD - time.Duration(k.Now()-start); o.forD > 0 && rest > 0 && ctx.Err() == nil {
			if err := k.Run(ctx, rest); err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(stderr, "kdefer: %v\n", err)
			}
		}
	}
	if o.proc {
		// Before rmmod, so that the module's timers still show.
		k.Log().Flush()
		fmt.Fprint(stdout, "\n$ cat /proc/softirqs\n"+procfs.Softirqs(k)+
			"\n$ cat /proc/interrupts\n"+procfs.Interrupts(k)+
			"\n$ cat /proc/timer_list\n"+procfs.TimerList(k)+
			"\n# timer wheel\n"+procfs.TimerWheel(k)+"\n")
	}
	var rmErr error
	if _, err := k.RunTask(context.Background(), "rmmod", func(c *kernel.Ctx) int {
		rmErr = ld.Rmmod(c, o.module)
		return 0
	}); err != nil {
		fmt.Fprintf(stderr, "kdefer: %v\n", err)
		return 1
	}
	if rmErr != nil {
		fmt.Fprintln(stderr, rmErr)
		return 1
	}
	return appCode
}

// runApp runs a demo's program as a user task until it exits and returns
// its exit status. If ctx is done first (Ctrl-C), the program gets SIGINT,
// as the terminal's foreground process would; if in virtual time it blocks
// with nothing left to wake it, SIGKILL. It is then given a moment of
// kernel time to exit (SIGKILL if it does not), and the error is returned.
func runApp(ctx context.Context, k *kernel.Kernel, app modules.App, argv []string, stdout, stderr io.Writer) (int, error) {
	var task atomic.Pointer[kernel.Task]
	code, err := k.RunTask(ctx, app.Name, func(c *kernel.Ctx) int {
		task.Store(c.Current())
		return app.Main(c, argv, stdout, stderr)
	})
	if err == nil {
		return code, nil
	}
	t := task.Load()
	if t == nil {
		return 1, err
	}
	sig := kernel.SIGKILL
	if ctx.Err() != nil {
		sig = kernel.SIGINT
	}
	for _, s := range []kernel.Signal{sig, kernel.SIGKILL} {
		k.SendSignal(t, s)
		if waitExit(k, t) {
			return t.ExitCode(), err
		}
	}
	return 128 + int(kernel.SIGKILL), err
}

// waitExit waits up to a second of kernel time (virtual time: driving the
// kernel) for t to exit.
func waitExit(k *kernel.Kernel, t *kernel.Task) bool {
	if !k.Virtual() {
		select {
		case <-t.Exited():
			return true
		case <-time.After(time.Second):
			return false
		}
	}
	for i := 0; i < 100; i++ {
		select {
		case <-t.Exited():
			return true
		default:
		}
		k.Run(context.Background(), 10*time.Millisecond)
	}
	return false
}

// splitCommand splits a command line into words as a POSIX shell does for
// plain words: blanks separate them, '…' quotes literally, "…" quotes with
// backslash escapes of \ " $ and `, and a backslash outside quotes escapes
// the next character. There are no expansions.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New(`unterminated "`)
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		default:
			inWord = true
			cur.WriteByte(ch)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func cmdModules(stdout io.Writer) int {
	infos := modules.All()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		fmt.Fprintf(stdout, "%-16s %s (license: %s)\n", info.Name, info.Description, info.License)
		for _, a := range modules.Aliases() {
			if a[1] == info.Name {
				fmt.Fprintf(stdout, "    alias: %s\n", a[0])
			}
		}
		for _, p := range info.Params() {
			fmt.Fprintf(stdout, "    %s:%s (default %s, perm %s) %s\n", p.Name, p.Type, strconv.Quote(p.Default), fmt.Sprintf("%04o", p.Perm), p.Description)
		}
		for _, a := range modules.Apps() {
			if a.Module == info.Name {
				fmt.Fprintf(stdout, "    app: %s %s (--exec)\n", a.Name, a.Args)
			}
		}
	}
	return 0
}
