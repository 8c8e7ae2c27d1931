package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
)

// stopSignals are the signals that stop a run: each is handled the same
// way (the module is unloaded and kdefer exits with 128+signal).
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// relay turns kdefer's first SIGINT, SIGTERM or SIGHUP into an orderly
// stop (cancel with a *runner.Interrupted cause: the run unloads the
// module) and the second into an immediate exit with 128+signal, saying
// what state the module was left in.
type relay struct {
	cancel context.CancelCauseFunc
	stderr io.Writer
	exit   func(code int) // os.Exit

	mu     sync.Mutex
	active *runner.Runner // the run in progress, if any
}

// setActive registers the run a second signal would abandon.
func (rl *relay) setActive(r *runner.Runner) {
	if rl == nil {
		return
	}
	rl.mu.Lock()
	rl.active = r
	rl.mu.Unlock()
}

// watch handles the signals received on sigs until the second one (or
// until sigs is closed).
func (rl *relay) watch(sigs <-chan os.Signal) {
	first := true
	for s := range sigs {
		sig := kernelSignal(s)
		if first {
			first = false
			rl.cancel(&runner.Interrupted{Sig: sig})
			continue
		}
		fmt.Fprintln(rl.stderr, rl.quitMessage(sig))
		rl.exit(128 + int(sig))
		return
	}
}

// quitMessage says what quitting at once leaves behind.
func (rl *relay) quitMessage(sig kernel.Signal) string {
	rl.mu.Lock()
	r := rl.active
	rl.mu.Unlock()
	head := "kdefer: second " + runner.SignalName(sig) + ": quitting"
	if r == nil {
		return head
	}
	switch m := r.Module(); r.State() {
	case runner.StateNew, runner.StateBooting:
		return head + " before " + m + " was loaded"
	case runner.StateLoading:
		return head + " without unloading " + m + " (its init had not returned)"
	case runner.StateLoaded:
		return head + " without unloading " + m
	case runner.StateUnloading:
		return head + " while " + m + "'s exit function runs"
	default:
		return head + "; " + m + " is not loaded"
	}
}

// kernelSignal returns s's number as a kernel.Signal.
func kernelSignal(s os.Signal) kernel.Signal {
	if n, ok := s.(syscall.Signal); ok {
		return kernel.Signal(n)
	}
	return kernel.SIGINT // os.Interrupt on systems without syscall.Signal
}
