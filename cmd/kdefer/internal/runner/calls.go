package runner

import (
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules"
	"github.com/kdefer/kdefer/wait"
)

// Calls into a running module's kernel from outside it: what a console
// (package console) is built on. There is no kernel counterpart: this is
// the shell the user types at while the module is loaded.

// Do runs fn with the kernel while the module's time runs (after Start
// has returned nil, until the module's time is up or the run is stopped)
// and returns once fn has returned. In real time fn runs at once on the
// calling goroutine, beside the kernel's own. In virtual time it runs on
// the goroutine that drives the kernel, between two steps (see
// kernel.Kernel.Inject), so it may use the kernel freely: wake, signal or
// spawn tasks, read every view. Calls from one goroutine run in order, and
// each one after the tasks that the one before it woke have run.
//
// fn must not sleep. It returns ErrNotRunning, without running fn, if the
// module's time has not begun or has ended (also when it ends while fn
// waits for its turn). Do must not be called from the kernel itself (a
// task, or a function given to Do or BeforeUnload): in virtual time that
// would wait for itself.
func (r *Runner) Do(fn func(k *kernel.Kernel)) error {
	k := r.Kernel()
	if k == nil || !r.live.Load() {
		return ErrNotRunning
	}
	ran := make(chan bool, 1)
	k.Inject(func() {
		ok := r.live.Load() && r.ctx.Err() == nil
		if ok {
			fn(k)
		}
		ran <- ok
	})
	select {
	case ok := <-ran:
		if !ok {
			return ErrNotRunning
		}
		return nil
	case <-r.done:
		return ErrNotRunning
	}
}

// ReleaseClock lets a clock held by Config.HoldClock move on: from the
// driver's next step on, the kernel runs by itself again. Only the first
// call counts; without HoldClock, or in real time, it does nothing. The
// runner releases the clock itself when the run is stopped or the module's
// time ends.
func (r *Runner) ReleaseClock() {
	if h := r.hold.Swap(nil); h != nil {
		h.Release(nil)
	}
}

// Advance lets d of kernel time pass and returns once it has, or with
// ErrNotRunning once the module's time is over (d reaches past it, or the
// run is stopped meanwhile). It is a console's `sleep`.
//
// In virtual time the clock moves on by itself until it reaches now+d and
// everything due by then has run; a clock held by Config.HoldClock is then
// held again there (the functions given to Do run at that instant), one
// that is not held goes on. In real time Advance just waits d. Call it
// from outside the kernel, as Do; d must not be negative (ErrConfig).
func (r *Runner) Advance(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%w: negative duration %v", ErrConfig, d)
	}
	k := r.Kernel()
	if k == nil || !r.live.Load() {
		return ErrNotRunning
	}
	if !k.Virtual() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			if !r.live.Load() {
				return ErrNotRunning
			}
			return nil
		case <-r.done:
			return ErrNotRunning
		}
	}
	reached := make(chan struct{})
	if err := r.Do(func(k *kernel.Kernel) {
		old := r.hold.Load()
		var h *kernel.Hold
		h = k.HoldExternalAt(k.Now()+int64(d), func() {
			close(reached)
			if old == nil {
				h.Release(nil) // the clock was not held: it goes on
			}
		})
		if old != nil && !r.hold.CompareAndSwap(old, h) {
			h.Release(nil) // ReleaseClock came first: nothing to hold
		} else if old != nil {
			old.Release(nil)
		}
	}); err != nil {
		return err
	}
	select {
	case <-reached:
		return nil
	case <-r.done:
		return ErrNotRunning
	}
}

