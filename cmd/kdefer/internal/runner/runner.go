// Package runner holds the life cycle of `kdefer run`: boot a kernel, load
// one built-in module into it (insmod), stream the kernel log as `dmesg -w`
// does, let the module run for a while or run a demo's userspace program
// against it, unload it (rmmod) and shut the kernel down.
//
// A Runner is a value with a start, a wait, a stop and errors, so that
// commands other than `run` (trace, top, a console, a daemon) can hold the
// same sequence and look at the kernel while the module is loaded:
//
//	r, err := runner.New(runner.Config{Module: "timer_simple", Log: os.Stdout})
//	if err != nil { … }                  // ErrUnknownModule, ErrUnknownApp, ErrConfig
//	if err := r.Start(ctx); err != nil { … } // booted and loaded, or ErrBoot / ErrLoad
//	…                                      // r.State(), r.Kernel(); r.Stop(cause) ends it early
//	res, err := r.Wait()                   // unloaded and shut down
//
// While the run's time goes on, Do runs a function on the kernel's driver
// (safe in virtual time), StartApp starts a demo's program as a new user
// task, Unload unloads the module and keeps the kernel running without it,
// and Writer gives an output stream serialised with the log: what a
// console (package console) needs. With Config.HoldClock a virtual clock
// waits for the console's input instead of running ahead of it.
//
// There is no kernel counterpart: this is the user at a shell typing
// insmod, running the demo's program and typing rmmod.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/wait"
)

// Errors a Runner returns, wrapped with the details (errors.Is works).
var (
	// ErrUnknownModule: Config.Module names no built-in module.
	ErrUnknownModule = errors.New("runner: no such module")
	// ErrUnknownApp: Config.Exec names no built-in program.
	ErrUnknownApp = errors.New("runner: no such program")
	// ErrConfig: a Config field is out of range (New checks what the
	// kernel would refuse at boot, so that it is reported before booting).
	ErrConfig = errors.New("runner: invalid configuration")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("runner: already started")
	// ErrNotStarted: Wait was called before Start.
	ErrNotStarted = errors.New("runner: not started")
	// ErrBoot: the kernel did not boot.
	ErrBoot = errors.New("runner: boot failed")
	// ErrLoad: insmod failed; the error's text is kmod's line
	// ("insmod: ERROR: could not insert module …").
	ErrLoad = errors.New("runner: module did not load")
	// ErrApp: the demo's program could not be run to its end (in virtual
	// time: it blocked with nothing left to wake it, and was killed).
	ErrApp = errors.New("runner: program failed")
	// ErrUnload: rmmod failed; the error's text is kmod's line.
	ErrUnload = errors.New("runner: module did not unload")
	// ErrOutput: writing the log stream or the program's standard output
	// failed (a full disk, a closed descriptor). The run is stopped at
	// the first such error: the module is unloaded and nothing more is
	// written.
	ErrOutput = errors.New("runner: cannot write output")
	// ErrShutdown: the kernel did not shut down cleanly.
	ErrShutdown = errors.New("runner: shutdown failed")
	// ErrStopped is the cause recorded when Stop is called with nil.
	ErrStopped = errors.New("runner: stopped")
	// ErrNotRunning: Do, StartApp, Unload or a Writer's Write came before
	// the module was loaded or after the run's time ended (the module is
	// being unloaded at the end, or the run is over).
	ErrNotRunning = errors.New("runner: module not running")
)

// Interrupted is the cause of a stop that a signal to kdefer asked for
// (SIGINT from Ctrl-C, SIGTERM, SIGHUP): a running program (Config.Exec)
// gets the same signal, as the terminal's foreground process would.
type Interrupted struct {
	// Sig is the signal kdefer received.
	Sig kernel.Signal
}

// Error reports the signal by its name.
func (e *Interrupted) Error() string { return "interrupted by " + SignalName(e.Sig) }

