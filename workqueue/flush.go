package workqueue

import (
	"fmt"
	"hash/fnv"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/wait"
)

var delayedTimerOff = unsafe.Offsetof(DelayedWork{}.timer)

func unsafePointer(w *Work) unsafe.Pointer { return unsafe.Pointer(w) }

// wqBarrier is struct wq_barrier: a work item queued right behind the one
// being flushed, which completes when it runs.
type wqBarrier struct {
	work Work
	done wait.Completion
	task *kernel.Task // purely informational: the flusher (BAR(pid))
}

// barrierFunc is wq_barrier_func().
func barrierFunc(c *kernel.Ctx, w *Work) {
	b := (*wqBarrier)(unsafe.Pointer(w))
	b.done.Complete()
	kernel.WakeUpVar(c, &b.done) // a cancel of a BH item busy-waits on it
}

// insertBarrier is insert_wq_barrier() (pool.mu held): b goes right after
// target, linked to it, or — when wk is executing target — to the front of
// wk's scheduled list. It inherits target's flush color and does not count
// in nr_active.
func insertBarrier(c *kernel.Ctx, p *pwq, b *wqBarrier, target *Work, wk *worker) {
	Init(&b.work, barrierFunc)
	b.work.isBarrier = true
	b.work.data.Store(dataPending)
	b.task = c.Current()
	qf := uint16(qInactive)
	var color int
	var l *wlist
	var at *Work
	if wk != nil {
		l, at = &wk.scheduled, wk.scheduled.head
		color = int(wk.currentQF&qColorMask) >> qColorSh
	} else {
		l, at = target.list, target.next
		qf |= target.qflags & qLinked
		color = target.color()
		target.qflags |= qLinked
	}
	p.nrInFlight[color]++
	qf |= colorFlags(color)
	insertWork(p, &b.work, l, at, qf)
}

// startFlushWork is start_flush_work(): find where w is queued or running
// and put a barrier behind it. It reports false if w is idle — or if
// waiting would deadlock, which it reports as lockdep does.
func startFlushWork(c *kernel.Ctx, w *Work, b *wqBarrier, fromCancel bool) bool {
	s := sysOf(c.Kernel())
	cur := currentWorker(c)
	for {
		pool := s.workPool(w)
		if pool == nil {
			return false
		}
		pool.lock()
		var wk *worker
		var p *pwq
		if queued := queuedOn(w, pool); queued && w.list != nil {
			p = w.pwq
		} else if !queued && w.data.Load()&dataQueued != 0 {
			pool.mu.Unlock()
			return false // queued elsewhere meanwhile: already gone
		} else {
			// Idle, running, or being queued by queueFast right now
			// (not on a list yet): as in the kernel when the flush
			// comes before the queueing's insert_work, only a running
			// instance is waited for.
			wk = pool.findWorkerExecuting(w)
			if wk == nil {
				pool.mu.Unlock()
				return false
			}
			p = wk.currentPwq
		}
		wq := p.wq
		if warn := flushDependency(c, wq, w, fromCancel); warn != nil {
			pool.mu.Unlock()
			warn()
			continue // look again (the loop takes the lock)
		}
		// The deadlocks lockdep reports here (touch_work_lockdep_map and,
		// for single-threaded or rescuer-equipped workqueues, the wq
		// map): the flusher is the item itself, or an item of the same
		// workqueue that the flushed one has to wait for.
		if cur != nil && cur.currentWork == w && cur.currentFnID == w.fnID {
			pool.mu.Unlock()
			lockdepRecursive(c, workLockName(w), cur, "__flush_work")
			return false
		}
		if fromCancel || cur == nil || cur.currentPwq == nil || cur.currentPwq.wq != wq ||
			(wq.savedMaxActive != 1 && wq.rescuer == nil) || s.lockdepReported(wq.lockName) {
			stuck := !fromCancel && cur != nil && cur.currentPwq == p && wk == nil && wq.savedMaxActive == 1
			if stuck {
				// One item at a time, and the flushed one waits behind
				// the flusher: the kernel would wait forever.
				pool.mu.Unlock()
				kernel.Printk(c, printk.LevelErr, "workqueue: %s/%d would wait forever for %s queued behind it on %s (max_active 1): not waiting\n",
					c.Current().Comm(), c.Current().PID(), funcName(w.fn), wq.name)
				return false
			}
			insertBarrier(c, p, b, w, wk)
			pool.mu.Unlock()
			return true
		}
		pool.mu.Unlock()
		lockdepRecursive(c, wq.lockName, cur, "__flush_work")
		// Look again, now that the report is out.
	}
}

