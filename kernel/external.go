package kernel

import (
	"context"
	"sync"
)

// External operations: things a kernel waits for or hears from outside it —
// a host process run by call_usermodehelper, a line typed at a console.
// Their goroutines are not the kernel's; in real time they may call the
// kernel's thread-safe entry points (wakeups, completions, signals)
// directly, but a virtual kernel is touched only by the goroutine holding
// its run token. Hold and Inject carry such calls to it.

// Hold is an operation outside the kernel whose end the kernel waits for
// (see Kernel.HoldExternal).
type Hold struct {
	k    *Kernel
	once sync.Once
}

// HoldExternal marks the start of an operation outside the kernel whose end
// the kernel waits for: a host process started by call_usermodehelper, say.
// In virtual time the clock does not move while a hold is open: once
// nothing is runnable the driver waits for the hold's Release instead of
// moving on to the next event, so the operation takes no virtual time and
// the run stays reproducible (as long as the operation's result is). In
// real time a hold only documents the wait.
func (k *Kernel) HoldExternal() *Hold {
	if k.virtual {
		k.extMu.Lock()
		k.holds++
		k.extMu.Unlock()
	}
	return &Hold{k: k}
}

// Release ends the operation and runs fn in the kernel: in real time at
// once, on the calling goroutine; in virtual time on the driver's
// goroutine, before the clock moves again. fn may wake tasks, complete
// completions and send signals; it must not sleep. fn may be nil. Only the
// first Release of a hold counts.
func (h *Hold) Release(fn func()) {
	h.once.Do(func() {
		k := h.k
		if !k.virtual {
			if fn != nil {
				fn()
			}
			return
		}
		k.ext <- func() {
			if fn != nil {
				fn()
			}
			k.extMu.Lock()
			k.holds--
			k.extMu.Unlock()
		}
	})
}

// Inject runs fn in the kernel as soon as it can, without holding the
// clock: in real time at once, on the calling goroutine; in virtual time on
// the driver's goroutine between two steps of the kernel (or when it is
// next driven, if nobody drives it now). fn may wake tasks, spawn them,
// complete completions and send signals; it must not sleep. A console
// injects the commands it reads this way.
func (k *Kernel) Inject(fn func()) {
	if !k.virtual {
		fn()
		return
	}
	k.ext <- fn
}

// runExternal runs, on the driver, the calls that external operations sent
// to a virtual kernel. With wait set and a hold open it first waits for one
// (or for ctx). It reports whether it ran anything.
func (k *Kernel) runExternal(ctx context.Context, wait bool) (bool, error) {
	ran := false
	for {
		select {
		case fn := <-k.ext:
			fn()
			ran = true
			continue
		default:
		}
		if ran || !wait || !k.holding() {
			return ran, nil
		}
		var done <-chan struct{}
		if ctx != nil {
			done = ctx.Done()
		}
		select {
		case fn := <-k.ext:
			fn()
			ran = true
		case <-done:
			return ran, context.Cause(ctx)
		case <-k.down:
			return ran, nil
		}
	}
}

func (k *Kernel) holding() bool {
	k.extMu.Lock()
	defer k.extMu.Unlock()
	return k.holds > 0
}