// SignalName returns the usual name of sig ("SIGINT"), or "signal N".
func SignalName(sig kernel.Signal) string {
	switch sig {
	case kernel.SIGHUP:
		return "SIGHUP"
	case kernel.SIGINT:
		return "SIGINT"
	case kernel.SIGKILL:
		return "SIGKILL"
	case kernel.SIGTERM:
		return "SIGTERM"
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// State is where a run is in its life cycle. It only moves forward, but
// for an Unload that fails (the module is in use): StateUnloading goes
// back to StateLoaded.
type State int32

const (
	// StateNew: New returned the Runner; Start has not been called.
	StateNew State = iota
	// StateBooting: the kernel is booting.
	StateBooting
	// StateLoading: insmod runs the module's init, which is not
	// interruptible: a Stop now takes effect once init has returned.
	StateLoading
	// StateLoaded: the module is live.
	StateLoaded
	// StateUnloading: rmmod runs the module's exit function.
	StateUnloading
	// StateUnloaded: the module is gone, or never loaded. After Unload
	// the kernel runs on without it until the run's time is over; else
	// it is shutting down.
	StateUnloaded
	// StateDone: the kernel is down; Wait returns at once.
	StateDone
)

// String returns the state's name ("loaded").
func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateBooting:
		return "booting"
	case StateLoading:
		return "loading"
	case StateLoaded:
		return "loaded"
	case StateUnloading:
		return "unloading"
	case StateUnloaded:
		return "unloaded"
	case StateDone:
		return "done"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Config says what to run. The zero value of each field is a usable
// default, except Module.
type Config struct {
	// Module is a built-in module's name, a short name ("sed1") or a
	// spelling with dashes for underscores ("1-2-timer").
	Module string
	// Params are insmod's name=value arguments, parsed by the kernel's
	// parse_args rules (an unknown name is reported and ignored).
	Params []string

	// HZ is the tick rate (0: jiffies.DefaultHZ).
	HZ jiffies.HZ
	// CPUs is the number of CPUs (0: the host's cores, at most
	// kernel.NRCPUs).
	CPUs int
	// Virtual runs the kernel in virtual time (kernel.Config.Virtual).
	Virtual bool
	// Seed seeds virtual time's choices (0: 1).
	Seed int64

	// For is how much kernel time (CLOCK_MONOTONIC) the run goes on after
	// the module's init returned: the module stays loaded that long,
	// unless Unload takes it out earlier. 0 means no limit: until Stop, or,
	// with Exec, until the program has exited; a virtual kernel with
	// nothing left to do (no runnable task, no pending event) also ends
	// the run, since its clock can never move again. With Exec and For >
	// 0 the module stays until both the program has exited and For has
	// passed.
	For time.Duration
	// Exec is the argv of a demo's userspace program to run as a user
	// task once the module is loaded (argv[0] is found by its base name;
	// the program sees it as given). Nil: none.
	Exec []string

	// Log receives the kernel log, one record a line, as dmesg prints it
	// ("[    0.448000] text"). Nil discards it. A write error stops the
	// run (ErrOutput).
	Log io.Writer
	// NoTimestamps leaves the "[seconds.micros] " stamps out of Log.
	NoTimestamps bool
	// Stdout and Stderr are the program's (Exec) standard output and
	// error; nil discards. A write error on Stdout stops the run
	// (ErrOutput). Writes to Log, Stdout and Stderr are serialised: they
	// may be the same file.
	Stdout, Stderr io.Writer

	// BeforeUnload, when non-nil, is called right before rmmod, with the
	// module still loaded: once the run's time is up, or when Unload is
	// called (`kdefer run --proc` prints the /proc views there). out
	// writes to Log, serialised with the log stream and with the same
	// error handling. In virtual time BeforeUnload runs on the goroutine
	// that drives the kernel, so it may use the kernel freely. It is
	// called at most once, and not if the module did not load.
	BeforeUnload func(k *kernel.Kernel, out io.Writer)
	// TraceEvents enables trace events from boot on
	// (kernel.Config.TraceEvents: "timer,irq", "all"); "" enables none.
	TraceEvents string
	// TraceBufferRecords is each CPU's trace ring capacity in records
	// (kernel.Config.TraceBufferRecords; 0: the tracer's default).
	TraceBufferRecords int
	// OnBoot, when non-nil, is called once the kernel has booted, before
	// insmod: `kdefer trace record` starts draining the trace rings there,
	// `kdefer top` starts watching. It runs on the goroutine that called
	// Start and must not block.
	OnBoot func(k *kernel.Kernel)
	// ShutdownTimeout bounds the kernel's shutdown (0: 10 s of real time).
	ShutdownTimeout time.Duration

	// HoldClock, in virtual time, holds the kernel's clock once the
	// module is loaded: the tasks that init woke run, and then the
	// kernel does not move on (no timer fires, For does not elapse)
	// until ReleaseClock, while the functions given to Do run at that
	// instant, each after what the one before it made runnable has run.
	// A console that reads a script sets it, so that the script's
	// commands run at a reproducible point of the run, and releases the
	// clock at the end of its input. The clock is released by itself
	// when the run is stopped. No effect in real time.
	HoldClock bool
}

// Result is what a finished run tells besides its errors.
type Result struct {
	// Module is the name the module was loaded under ("sed1_drv").
	Module string
	// AppStatus is the program's exit status (0 without Exec).
	AppStatus int
	// Stopped is the cause passed to Stop (or the Start context's cause)
	// when it ended the run early: before For had passed or the program
	// had exited. Nil when the run ended by itself.
	Stopped error
}

// Runner runs one module in one kernel, once. Its methods are safe for
// concurrent use.
type Runner struct {
	cfg  Config
	name string      // resolved module name
	app  modules.App // valid if cfg.Exec != nil

	state atomic.Int32
	k     atomic.Pointer[kernel.Kernel]
	done  chan struct{}

	// ctx is the run's context, made by Start from its ctx: done when
	// that is, or when Stop is called. Stop cancels it directly (not
	// through a goroutine), so that a stop requested from inside the
	// kernel (the log path) is seen at the driver's next step.
	ctx     context.Context
	stopMu  sync.Mutex
	cancel  context.CancelCauseFunc // nil before Start
	pending error                   // a Stop cause given before Start

	outMu  sync.Mutex // serialises writes to Log, Stdout and Stderr
	outErr error      // the first write error on Log or Stdout; under outMu

	// live is true while the run's time goes on (Do, StartApp, Unload),
	// with the module loaded or after Unload; written by the driver.
	live atomic.Bool
	// ld is the kernel's module loader (set by Start).
	ld *module.ModLoader

	// unloadMu serialises Unload's callers; the driver never takes it.
	unloadMu sync.Mutex
	// modMu guards mod and gone: where the module is in its unloading.
	// It is never held while the kernel is driven.
	modMu sync.Mutex
	mod   modState
	// gone is completed once Unload's rmmod task has ended, whether the
	// module went or stayed (a kernel completion, so that the end of the
	// run can wait for an rmmod in flight from a task).
	gone *wait.Completion
	// unloadErr is the error of Unload's rmmod, under modMu.
	unloadErr error
	// hold is the clock's hold (Config.HoldClock) until ReleaseClock.
	hold atomic.Pointer[kernel.Hold]
	// closed: the run is over; a Writer writes nothing more. Under outMu.
	closed bool

	appsMu   sync.Mutex
	apps     map[*kernel.Task]func(*kernel.Task, int) // StartApp's running programs
	appsHook sync.Once

	beforeDone atomic.Bool // BeforeUnload has been called

	res Result // set before done is closed
	err error
}

// modState is where the module is in its unloading.
type modState int

const (
	modLoaded    modState = iota // loaded (or loading): rmmod may run
	modUnloading                 // an rmmod runs
	modGone                      // unloaded
)

// New checks cfg and returns a Runner for it. Errors wrap
// ErrUnknownModule, ErrUnknownApp or ErrConfig.
func New(cfg Config) (*Runner, error) {
	name, ok := modules.Resolve(cfg.Module)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownModule, cfg.Module)
	}
	r := &Runner{cfg: cfg, name: name, done: make(chan struct{})}
	if cfg.Exec != nil {
		if len(cfg.Exec) == 0 || cfg.Exec[0] == "" {
			return nil, fmt.Errorf("%w: empty program name", ErrConfig)
		}
		if r.app, ok = modules.LookupApp(path.Base(cfg.Exec[0])); !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownApp, cfg.Exec[0])
		}
	}
	if r.cfg.HZ == 0 {
		r.cfg.HZ = jiffies.DefaultHZ
	}
	if err := r.cfg.HZ.Valid(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.CPUs < 0 || cfg.CPUs > kernel.NRCPUs {
		return nil, fmt.Errorf("%w: %d CPUs (want 1..%d, or 0 for the host's cores)", ErrConfig, cfg.CPUs, kernel.NRCPUs)
	}
	if cfg.For < 0 {
		return nil, fmt.Errorf("%w: negative duration %v", ErrConfig, cfg.For)
	}
	if cfg.TraceBufferRecords < 0 {
		return nil, fmt.Errorf("%w: %d trace buffer records", ErrConfig, cfg.TraceBufferRecords)
	}
	if r.cfg.Seed == 0 {
		r.cfg.Seed = 1
	}
	if r.cfg.ShutdownTimeout <= 0 {
		r.cfg.ShutdownTimeout = 10 * time.Second
	}
	return r, nil
}