// flushWork is __flush_work().
func flushWork(c *kernel.Ctx, w *Work, fromCancel bool) bool {
	if kernel.WarnOn(c, w.fn == nil) {
		return false
	}
	b := &wqBarrier{}
	if !startFlushWork(c, w, b, fromCancel) {
		return false
	}
	if fromCancel && w.data.Load()&dataBH != 0 {
		// A BH item ran in softirq context: busy-wait for it.
		kernel.WaitVarEvent(c, &b.done, b.done.Done)
		return true
	}
	b.done.WaitFor(c)
	return true
}

// FlushWork is flush_work(w): wait until the last queueing of w has
// finished running. It returns true if it waited, false if w was idle
// (also if it was never queued). A queueing that happens after the call
// is not waited for. It may sleep (might_sleep). Flushing an item from its
// own function, or from an item of the same single-threaded workqueue
// queued before it, would deadlock: kdefer prints lockdep's "possible
// recursive locking detected" report and returns false without waiting.
func FlushWork(c *kernel.Ctx, w *Work) bool {
	kernel.MightSleep(c)
	return flushWork(c, w, false)
}

// FlushDelayedWork is flush_delayed_work(dw): if dw's timer was pending,
// queue it now; then FlushWork.
func FlushDelayedWork(c *kernel.Ctx, dw *DelayedWork) bool {
	flags := kernel.LocalIRQSave(c)
	if timer.DeleteSync(c, &dw.timer) == 1 {
		dw.wq.unregisterDelayed(c, dw)
		dw.wq.queueWork(c, dw.cpu, &dw.Work)
	}
	kernel.LocalIRQRestore(c, flags)
	return FlushWork(c, &dw.Work)
}

// FlushRCUWork is flush_rcu_work(rw).
func FlushRCUWork(c *kernel.Ctx, rw *RCUWork) bool {
	if Pending(&rw.Work) {
		FlushWork(c, &rw.Work)
		return true
	}
	return FlushWork(c, &rw.Work)
}

// flushDependency is check_flush_dependency(): an item of a WQ_MEM_RECLAIM
// workqueue must not wait for one that has no rescuer. It returns the
// warning to print (once per kernel) once the caller's locks are dropped,
// or nil.
func flushDependency(c *kernel.Ctx, target *Workqueue, w *Work, fromCancel bool) func() {
	if fromCancel || target.has(MemReclaim) {
		return nil
	}
	cur := currentWorker(c)
	if cur == nil || cur.currentPwq == nil || cur.warnedFlushDep {
		return nil
	}
	if Flags(cur.currentPwq.wq.flags.Load())&(MemReclaim|flagLegacy) != MemReclaim {
		return nil
	}
	var tf Func
	if w != nil {
		tf = w.fn
	}
	from, fromFn := cur.currentPwq.wq.name, cur.currentFn
	return func() {
		cur.warnedFlushDep = true
		warnFlushDependency(c, from, funcName(fromFn), target.name, funcName(tf))
	}
}

// warnFlushDependency is the WARN_ONCE of check_flush_dependency().
func warnFlushDependency(c *kernel.Ctx, from, fromFn, target, targetFn string) {
	kernel.WarnOnce(c, true, "workqueue: WQ_MEM_RECLAIM %s:%s is flushing !WQ_MEM_RECLAIM %s:%s",
		from, fromFn, target, targetFn)
}

// flusher is struct wq_flusher.
type flusher struct {
	flushColor int
	done       wait.Completion
}

// prepPwqs is flush_workqueue_prep_pwqs() (wq.mu held).
func (wq *Workqueue) prepPwqs(flushColor, workColor int) bool {
	wait := false
	if flushColor >= 0 {
		wq.nrPwqsToFlush.Store(1)
	}
	for _, p := range wq.pwqs {
		pool := p.pool
		pool.lock()
		if flushColor >= 0 && p.nrInFlight[flushColor] != 0 {
			p.flushColor = flushColor
			wq.nrPwqsToFlush.Add(1)
			wait = true
		}
		if workColor >= 0 {
			p.workColor = workColor
		}
		pool.mu.Unlock()
	}
	if flushColor >= 0 && wq.nrPwqsToFlush.Add(-1) == 0 {
		wq.firstFlusher.Load().done.Complete()
	}
	return wait
}

// FlushWorkqueue is flush_workqueue(wq) (__flush_workqueue): wait until
// every item queued on wq before the call has finished. Items queued
// meanwhile are not waited for, so the flush cannot be livelocked (the
// kernel's 16 flush colors). It may sleep. Flushing a system workqueue
// prints "WARNING: Flushing system-wide workqueues will be prohibited in
// near future." with a stack, as the kernel does. Flushing wq from one of
// its own items would wait for that item forever: kdefer prints lockdep's
// report and returns without waiting.
func FlushWorkqueue(c *kernel.Ctx, wq *Workqueue) {
	if wq.system {
		warnFlushingSystemWide(c)
	}
	flushWorkqueue(c, wq)
}

