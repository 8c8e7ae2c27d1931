// Package umh is kdefer's user-mode helper (kernel/umh.c,
// include/linux/umh.h): call_usermodehelper runs a program of the host as
// a real process, started from kernel context, and reports the kernel's
// return values.
//
// # How a helper runs
//
// The kernel queues a work item on system_unbound_wq; the kworker that runs
// it forks the helper (a child of kthreadd for UMH_NO_WAIT and
// UMH_WAIT_EXEC, of the kworker for UMH_WAIT_PROC), which execs the
// program. kdefer has no workqueues in this package's reach, so the work
// item goes to a kthread worker of its own, "khelper" (the name of the
// kernel's helper workqueue before v4.3), created on first use. Its work
// function starts the host process with os/exec — the exec's result is
// known when Start returns — and a goroutine outside the kernel waits for
// the process to end and reaps it. The caller waits in the kernel, on a
// completion: TASK_UNINTERRUPTIBLE, or TASK_KILLABLE with Killable. The
// reaping goroutine reports the end through kernel.HoldExternal and
// Hold.Release, so in virtual time a UMH_WAIT_PROC helper takes no virtual
// time: the clock waits for it.
//
// The helper gets exactly argv and envp: argv[0] is the caller's, the
// environment holds envp and nothing of the host's (the kernel's helpers
// have no other), the working directory is "/" (init's), stdin, stdout and
// stderr are /dev/null, and it runs in a session of its own, so that a
// terminal's Ctrl-C does not reach it.
//
// # Return values
//
//   - UMH_NO_WAIT: 0 once the work is queued; whether the program could be
//     run is not reported (the kernel's "you get no useful error back").
//   - UMH_WAIT_EXEC: 0 once the program is executing, or the exec's
//     negative errno: -ENOENT for a missing program, -EACCES, -ENOEXEC …
//   - UMH_WAIT_PROC: the process's wait status as wait4 reports it (the
//     kernel's kernel_wait): 0 for exit 0, the exit code shifted left 8
//     for other exits (256 for exit 1), the signal number for a process
//     killed by a signal (9 for SIGKILL, plus 0x80 with a core dump); or
//     the exec's negative errno.
//   - With Killable, a fatal signal to the waiting task ends its wait with
//     -ERESTARTSYS (-512); the helper runs on and is reaped when it ends,
//     as in the kernel.
//   - An empty path: 0 at once, nothing run (the kernel's
//     CONFIG_STATIC_USERMODEHELPER_PATH="" no-op).
//   - -EBUSY once the kernel is shutting down (usermodehelper_disabled),
//     also for a caller whose wait the shutdown ended.
//
// # Contexts
//
// UMH_NO_WAIT never sleeps and may be called from any context, an interrupt
// handler included. The waiting modes sleep: called in atomic context they
// print the kernel's might_sleep report; kdefer then starts the helper
// without waiting (as UMH_NO_WAIT, so no work is lost) and returns -EAGAIN,
// where the kernel would go on to schedule while atomic.
//
// # Deliberate differences from Linux
//
//   - The helper is a host process, not a kdefer task: ps does not list it,
//     and it is the Go process's child rather than kthreadd's.
//   - The helper's umask is the Go process's (the kernel resets it to
//     0022), and its capabilities are the host user's.
//   - os/exec drops duplicate envp entries (the last one wins).
//   - Shutting the kernel down kills (SIGKILL) and reaps the helpers still
//     running: none outlives its kernel.
//   - UMH_FREEZABLE is accepted and has no effect (kdefer's freezer does
//     not freeze user tasks).
package umh

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
	"github.com/kdefer/kdefer/wait"
)

// Wait modes and flags of call_usermodehelper (include/linux/umh.h).
const (
	NoWait    = 0 // UMH_NO_WAIT: don't wait at all
	WaitExec  = 1 // UMH_WAIT_EXEC: wait for the exec, but not the process
	WaitProc  = 2 // UMH_WAIT_PROC: wait for the process to complete
	Killable  = 4 // UMH_KILLABLE: wait for EXEC/PROC killable
	Freezable = 8 // UMH_FREEZABLE: wait for EXEC/PROC freezable (v6.1+)
)

// subprocessInfo is struct subprocess_info: one call's request, queued to
// the khelper worker.
type subprocessInfo struct {
	work       kthread.Work
	path       string
	argv, envp []string
	wait       int
	retval     int // guarded by done: written before it is completed
	// complete is sub_info->complete: the caller's completion, or nil
	// once nobody waits (UMH_NO_WAIT, a killed UMH_KILLABLE caller).
	// Whoever swaps it to nil first owns the end.
	complete atomic.Pointer[wait.Completion]
	done     wait.Completion
	sys      *system
}

// system is one kernel's helper state: the khelper worker and the host
// processes not yet reaped.
type system struct {
	k      *kernel.Kernel
	mu     sync.Mutex
	worker *kthread.Worker
	procs  map[*os.Process]struct{}
	zero   chan struct{} // closed when procs becomes empty
}

var sysKey kernel.LocalKey

func sysOf(k *kernel.Kernel) *system { return k.Local(&sysKey, newSystem).(*system) }

func newSystem(k *kernel.Kernel) any {
	z := make(chan struct{})
	close(z)
	return &system{k: k, procs: make(map[*os.Process]struct{}), zero: z}
}

// khelper returns the worker, creating its thread on first use. The thread
// is created with kernel.CreateTask, which never sleeps, so that
// UMH_NO_WAIT works from atomic context too.
func (s *system) khelper() (*kthread.Worker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.worker != nil {
		return s.worker, nil
	}
	w := new(kthread.Worker)
	kthread.InitWorker(w)
	t, err := s.k.CreateTask(kernel.TaskOpts{Comm: "khelper", Kthread: true, CPU: -1},
		func(c *kernel.Ctx) int { return kthread.WorkerFn(c, w) })
	if err != nil {
		return nil, err
	}
	s.k.WakeUpProcess(t)
	s.worker = w
	return w, nil
}

