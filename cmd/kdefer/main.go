// Command kdefer boots a userspace Linux-style kernel and runs the classic
// kernel-programming examples in it as loadable modules, printing a
// dmesg-style log:
//
//	kdefer run timer_simple            # boot, insmod, stream the log; Ctrl-C unloads
//	kdefer run sed1 make_it_fail=1 --for 3s --virtual
//	kdefer run sed1 --virtual --exec "userapp_sed1 /dev/sed1_drv hello"
//	kdefer trace record -- run timer_simple --virtual   # record tracepoints; trace report/export/list
//	kdefer top -- run 1-2-timer        # a live view of the running module
//	kdefer top trace.kdt               # a recording replayed (-b: as text)
//	kdefer plot sleeps                 # pictures: sleeps, lateness, timeline
//	kdefer modules                     # list modules and their parameters
//	kdefer version
//
// The commands are in a table (root.go), one file each; `run`'s life cycle
// (boot, insmod, log, rmmod, shutdown) is the reusable runner in
// internal/runner.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, stopSignals...)
	rl := &relay{cancel: cancel, stderr: os.Stderr, exit: os.Exit}
	go rl.watch(sigs)
	var stdout io.Writer = os.Stdout
	if stdoutClosedAtStart() {
		stdout = failingWriter{errStdoutClosed}
	}
	code := execute(ctx, os.Args[1:], os.Stdin, stdout, os.Stderr, rl)
	signal.Stop(sigs)
	os.Exit(code)
}

// run is kdefer with args, writing to stdout and stderr, and returns the
// exit status. Cancelling ctx is an interrupt: its cause, when it is a
// *runner.Interrupted, names the signal (else SIGINT). There is no second
// interrupt: tests use the relay for that.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, args, nil, stdout, stderr, nil)
}