// FlushScheduledWork is flush_scheduled_work(): FlushWorkqueue(System),
// with the kernel's warning.
func FlushScheduledWork(c *kernel.Ctx) { FlushWorkqueue(c, System(c.Kernel())) }

func warnFlushingSystemWide(c *kernel.Ctx) {
	kernel.Printk(c, printk.LevelWarning, "WARNING: Flushing system-wide workqueues will be prohibited in near future.\n")
	kernel.DumpStack(c)
}

func flushWorkqueue(c *kernel.Ctx, wq *Workqueue) {
	kernel.MightSleep(c)
	if cur := currentWorker(c); cur != nil && cur.currentPwq != nil && cur.currentPwq.wq == wq {
		lockdepRecursive(c, wq.lockName, cur, "__flush_workqueue")
		return
	}
	f := &flusher{flushColor: -1}
	wq.mu.Lock()
	next := workNextColor(wq.workColor)
	if next != wq.flushColor {
		f.flushColor = wq.workColor
		wq.workColor = next
		if wq.firstFlusher.Load() == nil {
			wq.firstFlusher.Store(f)
			if !wq.prepPwqs(wq.flushColor, wq.workColor) {
				wq.flushColor = next
				wq.firstFlusher.Store(nil)
				wq.mu.Unlock()
				return
			}
		} else {
			wq.flusherQueue = append(wq.flusherQueue, f)
			wq.prepPwqs(-1, wq.workColor)
		}
	} else {
		wq.flusherOver = append(wq.flusherOver, f)
	}
	warn := flushDependency(c, wq, nil, false)
	wq.mu.Unlock()
	if warn != nil {
		warn()
	}

	f.done.WaitFor(c)

	// Wake-up-and-cascade: the first flusher completes the others of its
	// color and starts the next color.
	if wq.firstFlusher.Load() != f {
		return
	}
	wq.mu.Lock()
	defer wq.mu.Unlock()
	if wq.firstFlusher.Load() != f {
		return
	}
	wq.firstFlusher.Store(nil)
	for {
		for len(wq.flusherQueue) > 0 && wq.flusherQueue[0].flushColor == wq.flushColor {
			nf := wq.flusherQueue[0]
			wq.flusherQueue = wq.flusherQueue[1:]
			nf.done.Complete()
		}
		wq.flushColor = workNextColor(wq.flushColor)
		if len(wq.flusherOver) > 0 {
			for _, of := range wq.flusherOver {
				of.flushColor = wq.workColor
			}
			wq.workColor = workNextColor(wq.workColor)
			wq.flusherQueue = append(wq.flusherQueue, wq.flusherOver...)
			wq.flusherOver = nil
			wq.prepPwqs(-1, wq.workColor)
		}
		if len(wq.flusherQueue) == 0 {
			break
		}
		nf := wq.flusherQueue[0]
		wq.flusherQueue = wq.flusherQueue[1:]
		wq.firstFlusher.Store(nf)
		if wq.prepPwqs(wq.flushColor, -1) {
			break
		}
		wq.firstFlusher.Store(nil)
		nf.done.Complete()
	}
}

// DrainWorkqueue is drain_workqueue(wq): wait until wq is empty. While it
// drains only chained queueing (by wq's own items) is allowed; other
// queueing gets the kernel's warning "workqueue: cannot queue fn on wq
// name". It flushes repeatedly, warning
//
//	workqueue name: drain_workqueue() isn't complete after 10 tries
//
// at the 10th try and every 100th up to 1000.
func DrainWorkqueue(c *kernel.Ctx, wq *Workqueue) {
	wq.mu.Lock()
	if wq.nrDrainers == 0 {
		wq.setFlag(flagDraining)
	}
	wq.nrDrainers++
	wq.mu.Unlock()
	tries := 0
	for {
		flushWorkqueue(c, wq)
		drained := true
		for _, p := range wq.pwqs {
			p.pool.lock()
			if !p.isEmpty() {
				drained = false
			}
			p.pool.mu.Unlock()
			if !drained {
				break
			}
		}
		if drained || c.Dying() {
			break
		}
		tries++
		if tries == 10 || (tries%100 == 0 && tries <= 1000) {
			kernel.Printk(c, printk.LevelWarning, "workqueue %s: drain_workqueue() isn't complete after %d tries\n", wq.name, tries)
		}
		if cur := currentWorker(c); cur != nil && cur.currentPwq != nil && cur.currentPwq.wq == wq {
			break // reported by flushWorkqueue; it would never end
		}
	}
	wq.mu.Lock()
	wq.nrDrainers--
	if wq.nrDrainers == 0 {
		wq.clearFlag(flagDraining)
	}
	wq.mu.Unlock()
}