// Module returns the resolved name of the module ("sed1_drv" for "sed1").
func (r *Runner) Module() string { return r.name }

// State returns where the run is now.
func (r *Runner) State() State { return State(r.state.Load()) }

// Kernel returns the running kernel, or nil before it booted. In real
// time the kernel may be used from any goroutine. In virtual time it is
// driven by the runner's goroutine: use it only through Do, from
// BeforeUnload, or once Wait has returned (it is then shut down, but its
// log and counters can still be read).
func (r *Runner) Kernel() *kernel.Kernel { return r.k.Load() }

// Done returns a channel closed when the run has ended (Wait would
// return at once).
func (r *Runner) Done() <-chan struct{} { return r.done }

// Stop asks the run to end early: a program (Exec) gets the signal of an
// *Interrupted cause (SIGTERM for any other cause), the module is unloaded
// and the kernel shut down. If the module's init is running, it finishes
// first (insmod is not interruptible). Only the first call's cause is
// kept; nil means ErrStopped. Stop does not wait: call Wait. It may be
// called before Start, from any goroutine, and from the kernel's log
// path. In virtual time the driver sees the stop at its next step: once
// the running tasks have blocked and the next event (a timer, a wake-up)
// has been handled (kernel.Run checks its context between events).
func (r *Runner) Stop(cause error) {
	if cause == nil {
		cause = ErrStopped
	}
	r.stopMu.Lock()
	cancel := r.cancel
	if cancel == nil && r.pending == nil {
		r.pending = cause
	}
	r.stopMu.Unlock()
	if cancel != nil {
		cancel(cause) // only the first cause is kept
	}
}

