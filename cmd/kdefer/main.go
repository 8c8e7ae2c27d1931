// Command kdefer boots a userspace Linux-style kernel and runs the classic
// kernel-programming examples in it as loadable modules, printing a
// dmesg-style log:
//
//	kdefer run timer_simple            # boot, insmod, stream the log; Ctrl-C unloads
//	kdefer run sed1 make_it_fail=1 --for 3s --virtual
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
	"runtime"
	"sort"
	"strconv"
	"strings"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `kdefer — the Linux kernel's time and deferred-work subsystem, in userspace.

Usage:
  kdefer run MODULE [param=value ...] [flags]   boot a kernel, load MODULE, stream the log
  kdefer modules                                list the built-in modules and their parameters
  kdefer version                                print the version
  kdefer help [COMMAND]                         show help

Run 'kdefer help run' for the run flags.
`

const runUsage = `Usage: kdefer run MODULE [param=value ...] [flags]

Boots a kernel, loads MODULE (insmod with the given parameters, as the kernel's
parse_args reads them), streams the kernel log as dmesg -w would, and unloads
the module (rmmod) on Ctrl-C or when --for has elapsed. Flags may come before
or after the module's parameters.

Flags:
  --for DURATION   run for this long of kernel time, then unload (e.g. 2s, 500ms);
                   in virtual time the default is 10s
  --virtual        virtual time: deterministic, runs as fast as the host allows
  --hz N           tick rate: 100, 250 (default), 300 or 1000
  --cpus N         number of logical CPUs (default: host cores, at most 64)
  --seed N         seed for virtual time (default 1)
  --proc           print /proc/softirqs and /proc/interrupts before shutting down
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
		if len(args) > 1 && args[1] == "run" {
			fmt.Fprint(stdout, runUsage)
			return 0
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
		args = fs.Args()
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
	if err := jiffies.HZ(o.hz).Valid(); err != nil {
		return o, err
	}
	if o.cpus < 0 || o.cpus > kernel.NRCPUs {
		return o, fmt.Errorf("--cpus %d: want 1..%d", o.cpus, kernel.NRCPUs)
	}
	if o.forD < 0 {
		return o, fmt.Errorf("--for %v: negative duration", o.forD)
	}
	if o.virtual && o.forD == 0 {
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
	if _, ok := reg.Lookup(o.module); !ok {
		fmt.Fprintf(stderr, "kdefer run: no module %q (see 'kdefer modules')\n", o.module)
		return 2
	}
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
	if _, err := k.RunTask(ctx, "insmod", func(c *kernel.Ctx) int {
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
	if err := k.Run(ctx, o.forD); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "kdefer: %v\n", err)
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
	if o.proc {
		k.Log().Flush()
		fmt.Fprint(stdout, "\n$ cat /proc/softirqs\n"+procfs.Softirqs(k)+"\n$ cat /proc/interrupts\n"+procfs.Interrupts(k))
	}
	return 0
}

func cmdModules(stdout io.Writer) int {
	infos := modules.All()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		fmt.Fprintf(stdout, "%-16s %s (license: %s)\n", info.Name, info.Description, info.License)
		for _, p := range info.Params() {
			fmt.Fprintf(stdout, "    %s:%s (default %s, perm %s) %s\n", p.Name, p.Type, strconv.Quote(p.Default), fmt.Sprintf("%04o", p.Perm), p.Description)
		}
	}
	return 0
}