// CallUsermodehelper is call_usermodehelper(path, argv, envp, wait): it runs
// the host program path with exactly argv and envp, started from the
// khelper kernel thread, and waits as wait says: NoWait, WaitExec or
// WaitProc, optionally or'ed with Killable (and Freezable). See the
// package documentation for the return values and the contexts it may be
// called from.
func CallUsermodehelper(c *kernel.Ctx, path string, argv, envp []string, wait int) int {
	// As in the kernel, only UMH_NO_WAIT itself does not wait:
	// UMH_NO_WAIT|UMH_KILLABLE waits for the exec.
	canWait := true
	if wait != NoWait && !kernel.MightSleep(c) {
		canWait = false // reported; start it without waiting
	}
	if path == "" {
		return 0
	}
	s := sysOf(c.Kernel())
	if s.k.ShuttingDown() {
		return -int(kernel.EBUSY)
	}
	w, err := s.khelper()
	if err != nil {
		return -int(kernel.EBUSY)
	}
	info := &subprocessInfo{path: path, argv: argv, envp: envp, wait: wait, sys: s}
	if !canWait {
		info.wait = NoWait
	}
	kthread.InitWork(&info.work, execWork)
	// Set the completion only if there is a waiter, so that the helper's
	// end knows nobody is left to tell.
	if info.wait != NoWait {
		info.complete.Store(&info.done)
	}
	kthread.QueueWork(c, w, &info.work)
	if !canWait {
		return -int(kernel.EAGAIN)
	}
	if info.wait == NoWait {
		return 0
	}
	if wait&Killable != 0 {
		if ret := info.done.WaitForKillable(c); ret != 0 {
			// A fatal signal: if the helper has not finished, leave it
			// to finish alone.
			if info.complete.Swap(nil) != nil {
				return ret
			}
			// It is completing right now: wait (briefly) for it.
			info.done.WaitFor(c)
		}
	} else {
		info.done.WaitFor(c)
	}
	// Whoever swaps the completion out owns the end: the helper's side
	// wrote retval before it did; if it has not, the wait ended because
	// the kernel is going down.
	if info.complete.Swap(nil) != nil {
		return -int(kernel.EBUSY)
	}
	return info.retval
}

// umhComplete is umh_complete(): tell the waiter, if one is left.
func umhComplete(info *subprocessInfo) {
	if comp := info.complete.Swap(nil); comp != nil {
		comp.Complete()
	}
}

// execWork is call_usermodehelper_exec_work(), run by khelper: it starts
// the helper process. For WaitProc the waiter is told when the process has
// ended and been reaped; otherwise once the exec is done (or failed).
func execWork(c *kernel.Ctx, work *kthread.Work) {
	info := kthread.FromWork[subprocessInfo](work, unsafe.Offsetof(subprocessInfo{}.work))
	s := info.sys
	cmd := &exec.Cmd{
		Path:        info.path,
		Args:        info.argv,
		Env:         append([]string{}, info.envp...), // non-nil: nothing inherited
		Dir:         "/",
		SysProcAttr: sysProcAttr(),
	}
	if err := cmd.Start(); err != nil {
		info.retval = errnoOf(err)
		umhComplete(info)
		return
	}
	s.track(cmd.Process)
	if info.wait&WaitProc == 0 {
		info.retval = 0 // the exec succeeded
		umhComplete(info)
		go func() {
			_ = cmd.Wait()
			s.untrack(cmd.Process)
		}()
		return
	}
	hold := s.k.HoldExternal()
	go func() {
		_ = cmd.Wait() // a non-zero status is not an error here
		status := waitStatus(cmd.ProcessState)
		s.untrack(cmd.Process)
		hold.Release(func() {
			// kernel_wait stores a non-zero status only.
			if status != 0 {
				info.retval = status
			}
			umhComplete(info)
		})
	}()
}

// errnoOf is the negative errno of a failed exec.
func errnoOf(err error) int {
	var en syscall.Errno
	if errors.As(err, &en) {
		return -int(en)
	}
	return -int(kernel.ENOENT)
}

// track records a started helper process; while any runs, a watcher kills
// them all if the kernel shuts down.
func (s *system) track(p *os.Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs[p] = struct{}{}
	if len(s.procs) == 1 {
		s.zero = make(chan struct{})
		go s.watch(s.zero)
	}
}

// untrack forgets a helper process that has been reaped.
func (s *system) untrack(p *os.Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.procs, p)
	if len(s.procs) == 0 {
		close(s.zero)
	}
}

// watch kills every running helper when the kernel shuts down; it ends when
// no helper runs any more.
func (s *system) watch(zero chan struct{}) {
	select {
	case <-zero:
	case <-s.k.Done():
		s.mu.Lock()
		for p := range s.procs {
			_ = p.Kill()
		}
		s.mu.Unlock()
	}
}

// WaitReaped waits until every helper process of k started so far has ended
// and been reaped, or until ctx is done (then it returns ctx's cause). It
// is for goroutines outside the kernel — a test, a command-line tool before
// it exits — and must not be called from a kernel context, which must wait
// in the kernel.
func WaitReaped(ctx context.Context, k *kernel.Kernel) error {
	s := sysOf(k)
	for {
		s.mu.Lock()
		n, zero := len(s.procs), s.zero
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-zero:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// Running returns the number of k's helper processes that have been
// started and not yet reaped.
func Running(k *kernel.Kernel) int {
	s := sysOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.procs)
}