// Run is Start followed by Wait.
func (r *Runner) Run(ctx context.Context) (Result, error) {
	if err := r.Start(ctx); errors.Is(err, ErrStarted) {
		return Result{Module: r.name}, err
	}
	return r.Wait()
}

// Start boots the kernel and loads the module, and returns once the
// module's init has returned: nil if the module is loaded, else an error
// wrapping ErrBoot or ErrLoad (the kernel is then already shut down, and
// Wait returns the same error). The rest of the run goes on in a goroutine
// of its own until Wait reports its end. When ctx is done, the run is
// stopped with ctx's cause, as by Stop.
func (r *Runner) Start(ctx context.Context) error {
	if !r.state.CompareAndSwap(int32(StateNew), int32(StateBooting)) {
		return ErrStarted
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	r.stopMu.Lock()
	r.ctx, r.cancel = runCtx, cancel
	pending := r.pending
	r.stopMu.Unlock()
	if pending != nil {
		cancel(pending)
	}
	var errs []error
	finish := func() {
		cancel(nil)
		r.outMu.Lock()
		r.closed = true
		r.outMu.Unlock()
		r.err = errors.Join(errs...)
		r.state.Store(int32(StateDone))
		close(r.done)
	}
	r.res.Module = r.name
	cfg := kernel.Config{CPUs: r.cfg.CPUs, HZ: r.cfg.HZ, Virtual: r.cfg.Virtual, Seed: r.cfg.Seed, Log: r.logRecord,
		TraceEvents: r.cfg.TraceEvents, TraceBufferRecords: r.cfg.TraceBufferRecords}
	k, err := kernel.Boot(cfg)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrBoot, err))
		finish()
		return r.err
	}
	r.k.Store(k)
	if r.cfg.OnBoot != nil {
		r.cfg.OnBoot(k)
	}
	ld := module.Loader(k, modules.Registry())
	r.ld = ld
	r.state.Store(int32(StateLoading))
	// A module's init is not interruptible (msleep in it sleeps in
	// TASK_UNINTERRUPTIBLE): a stop during insmod waits for it.
	var loadErr error
	if _, err := k.RunTask(context.Background(), "insmod", func(c *kernel.Ctx) int {
		loadErr = ld.Insmod(c, r.name, r.cfg.Params...)
		return 0
	}); err != nil {
		loadErr = err
	}
	if loadErr != nil {
		r.state.Store(int32(StateUnloaded))
		errs = append(errs, loadError{loadErr})
		errs = append(errs, r.shutdown(k)...)
		finish()
		return r.err
	}
	if r.cfg.HoldClock && k.Virtual() {
		r.hold.Store(k.HoldExternal())
		// A stop (Stop, or ctx from outside) lets the clock go: the
		// program's end and rmmod may need it to move.
		context.AfterFunc(runCtx, r.ReleaseClock)
	}
	r.live.Store(true)
	r.state.Store(int32(StateLoaded))
	go func() {
		errs = append(errs, r.drive(k, ld)...)
		errs = append(errs, r.shutdown(k)...)
		finish()
	}()
	return nil
}