func (wq *Workqueue) setFlag(f Flags) {
	for {
		old := wq.flags.Load()
		if wq.flags.CompareAndSwap(old, old|uint32(f)) {
			return
		}
	}
}

func (wq *Workqueue) clearFlag(f Flags) {
	for {
		old := wq.flags.Load()
		if wq.flags.CompareAndSwap(old, old&^uint32(f)) {
			return
		}
	}
}

// DestroyWorkqueue is destroy_workqueue(wq): drain it, stop its rescuer,
// and release it. Delayed items whose timer is still pending are not
// handled (cancel them first, as in the kernel: their timer would later
// find the workqueue gone; kdefer then drops them). If items are still in
// flight after draining (one being queued from outside), the kernel's
// report
//
//	destroy_workqueue: name has the following busy pwq
//
// is printed with a WARN and the workqueue is left as it is; DestroyWorkqueue
// then reports false.
func DestroyWorkqueue(c *kernel.Ctx, wq *Workqueue) bool {
	wq.setFlag(flagDestroying)
	DrainWorkqueue(c, wq)
	if r := wq.rescuer; r != nil {
		wq.sys.maydayMu.Lock()
		wq.rescuer = nil
		wq.sys.maydayMu.Unlock()
		r.task.Cancel(kernel.ErrKthreadStop)
		kernel.WaitTaskExit(c, r.task)
	}
	for _, p := range wq.pwqs {
		p.pool.lock()
		busy := p.busy()
		p.pool.mu.Unlock()
		if busy {
			kernel.WarnOn(c, true)
			kernel.Printk(c, printk.LevelWarning, "%s: %s has the following busy pwq\n", "destroy_workqueue", wq.name)
			printLines(c, p.showLines())
			return false
		}
	}
	s := wq.sys
	s.mu.Lock()
	for i, x := range s.wqs {
		if x == wq {
			s.wqs = append(s.wqs[:i], s.wqs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	wq.setFlag(flagDestroyed)
	return true
}

// workLockName is the lockdep name of a work item's completion map,
// "(work_completion)(&w)". The kernel's names the INIT_WORK expression;
// kdefer names the work function.
func workLockName(w *Work) string { return "(work_completion)(" + funcName(w.fn) + ")" }

// lockdepRecursive prints lockdep's report for a flush that would wait for
// the flusher itself: the worker holds the workqueue's and its item's
// completion maps (process_one_work), and the flush takes name again.
// Lockdep reports once per boot; kdefer once per lock name.
func lockdepRecursive(c *kernel.Ctx, name string, cur *worker, at string) {
	s := sysOf(c.Kernel())
	s.lockdepMu.Lock()
	seen := s.lockdepSeen[name]
	s.lockdepSeen[name] = true
	s.lockdepMu.Unlock()
	if seen {
		return
	}
	t := c.Current()
	who := fmt.Sprintf("%s/%d", t.Comm(), t.PID())
	held := []string{cur.currentPwq.wq.lockName, "(work_completion)(" + funcName(cur.currentFn) + ")"}
	lines := []string{
		"",
		"============================================",
		"WARNING: possible recursive locking detected",
		"kdefer-" + kernel.Version + " " + taintWord(c.Kernel()),
		"--------------------------------------------",
		who + " is trying to acquire lock:",
		fmt.Sprintf("%s (%s){+.+.}-{0:0}, at: %s", lockAddr(name), name, at),
		"",
		"but task is already holding lock:",
		fmt.Sprintf("%s (%s){+.+.}-{0:0}, at: process_one_work", lockAddr(name), name),
		"",
		"other info that might help us debug this:",
		" Possible unsafe locking scenario:",
		"",
		"       CPU0",
		"       ----",
		"  lock(" + name + ");",
		"  lock(" + name + ");",
		"",
		" *** DEADLOCK ***",
		"",
		" May be due to missing lock nesting notation",
		"",
		fmt.Sprintf("2 locks held by %s:", who),
	}
	for i, h := range held {
		lines = append(lines, fmt.Sprintf(" #%d: %s (%s){+.+.}-{0:0}, at: process_one_work", i, lockAddr(h), h))
	}
	lines = append(lines, "", "stack backtrace:")
	kernel.Report(c, printk.LevelWarning, lines, true)
}

func taintWord(k *kernel.Kernel) string {
	if k.Tainted() == 0 {
		return "Not tainted"
	}
	return "Tainted"
}

// lockdepReported reports whether the recursion on name was reported.
func (s *system) lockdepReported(name string) bool {
	s.lockdepMu.Lock()
	defer s.lockdepMu.Unlock()
	return s.lockdepSeen[name]
}

// lockAddr is a stable stand-in for the address of a lockdep map.
func lockAddr(name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("ffff%012x", h.Sum64()&0xffffffffffff)
}
