package kernel

import (
	"context"
	"sort"
	"sync"
)

// External operations: things a kernel waits for or hears from outside it —
// a host process run by call_usermodehelper, a line typed at a console.
// Their goroutines are not the kernel's; in real time they may call the
// kernel's thread-safe entry points (wakeups, completions, signals)
// directly, but a virtual kernel is touched only by the goroutine holding
// its run token. Hold and Inject carry such calls to it.

// Hold is an operation outside the kernel whose end the kernel waits for
// (see Kernel.HoldExternal and Kernel.HoldExternalAt).
type Hold struct {
	k    *Kernel
	once sync.Once

	// HoldExternalAt (virtual time): when the hold begins, and what to
	// call then. Under k.extMu: started once it has begun; pending while
	// it waits in k.holdsAt.
	at      int64
	begun   func()
	started bool
	pending bool
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
	return &Hold{k: k, started: true}
}

// HoldExternalAt is HoldExternal from the moment the clock reaches at (ns
// since boot, as Now): a breakpoint from which an operation outside the
// kernel — a console's next command, say — looks at it or acts on it.
//
// In virtual time the clock does not jump past at, whatever the next event
// is; everything due at at runs (timers, the tasks they wake), then the
// hold begins: begun (if non-nil) is called on the driver's goroutine, and
// the clock waits for the hold's Release as for HoldExternal's. A hold
// released before it began never begins (begun is not called). If at has
// passed already, it begins at the driver's next step. In real time the
// hold begins at once: begun is called on the calling goroutine, and the
// hold only documents the wait.
func (k *Kernel) HoldExternalAt(at int64, begun func()) *Hold {
	h := &Hold{k: k, at: at, begun: begun}
	if !k.virtual {
		h.started = true
		if begun != nil {
			begun()
		}
		return h
	}
	k.extMu.Lock()
	h.pending = true
	i := sort.Search(len(k.holdsAt), func(i int) bool { return k.holdsAt[i].at > at })
	k.holdsAt = append(k.holdsAt, nil)
	copy(k.holdsAt[i+1:], k.holdsAt[i:])
	k.holdsAt[i] = h
	k.nextHoldAt.Store(k.holdsAt[0].at)
	k.extMu.Unlock()
	return h
}

// beginDueHolds begins, on the driver, the holds of HoldExternalAt whose
// time has come, in the order of their times (and of their calls).
func (k *Kernel) beginDueHolds() {
	if k.nextHoldAt.Load() > k.Now() {
		return
	}
	now := k.Now()
	var due []*Hold
	k.extMu.Lock()
	for len(k.holdsAt) > 0 && k.holdsAt[0].at <= now {
		h := k.holdsAt[0]
		k.holdsAt[0] = nil
		k.holdsAt = k.holdsAt[1:]
		h.pending, h.started = false, true
		k.holds++
		due = append(due, h)
	}
	k.updateNextHoldAtLocked()
	k.extMu.Unlock()
	for _, h := range due {
		if h.begun != nil {
			h.begun()
		}
	}
}

// updateNextHoldAtLocked publishes the time of the first pending
// HoldExternalAt (NoEvent if none), which the driver reads without the lock.
func (k *Kernel) updateNextHoldAtLocked() {
	if len(k.holdsAt) == 0 {
		k.nextHoldAt.Store(NoEvent)
		return
	}
	k.nextHoldAt.Store(k.holdsAt[0].at)
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
		k.extMu.Lock()
		started := h.started
		if h.pending { // a HoldExternalAt that has not begun: it never will
			h.pending = false
			for i, p := range k.holdsAt {
				if p == h {
					k.holdsAt = append(k.holdsAt[:i], k.holdsAt[i+1:]...)
					break
				}
			}
			k.updateNextHoldAtLocked()
		}
		k.extMu.Unlock()
		k.ext <- func() {
			if fn != nil {
				fn()
			}
			if started {
				k.extMu.Lock()
				k.holds--
				k.extMu.Unlock()
			}
		}
	})
}

// Inject runs fn in the kernel as soon as it can, without holding the
// clock: in real time at once, on the calling goroutine; in virtual time on
// the driver's goroutine between two steps of the kernel (or when it is
// next driven, if nobody drives it now), one call a step: the tasks that
// one call woke run before the next call. fn may wake tasks, spawn them,
// complete completions and send signals; it must not sleep. A console
// injects the commands it reads this way.
func (k *Kernel) Inject(fn func()) {
	if !k.virtual {
		fn()
		return
	}
	k.ext <- fn
}

// runExternal runs, on the driver, the next call that an external
// operation sent to a virtual kernel. With wait set and a hold open it
// first waits for one (or for ctx). It reports whether it ran one.
//
// It runs one call per step: the driver runs what the call made runnable
// before it takes the next one, so that a call sees the effects of the
// ones before it however fast they were sent (a console's `kill` then
// `ps` shows the signalled task after it ran).
func (k *Kernel) runExternal(ctx context.Context, wait bool) (bool, error) {
	k.beginDueHolds()
	select {
	case fn := <-k.ext:
		fn()
		return true, nil
	default:
	}
	if !wait || !k.holding() {
		return false, nil
	}
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case fn := <-k.ext:
		fn()
		return true, nil
	case <-done:
		return false, context.Cause(ctx)
	case <-k.down:
		return false, nil
	}
}

func (k *Kernel) holding() bool {
	k.extMu.Lock()
	defer k.extMu.Unlock()
	return k.holds > 0
}