// Wait waits for the run to end and returns its result and its errors
// (several are joined: errors.Is finds each). A run stopped by Stop is not
// an error: Result.Stopped tells. Wait may be called from several
// goroutines; before Start it returns ErrNotStarted.
func (r *Runner) Wait() (Result, error) {
	if r.State() == StateNew {
		return Result{Module: r.name}, ErrNotStarted
	}
	<-r.done
	return r.res, r.err
}

// drive runs the loaded module's time (and the program), then unloads it.
func (r *Runner) drive(k *kernel.Kernel, ld *module.ModLoader) []error {
	var errs []error
	start := k.Now()
	if r.cfg.Exec != nil {
		status, err := r.runApp(k)
		r.res.AppStatus = status
		if err != nil && r.ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrApp, r.app.Name, err))
		}
		if rest := r.cfg.For - time.Duration(k.Now()-start); r.cfg.For > 0 && rest > 0 && r.ctx.Err() == nil {
			errs = append(errs, r.runFor(k, rest)...)
		}
	} else {
		errs = append(errs, r.runFor(k, r.cfg.For)...)
	}
	r.live.Store(false)
	r.ReleaseClock()
	r.stopApps(k)
	if r.ctx.Err() != nil {
		r.res.Stopped = context.Cause(r.ctx)
	}
	r.modMu.Lock()
	mod, gone := r.mod, r.gone
	if mod == modLoaded {
		r.mod = modUnloading
	}
	r.modMu.Unlock()
	switch mod {
	case modGone: // Unload took it out: the kernel ran on without it
		return errs
	case modUnloading:
		// Unload's rmmod is in flight (its exit sleeps, say): the
		// module is not unloaded twice, but the kernel is driven until
		// that rmmod has returned.
		if _, err := k.RunTask(context.Background(), "rmmod", func(c *kernel.Ctx) int {
			gone.WaitFor(c)
			return 0
		}); err != nil {
			errs = append(errs, unloadError{err})
		}
		r.modMu.Lock()
		again := r.mod == modLoaded // Unload's rmmod failed: try once more
		if again {
			r.mod = modUnloading
		}
		r.modMu.Unlock()
		if !again {
			return errs
		}
	}
	r.beforeUnload(k)
	r.state.Store(int32(StateUnloading))
	var rmErr error
	if _, err := k.RunTask(context.Background(), "rmmod", func(c *kernel.Ctx) int {
		rmErr = ld.Rmmod(c, r.name)
		return 0
	}); err != nil {
		rmErr = err
	}
	if rmErr != nil {
		errs = append(errs, unloadError{rmErr})
	}
	r.modMu.Lock()
	r.mod = modGone
	r.modMu.Unlock()
	r.state.Store(int32(StateUnloaded))
	return errs
}

// beforeUnload calls Config.BeforeUnload, once; on the driver.
func (r *Runner) beforeUnload(k *kernel.Kernel) {
	if r.cfg.BeforeUnload == nil || r.beforeDone.Swap(true) {
		return
	}
	k.Log().Flush() // the log so far comes first
	r.cfg.BeforeUnload(k, &writer{r: r, w: r.cfg.Log, fatal: true})
}

// runFor runs the kernel for d (0: no limit) or until Stop.
func (r *Runner) runFor(k *kernel.Kernel, d time.Duration) []error {
	if err := k.Run(r.ctx, d); err != nil && r.ctx.Err() == nil {
		return []error{fmt.Errorf("runner: %w", err)}
	}
	return nil
}

// shutdown shuts k down and flushes its log; it returns the errors of the
// shutdown and any output error.
func (r *Runner) shutdown(k *kernel.Kernel) []error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrShutdown, err))
	}
	k.Log().Flush()
	r.outMu.Lock()
	if r.outErr != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrOutput, r.outErr))
	}
	r.outMu.Unlock()
	return errs
}