// Unload unloads the module now, as rmmod(8) typed at a shell does, and
// keeps the kernel running without it: the run goes on until its time is
// up (Config.For, or the program's exit), Stop, or a signal, as a real
// kernel outlives the modules it unloads — and so do what a module left
// behind, such as a kernel thread it never stopped (kt1's race). The end
// of the run then does not unload the module again. It is a console's
// rmmod.
//
// Config.BeforeUnload runs first, then the module's exit function in an
// rmmod task; Unload returns once that task has returned. It fails with
// an error wrapping ErrUnload whose text is kmod's line when rmmod fails
// ("rmmod: ERROR: Module sed1_drv is in use": the module stays loaded and
// the run goes on; "… is not currently loaded" after an earlier Unload),
// and with ErrNotRunning outside the run's time. In virtual time a clock
// held by Config.HoldClock moves while the exit function runs (it may
// sleep, or wait for a thread) and is held again at the instant rmmod
// returns. Call it from outside the kernel, as Do.
func (r *Runner) Unload() error {
	k := r.Kernel()
	if k == nil || !r.live.Load() {
		return ErrNotRunning
	}
	r.unloadMu.Lock()
	defer r.unloadMu.Unlock()
	var (
		notLoaded bool
		done      = make(chan struct{})
	)
	if err := r.Do(func(k *kernel.Kernel) {
		r.modMu.Lock()
		if r.mod != modLoaded {
			r.modMu.Unlock()
			notLoaded = true
			return
		}
		r.mod = modUnloading
		gone := new(wait.Completion)
		r.gone = gone
		r.modMu.Unlock()
		r.beforeUnload(k)
		r.state.Store(int32(StateUnloading))
		old := r.hold.Load()
		_, err := k.Spawn("rmmod", func(c *kernel.Ctx) int {
			err := r.ld.Rmmod(c, r.name)
			r.modMu.Lock()
			if err != nil {
				r.mod, r.unloadErr = modLoaded, unloadError{err}
				r.state.Store(int32(StateLoaded))
			} else {
				r.mod, r.unloadErr = modGone, nil
				r.state.Store(int32(StateUnloaded))
			}
			r.modMu.Unlock()
			if old != nil { // hold the clock again, here
				h := k.HoldExternal()
				if !r.hold.CompareAndSwap(old, h) {
					h.Release(nil) // ReleaseClock came meanwhile
				}
			}
			gone.CompleteAll()
			close(done)
			return 0
		})
		if err != nil { // the kernel is going down
			r.modMu.Lock()
			r.mod, r.unloadErr = modLoaded, fmt.Errorf("%w: %w", ErrNotRunning, err)
			r.modMu.Unlock()
			r.state.Store(int32(StateLoaded))
			gone.CompleteAll()
			close(done)
			return
		}
		if old != nil {
			old.Release(nil) // the exit function may need the clock
		}
	}); err != nil {
		return err
	}
	if notLoaded {
		return unloadError{&module.Error{Op: "rmmod", Module: r.name, Err: kernel.ENOENT}}
	}
	select {
	case <-done:
	case <-r.done:
		return ErrNotRunning
	}
	r.modMu.Lock()
	defer r.modMu.Unlock()
	return r.unloadErr
}

// Writer returns a writer to w for output that goes between the log's
// lines (a console's replies): each Write is serialised with the log
// stream and the programs' output, so that it never splits a line of
// theirs. A write error stops the run as one on Log does (ErrOutput).
// Once the run has ended, Write writes nothing and returns ErrNotRunning.
func (r *Runner) Writer(w io.Writer) io.Writer {
	return &writer{r: r, w: w, fatal: true, untilDone: true}
}

// StartApp starts the demo's program argv (argv[0] is found by its base
// name, as Config.Exec's) as a new user task and returns the task without
// waiting for it; its standard output and error are Config.Stdout and
// Config.Stderr. When it exits, exited (if non-nil) is called with the task
// and its exit status, on the task's goroutine (it must not sleep). A
// program still running when the module's time ends gets the stop's signal
// (SIGTERM if the time was up), then SIGKILL a second of kernel time later,
// before the module is unloaded, as Exec's program does.
//
// In virtual time call it from a function given to Do. It fails with
// ErrNotRunning outside the module's time, ErrUnknownApp for a program
// that is not built in, and ErrConfig for an empty argv.
func (r *Runner) StartApp(argv []string, exited func(t *kernel.Task, status int)) (*kernel.Task, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("%w: empty program name", ErrConfig)
	}
	app, ok := modules.LookupApp(path.Base(argv[0]))
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownApp, argv[0])
	}
	k := r.Kernel()
	if k == nil || !r.live.Load() {
		return nil, ErrNotRunning
	}
	r.appsHook.Do(func() { k.OnTaskExit(r.appExited) })
	argv = slices.Clone(argv)
	stdout := &writer{r: r, w: r.cfg.Stdout, fatal: true}
	stderr := &writer{r: r, w: r.cfg.Stderr}
	t, err := k.CreateTask(kernel.TaskOpts{Comm: app.Name, CPU: -1}, func(c *kernel.Ctx) int {
		return app.Main(c, argv, stdout, stderr)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	r.appsMu.Lock()
	if r.apps == nil {
		r.apps = make(map[*kernel.Task]func(*kernel.Task, int))
	}
	r.apps[t] = exited
	r.appsMu.Unlock()
	k.WakeUpProcess(t)
	return t, nil
}

// appExited is the kernel's task-exit hook: it reports the end of a
// program that StartApp started.
func (r *Runner) appExited(t *kernel.Task) {
	r.appsMu.Lock()
	exited, ok := r.apps[t]
	delete(r.apps, t)
	r.appsMu.Unlock()
	if ok && exited != nil {
		exited(t, t.ExitCode())
	}
}

// stopApps ends the programs StartApp started that still run, in pid
// order, as runApp ends Exec's program.
func (r *Runner) stopApps(k *kernel.Kernel) {
	r.appsMu.Lock()
	ts := make([]*kernel.Task, 0, len(r.apps))
	for t := range r.apps {
		ts = append(ts, t)
	}
	r.appsMu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].PID() < ts[j].PID() })
	for _, t := range ts {
		if !t.HasExited() {
			terminate(k, t, r.stopSignal())
		}
	}
}