// runApp runs the program as a user task until it exits and returns its
// exit status. If the run is stopped first, the program gets the stop's
// signal; if in virtual time it blocks with nothing left to wake it,
// SIGKILL. It is then given a second of kernel time to exit (SIGKILL if it
// does not), and RunTask's error is returned with its status.
func (r *Runner) runApp(k *kernel.Kernel) (int, error) {
	var task atomic.Pointer[kernel.Task]
	stdout := &writer{r: r, w: r.cfg.Stdout, fatal: true}
	stderr := &writer{r: r, w: r.cfg.Stderr}
	code, err := k.RunTask(r.ctx, r.app.Name, func(c *kernel.Ctx) int {
		task.Store(c.Current())
		return r.app.Main(c, r.cfg.Exec, stdout, stderr)
	})
	if err == nil {
		return code, nil
	}
	t := task.Load()
	if t == nil {
		return 1, err
	}
	sig := kernel.SIGKILL
	if r.ctx.Err() != nil {
		sig = r.stopSignal()
	}
	if terminate(k, t, sig) {
		return t.ExitCode(), err
	}
	return 128 + int(kernel.SIGKILL), err
}

// stopSignal is the signal a program gets when the run ends before it
// has exited: the signal of an *Interrupted stop, else SIGTERM.
func (r *Runner) stopSignal() kernel.Signal {
	var in *Interrupted
	if errors.As(context.Cause(r.ctx), &in) {
		return in.Sig
	}
	return kernel.SIGTERM
}

// terminate sends t sig, then SIGKILL if it has not exited a second of
// kernel time later; it reports whether t has exited.
func terminate(k *kernel.Kernel, t *kernel.Task, sig kernel.Signal) bool {
	for _, s := range []kernel.Signal{sig, kernel.SIGKILL} {
		k.SendSignal(t, s)
		if waitExit(k, t) {
			return true
		}
	}
	return false
}

// waitExit waits up to a second of kernel time (virtual time: driving the
// kernel) for t to exit.
func waitExit(k *kernel.Kernel, t *kernel.Task) bool {
	if !k.Virtual() {
		tm := time.NewTimer(time.Second)
		defer tm.Stop()
		select {
		case <-t.Exited():
			return true
		case <-tm.C:
			return false
		}
	}
	for range 100 {
		select {
		case <-t.Exited():
			return true
		default:
		}
		k.Run(context.Background(), 10*time.Millisecond)
	}
	return false
}

// logRecord is the kernel's log sink: it writes rec to Log as one line.
// It is called synchronously from wherever the record is committed.
func (r *Runner) logRecord(rec printk.Record) {
	if r.cfg.Log == nil {
		return
	}
	line := rec.Text
	if !r.cfg.NoTimestamps {
		line = printk.FormatDmesg(rec)
	}
	r.write(r.cfg.Log, []byte(line+"\n"), true, false)
}

// write writes p to w under outMu. When fatal, a write error is kept and
// stops the run; after it nothing more is written to Log or Stdout. With
// untilDone, nothing is written once the run is over.
func (r *Runner) write(w io.Writer, p []byte, fatal, untilDone bool) (int, error) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	if untilDone && r.closed {
		return 0, ErrNotRunning
	}
	if fatal && r.outErr != nil {
		return 0, r.outErr
	}
	n, err := w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil && fatal {
		r.outErr = err
		r.Stop(fmt.Errorf("%w: %w", ErrOutput, err))
	}
	return n, err
}

// writer is the program's view of Stdout or Stderr, or a Writer.
type writer struct {
	r         *Runner
	w         io.Writer
	fatal     bool
	untilDone bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.w == nil {
		return len(p), nil
	}
	return w.r.write(w.w, p, w.fatal, w.untilDone)
}

// loadError is insmod's failure: its text is kmod's line, and it is
// ErrLoad.
type loadError struct{ err error }

func (e loadError) Error() string   { return e.err.Error() }
func (e loadError) Unwrap() []error { return []error{ErrLoad, e.err} }

// unloadError is rmmod's failure: its text is kmod's line, and it is
// ErrUnload.
type unloadError struct{ err error }

func (e unloadError) Error() string   { return e.err.Error() }
func (e unloadError) Unwrap() []error { return []error{ErrUnload, e.err} }
