package workqueue

import (
	"runtime"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

// --- work->data ---

func poolData(p *workerPool) uint64 {
	d := uint64(p.id+1) << dataPoolShift
	if p.bh {
		d |= dataBH
	}
	return d
}

// queuedOn reports whether w is queued on pool, whose lock the caller
// holds: only then may w's queue fields be read.
func queuedOn(w *Work, pool *workerPool) bool {
	d := w.data.Load()
	return d&dataQueued != 0 && int(d>>dataPoolShift)-1 == pool.id
}

// workPool is get_work_pool(): the pool w is queued on or last ran on.
func (s *system) workPool(w *Work) *workerPool {
	id := int(w.data.Load()>>dataPoolShift) - 1
	return s.poolByID(id)
}

// clearPendingIfDisabled is clear_pending_if_disabled(): called by the new
// PENDING owner; a disabled item gives PENDING back and is not queued.
func clearPendingIfDisabled(w *Work) bool {
	if w.disable == 0 {
		return false
	}
	w.data.Store(w.data.Load() &^ dataPending)
	return true
}

// --- pwq activation and retirement (pool.mu held) ---

// tryincNrActive is pwq_tryinc_nr_active(): one more active item if
// max_active allows (one pod: the workqueue's max_active bounds each pwq).
func (p *pwq) tryincNrActive() bool {
	if p.nrActive < int(p.wq.maxActive.Load()) {
		p.nrActive++
		return true
	}
	return false
}

// activateWork is __pwq_activate_work(): an inactive item (with the
// barriers linked to it) moves to the pool's worklist. c is the caller's
// context, nil where it has none.
func (p *pwq) activateWork(c *kernel.Ctx, w *Work) {
	pool := p.pool
	pool.traceActivate(c, w)
	if w.qflags&qLinked == 0 && w == p.inactive.head {
		// The common case: the first inactive item, no barrier linked.
		p.inactive.popFront(w)
		pool.worklist.pushBack(w)
	} else {
		moveLinkedWorks(w, &pool.worklist)
	}
	w.qflags &^= qInactive
}

// activateFirstInactive is pwq_activate_first_inactive().
func (p *pwq) activateFirstInactive(c *kernel.Ctx) bool {
	w := p.inactive.head
	if w != nil && p.tryincNrActive() {
		p.activateWork(c, w)
		return true
	}
	return false
}

// decNrActive is pwq_dec_nr_active().
func (p *pwq) decNrActive(c *kernel.Ctx) {
	if p.inactive.head != nil {
		p.activateNext(c)
		return
	}
	p.nrActive--
}

// activateNext is the rest of pwq_dec_nr_active() when items wait: one
// leaves its slot and the first waiting one takes it. The common case —
// no barrier linked to it, max_active not lowered meanwhile, its
// activation not traced — moves it in place (nr_active is unchanged);
// the rest goes through activateFirstInactive.
func (p *pwq) activateNext(c *kernel.Ctx) {
	w := p.inactive.head
	pool := p.pool
	if w.qflags&qLinked != 0 || p.nrActive > int(p.wq.maxActive.Load()) || pool.tr.On(trace.WorkqueueActivateWork) {
		p.nrActive--
		p.activateFirstInactive(c)
		return
	}
	p.inactive.popFront(w)
	pool.worklist.pushBack(w)
	w.qflags &^= qInactive
}

// decNrInFlight is pwq_dec_nr_in_flight(): an item left the queue (ran, or
// was cancelled); flushers of its color are told when it was the last.
// The end, for a pwq being flushed or a closed workqueue, is in
// inFlightDone.
func (p *pwq) decNrInFlight(c *kernel.Ctx, qflags uint16) {
	color := int(qflags&qColorMask) >> qColorSh
	if qflags&qInactive == 0 {
		p.decNrActive(c)
	}
	p.nrInFlight[color]--
	if p.flushColor == color || Flags(p.wq.flags.Load())&flagClosed != 0 {
		p.inFlightDone(c, color)
	}
}

// inFlightDone is the end of pwq_dec_nr_in_flight() for a pwq being flushed
// or a closed workqueue.
func (p *pwq) inFlightDone(c *kernel.Ctx, color int) {
	wq := p.wq
	if wq.has(flagClosed) && p.isEmpty() {
		wq.wakeClosers(c)
	}
	if p.flushColor != color || p.nrInFlight[color] != 0 {
		return
	}
	p.flushColor = -1
	if wq.nrPwqsToFlush.Add(-1) == 0 {
		wq.firstFlusher.Load().done.Complete()
	}
}

// isEmpty is pwq_is_empty(): nothing active and nothing waiting.
func (p *pwq) isEmpty() bool { return p.nrActive == 0 && p.inactive.empty() }

// busy is pwq_busy(): anything in flight at all.
func (p *pwq) busy() bool {
	for _, n := range p.nrInFlight {
		if n != 0 {
			return true
		}
	}
	return !p.isEmpty()
}

// insertWork is insert_work() (pool.mu held, w's PENDING owned): w joins l
// before at (at the tail for nil) as an item of p.
func insertWork(p *pwq, w *Work, l *wlist, at *Work, qflags uint16) {
	w.pwq = p
	w.qflags = qflags
	w.data.Store(dataPending | dataQueued | poolData(p.pool))
	l.insertBefore(at, w)
}

// isChainedWork is is_chained_work(): the caller is a worker running an
// item of wq.
func isChainedWork(c *kernel.Ctx, wq *Workqueue) bool {
	w := currentWorker(c)
	return w != nil && w.currentPwq != nil && w.currentPwq.wq == wq
}

// currentWorker is current_wq_worker(): the worker c runs on, if c is the
// process context of a kworker or rescuer.
func currentWorker(c *kernel.Ctx) *worker {
	if c == nil || !c.InTask() {
		return nil
	}
	t := c.Current()
	if !t.IsKthread() {
		return nil
	}
	w, _ := t.Private().(*worker)
	return w
}

// queueWork is __queue_work(): w's PENDING is owned by the caller; put it
// on the pwq of cpu (or of the pool where it is still running, for
// non-reentrancy), active or inactive as max_active allows. It reports
// whether w was queued.
func (wq *Workqueue) queueWork(c *kernel.Ctx, cpu int, w *Work) bool {
	if f := Flags(wq.flags.Load()); f&(flagDestroying|flagDraining|flagClosed|flagDestroyed) != 0 {
		if !wq.mayQueueWhileClosing(c, f, w) {
			// The kernel leaves the item PENDING forever here; kdefer
			// gives PENDING back so that nothing waits for it in vain.
			w.data.Store(w.data.Load() &^ dataPending)
			return false
		}
	}
	return wq.insertQueued(c, cpu, w)
}

// mayQueueWhileClosing decides a queueing onto a workqueue that is being
// drained, destroyed or shut down: only chained queueing (by one of its
// own items) is allowed; others get the kernel's warning, except after
// Shutdown, which refuses them quietly.
func (wq *Workqueue) mayQueueWhileClosing(c *kernel.Ctx, f Flags, w *Work) bool {
	switch {
	case f&(flagDestroyed|flagCancelling) != 0:
		return false
	case isChainedWork(c, wq):
		return true
	case f&flagClosed != 0:
		return false
	}
	kernel.WarnOnce(c, true, "workqueue: cannot queue %s on wq %s\n", funcName(w.fn), wq.name)
	return false
}

// queueEvents are the tracepoints of a queueing: while either is enabled
// queue_work takes the pool lock (see insertQueued).
const queueEvents = uint64(1)<<trace.WorkqueueQueueWork | uint64(1)<<trace.WorkqueueActivateWork

// insertQueued is the rest of __queue_work(), past the draining check.
func (wq *Workqueue) insertQueued(c *kernel.Ctx, cpu int, w *Work) bool {
	s := wq.sys
	reqCPU := cpu
	if cpu == CPUUnbound || cpu < 0 || cpu >= len(wq.cpuPwq) {
		cpu = c.CPU()
	}
	p := wq.cpuPwq[cpu]
	pool := p.pool
	if !pool.online.Load() {
		pool.bringUp(c)
	}
	last := s.workPool(w)
	if (last == nil || last == pool) && pool.nrRunning.Load() > 0 && !pool.tr.OnAny(queueEvents) {
		// A concurrency-managed worker of the pool is running: it will
		// find the item without the queuer taking the lock. While
		// workqueue_queue_work or workqueue_activate_work is traced
		// the queuer takes the lock, so that both are recorded as the
		// kernel records them, in its context and in order.
		pool.queueFast(c, p, w)
		return true
	}
	// If w was last on another pool, it may still be running there: queue
	// it there (ordered workqueues need not, their order guarantees it).
	if last != nil && last != pool && !wq.has(flagOrdered) {
		last.lock()
		if wk := last.findWorkerExecuting(w); wk != nil && wk.currentPwq.wq == wq {
			p = wk.currentPwq
			pool = last
		} else {
			last.mu.Unlock()
			pool.lock()
		}
	} else {
		pool.lock()
	}
	if pool.tr.On(trace.WorkqueueQueueWork) {
		emitQueue(c, reqCPU, p, w)
	}
	if w.list != nil {
		pool.mu.Unlock()
		kernel.WarnOn(c, true)
		return false
	}
	if p.isEmpty() {
		// Nothing of the workqueue is queued on the pool: an item
		// queued to an idle or lightly loaded queue is always measured
		// (its wakeup costs far more than the clock read).
		w.stamped = true
		w.stampNow(pool)
	} else {
		w.stamp(pool)
	}
	w.data.Store(dataPending | dataQueued | pool.data)
	var wake *kernel.Task
	if pool.enqueue(c, p, w) {
		wake, _ = pool.kickLater(c)
	}
	pool.mu.Unlock()
	if wake != nil {
		s.k.WakeUpProcess(wake)
	}
	return true
}

// stamp decides whether the queue-to-start latency of this queueing of w
// on a busy pool is measured — one item in latencySample: the two clock
// reads of a measured item cost about as much as the rest of its
// queueing and start, so that sampling more often would add to every
// item's cost and to the tail of its latency — and if so stamps it. The
// caller owns w's PENDING and has not yet published it.
func (w *Work) stamp(pool *workerPool) {
	w.stamped = pool.sampleSeq.Add(1)%latencySample == 1
	if w.stamped {
		w.stampNow(pool)
	}
}

// stampNow is stamp's clock read, out of line so that stamp is inlined.
func (w *Work) stampNow(pool *workerPool) { w.queuedAt = pool.sys.k.Now() }

// enqueue is the part of __queue_work() done under pool.mu once w's
// work->data names the pool: count w in p's current flush color and put
// it on the worklist if max_active allows (it reports that), on p's
// inactive list otherwise.
func (pool *workerPool) enqueue(c *kernel.Ctx, p *pwq, w *Work) bool {
	p.nrInFlight[p.workColor]++
	qf := colorFlags(p.workColor)
	p.stats.queued++
	w.pwq = p
	if p.inactive.empty() && p.tryincNrActive() {
		pool.traceActivate(c, w)
		w.qflags = qf
		pool.worklist.pushBack(w)
		return true
	}
	w.qflags = qf | qInactive
	p.inactive.pushBack(w)
	return false
}

// queueFast queues w on p without the pool lock, while a
// concurrency-managed worker of the pool runs (kdefer's lock-free path;
// the kernel takes pool->lock): w is pushed on the pool's incoming chain,
// and whoever next takes the lock (the worker when its worklist runs dry,
// or any path that looks at queued items) splices it onto its list.
//
// A worker going idle lowers nr_running and then looks at the chain; the
// queuer pushes and then looks at nr_running: one of them sees the other,
// so an item is never left without a worker. w's PENDING is owned, and w
// is on no list.
//
// It is publish then push, written out so that the queueing is one call
// (the inliner takes stamp but not pushChain); kickIdle and the clock
// read are out of line.
func (pool *workerPool) queueFast(c *kernel.Ctx, p *pwq, w *Work) {
	w.pwq = p
	w.stamp(pool)
	w.data.Store(dataPending | dataQueued | pool.data)
	for { // pushChain
		head := pool.incoming.Load()
		w.next = head
		if pool.incoming.CompareAndSwap(head, w) {
			break
		}
	}
	if pool.nrRunning.Load() == 0 {
		pool.kickIdle(c)
	}
}

// publish is the first half of queueFast: from here cancel and flush find
// w queued on this pool; until push they find it on no list and retry
// (try_to_grab_pending's -EAGAIN) or, for a flush, treat it as not yet
// queued.
func (pool *workerPool) publish(p *pwq, w *Work) {
	w.pwq = p
	w.stamp(pool)
	w.data.Store(dataPending | dataQueued | pool.data)
}

// push is the second half of queueFast: w joins the incoming chain, and a
// worker is woken if none runs any more.
func (pool *workerPool) push(c *kernel.Ctx, w *Work) {
	pool.pushChain(w)
	if pool.nrRunning.Load() == 0 {
		// The worker went idle (or to sleep) meanwhile: wake one.
		pool.kickIdle(c)
	}
}

// pushChain puts w at the head of the incoming chain.
func (pool *workerPool) pushChain(w *Work) {
	for {
		head := pool.incoming.Load()
		w.next = head
		if pool.incoming.CompareAndSwap(head, w) {
			return
		}
	}
}

// kickIdle is push's rare end, out of line so that push stays small: no
// worker runs any more, so one is woken for the pushed items.
func (pool *workerPool) kickIdle(c *kernel.Ctx) {
	pool.lock()
	wake, _ := pool.kickLater(c)
	pool.mu.Unlock()
	if wake != nil {
		pool.sys.k.WakeUpProcess(wake)
	}
}

// splice moves the items queued by queueFast onto their lists, in the
// order they were queued (pool.mu held). The common case — every item of
// one pwq — is accounted for once: the first max_active-nr_active items
// (none if some already wait) are linked onto the worklist as one run and
// the rest onto the pwq's inactive list as another, as enqueue would put
// them one by one; items of several pwqs go through enqueue each.
//
// The chain runs from the newest item to the oldest. One pass over it
// turns it into the doubly linked FIFO run and gives each item the flags
// and list of the inactive list (where a busy pool's items go: its
// max_active is reached while items wait), so that each item's memory is
// visited once; the oldest items that are active after all are then
// re-marked, and items of several pwqs re-queued one by one.
func (pool *workerPool) splice() {
	head := pool.incoming.Swap(nil)
	if head == nil {
		return
	}
	p := head.pwq
	qf := colorFlags(p.workColor)
	inactive := &p.inactive
	one := true
	n := 0
	last := head // the newest: the run's tail
	var newer *Work
	for w := head; w != nil; {
		older := w.next
		w.next = newer
		w.qflags = qf | qInactive
		w.list = inactive
		if newer != nil {
			newer.prev = w
		}
		one = one && w.pwq == p
		n++
		newer = w
		w = older
	}
	first := newer // the oldest: the run's head
	if !one {
		for w := first; w != nil; {
			next := w.next
			w.next, w.prev, w.list = nil, nil, nil
			pool.enqueue(nil, w.pwq, w)
			w = next
		}
		return
	}
	// enqueue for the whole run: one flush color; as many active as
	// max_active allows, unless items already wait.
	p.nrInFlight[p.workColor] += n
	p.stats.queued += uint64(n)
	active := 0
	if inactive.empty() {
		active = min(n, max(int(p.wq.maxActive.Load())-p.nrActive, 0))
	}
	p.nrActive += active
	if active == 0 {
		appendRun(inactive, first, last)
		return
	}
	split := first // the last active item
	for i := 0; ; i++ {
		split.qflags = qf
		split.list = &pool.worklist
		if i == active-1 {
			break
		}
		split = split.next
	}
	if rest := split.next; rest != nil {
		split.next, rest.prev = nil, nil
		appendRun(inactive, rest, last)
	}
	appendRun(&pool.worklist, first, split)
	if pool.tr.On(trace.WorkqueueActivateWork) {
		// Tracing began after these items were queued.
		for w := first; w != nil && w.list == &pool.worklist; w = w.next {
			pool.emitActivate(nil, w)
		}
	}
}

// appendRun appends the run first…last, doubly linked among themselves
// (last.next nil) and already recording l as their list, to the tail of
// l.
func appendRun(l *wlist, first, last *Work) {
	first.prev = l.tail
	if l.tail != nil {
		l.tail.next = first
	} else {
		l.head = first
	}
	l.tail = last
}

// QueueWorkOn is queue_work_on(cpu, wq, w): queue w on wq to run on cpu
// (CPUUnbound: the caller's CPU, or any for an unbound workqueue). It
// returns false if w was already pending (nothing changes: it still runs
// once) or is disabled, true if it was queued. It may be called from any
// context and never blocks. Stores made before a true return are visible
// to the work function.
//
// Difference: queueing on a workqueue being drained or destroyed from
// outside it gets the kernel's warning "workqueue: cannot queue fn on wq
// name" and returns false with the item no longer pending (the kernel
// returns true and leaves it pending forever); after Shutdown it returns
// false silently.
func QueueWorkOn(c *kernel.Ctx, cpu int, wq *Workqueue, w *Work) bool {
	if w.data.Or(dataPending)&dataPending != 0 {
		return false
	}
	if clearPendingIfDisabled(w) {
		return false
	}
	return wq.queueWork(c, cpu, w)
}

// QueueWork is queue_work(wq, w): QueueWorkOn(c, CPUUnbound, wq, w).
func QueueWork(c *kernel.Ctx, wq *Workqueue, w *Work) bool {
	return QueueWorkOn(c, CPUUnbound, wq, w)
}

// QueueWorkNode is queue_work_node(node, wq, w). kdefer has one NUMA node;
// it is QueueWork.
func QueueWorkNode(c *kernel.Ctx, node int, wq *Workqueue, w *Work) bool {
	return QueueWork(c, wq, w)
}

// ScheduleWork is schedule_work(w): QueueWork on System ("events").
func ScheduleWork(c *kernel.Ctx, w *Work) bool { return QueueWork(c, System(c.Kernel()), w) }

// ScheduleWorkOn is schedule_work_on(cpu, w).
func ScheduleWorkOn(c *kernel.Ctx, cpu int, w *Work) bool {
	return QueueWorkOn(c, cpu, System(c.Kernel()), w)
}

// QueueRCUWork is queue_rcu_work(wq, rw): kdefer has no RCU readers, so the
// grace period is over at once and rw is queued now. False if pending.
func QueueRCUWork(c *kernel.Ctx, wq *Workqueue, rw *RCUWork) bool {
	w := &rw.Work
	if w.data.Or(dataPending)&dataPending != 0 {
		return false
	}
	if clearPendingIfDisabled(w) {
		kernel.WarnOnce(c, true, "")
		return false
	}
	return wq.queueWork(c, CPUUnbound, w)
}

// --- delayed work ---

// delayedWorkTimerFn is delayed_work_timer_fn(): the timer of a delayed
// item expired; queue it.
func delayedWorkTimerFn(c *kernel.Ctx, t *timer.Timer) {
	dw := timer.ContainerOf[DelayedWork](t, delayedTimerOff)
	wq, cpu := dw.wq, dw.cpu
	// The item leaves the list of armed items and is counted in transit
	// until it is queued, so that Shutdown never sees it in neither place.
	wq.delayedMu.Lock()
	wq.nrFiring++
	wq.delayedMu.Unlock()
	wq.unregisterDelayed(c, dw)
	if f := Flags(wq.flags.Load()); f&flagClosed != 0 && f&(flagCancelling|flagDestroyed) == 0 {
		// Armed before Shutdown(Drain): it belongs to what is drained.
		wq.insertQueued(c, cpu, &dw.Work)
	} else {
		wq.queueWork(c, cpu, &dw.Work)
	}
	wq.delayedMu.Lock()
	wq.nrFiring--
	wake := wq.nrFiring == 0 && wq.nrDelayed == 0
	wq.delayedMu.Unlock()
	if wake && wq.has(flagClosed) {
		wq.wakeClosers(c)
	}
}

// queueDelayed is __queue_delayed_work() (PENDING owned).
func queueDelayed(c *kernel.Ctx, cpu int, wq *Workqueue, dw *DelayedWork, delay uint64) bool {
	if kernel.WarnOnce(c, wq == nil, "") {
		dw.data.Store(dw.data.Load() &^ dataPending)
		return false
	}
	if delay == 0 {
		return wq.queueWork(c, cpu, &dw.Work)
	}
	if wq.has(flagClosed | flagDestroyed) {
		dw.data.Store(dw.data.Load() &^ dataPending)
		return false
	}
	dw.wq, dw.cpu = wq, cpu
	wq.registerDelayed(dw)
	timer.SetExpires(&dw.timer, c.Jiffies()+delay)
	if cpu == CPUUnbound || cpu < 0 || cpu >= c.Kernel().NumCPUs() {
		timer.AddGlobal(c, &dw.timer)
	} else {
		timer.AddOn(c, &dw.timer, cpu)
	}
	return true
}

// QueueDelayedWorkOn is queue_delayed_work_on(cpu, wq, dw, delay): queue dw
// after delay jiffies (its TIMER_IRQSAFE timer, on cpu's base or the
// caller's, queues it then). It returns false if dw was already pending
// (queued or timer armed) or disabled. A delay of 0 queues it at once,
// with no timer.
func QueueDelayedWorkOn(c *kernel.Ctx, cpu int, wq *Workqueue, dw *DelayedWork, delay uint64) bool {
	w := &dw.Work
	if w.data.Or(dataPending)&dataPending != 0 {
		return false
	}
	if clearPendingIfDisabled(w) {
		return false
	}
	return queueDelayed(c, cpu, wq, dw, delay)
}

// QueueDelayedWork is queue_delayed_work(wq, dw, delay).
func QueueDelayedWork(c *kernel.Ctx, wq *Workqueue, dw *DelayedWork, delay uint64) bool {
	return QueueDelayedWorkOn(c, CPUUnbound, wq, dw, delay)
}

// ScheduleDelayedWork is schedule_delayed_work(dw, delay): on System.
func ScheduleDelayedWork(c *kernel.Ctx, dw *DelayedWork, delay uint64) bool {
	return QueueDelayedWork(c, System(c.Kernel()), dw, delay)
}

// ScheduleDelayedWorkOn is schedule_delayed_work_on(cpu, dw, delay).
func ScheduleDelayedWorkOn(c *kernel.Ctx, cpu int, dw *DelayedWork, delay uint64) bool {
	return QueueDelayedWorkOn(c, cpu, System(c.Kernel()), dw, delay)
}

// ModDelayedWorkOn is mod_delayed_work_on(cpu, wq, dw, delay): if dw is
// idle, QueueDelayedWorkOn; otherwise its timer is changed (earlier or
// later) — an item already queued is taken back and queued again with the
// new delay. A delay of 0 queues it at once whatever its state. It returns
// false if dw was idle and has been queued, true if it was pending and has
// been modified. Any context.
func ModDelayedWorkOn(c *kernel.Ctx, cpu int, wq *Workqueue, dw *DelayedWork, delay uint64) bool {
	ret := workGrabPending(c, &dw.Work, true)
	if !clearPendingIfDisabled(&dw.Work) {
		queueDelayed(c, cpu, wq, dw, delay)
	}
	return ret
}

// ModDelayedWork is mod_delayed_work(wq, dw, delay).
func ModDelayedWork(c *kernel.Ctx, wq *Workqueue, dw *DelayedWork, delay uint64) bool {
	return ModDelayedWorkOn(c, CPUUnbound, wq, dw, delay)
}

// registerDelayed and unregisterDelayed keep the workqueue's list of
// delayed items whose timer is armed (kdefer's, for Shutdown).
func (wq *Workqueue) registerDelayed(dw *DelayedWork) {
	wq.delayedMu.Lock()
	dw.onWQ = wq
	dw.dprev = nil
	dw.dnext = wq.delayedHead
	if wq.delayedHead != nil {
		wq.delayedHead.dprev = dw
	}
	wq.delayedHead = dw
	wq.nrDelayed++
	wq.delayedMu.Unlock()
}

func (wq *Workqueue) unregisterDelayed(c *kernel.Ctx, dw *DelayedWork) {
	if wq == nil {
		return
	}
	wq.delayedMu.Lock()
	if dw.onWQ == wq {
		if dw.dprev != nil {
			dw.dprev.dnext = dw.dnext
		} else {
			wq.delayedHead = dw.dnext
		}
		if dw.dnext != nil {
			dw.dnext.dprev = dw.dprev
		}
		dw.dnext, dw.dprev, dw.onWQ = nil, nil, nil
		wq.nrDelayed--
		empty := wq.nrDelayed == 0 && wq.nrFiring == 0
		wq.delayedMu.Unlock()
		if empty && wq.has(flagClosed) {
			wq.wakeClosers(c)
		}
		return
	}
	wq.delayedMu.Unlock()
}

// --- grabbing PENDING ---

// tryToGrabPending is try_to_grab_pending(): 1 if w was pending and the
// caller now owns PENDING (stolen from the timer or the worklist), 0 if it
// was idle and the caller claimed PENDING, -1 (-EAGAIN) if it could not
// be grabbed right now.
func tryToGrabPending(c *kernel.Ctx, w *Work, isDwork bool) int {
	if isDwork {
		dw := (*DelayedWork)(unsafePointer(w))
		if timer.Delete(&dw.timer) == 1 {
			dw.wq.unregisterDelayed(c, dw)
			return 1
		}
	}
	if w.data.Or(dataPending)&dataPending == 0 {
		return 0
	}
	s := sysOf(c.Kernel())
	pool := s.workPool(w)
	if pool == nil {
		return -1
	}
	pool.lock()
	if queuedOn(w, pool) && w.list != nil {
		// w.pwq was set by w's queuer before work->data named the pool
		// (queueFast), or under this pool's lock.
		p := w.pwq
		qf := w.qflags
		// An inactive item may have barriers linked to it: move them to
		// the worklist with it, then take the item off.
		if qf&qInactive != 0 {
			moveLinkedWorks(w, &pool.worklist)
		}
		w.unlink()
		w.pwq = nil
		w.data.Store(dataPending | poolData(pool))
		p.decNrInFlight(c, qf)
		pool.mu.Unlock()
		return 1
	}
	pool.mu.Unlock()
	return -1
}

// workGrabPending is work_grab_pending(): tryToGrabPending until it
// succeeds; it reports whether w was pending.
func workGrabPending(c *kernel.Ctx, w *Work, isDwork bool) bool {
	for {
		if ret := tryToGrabPending(c, w, isDwork); ret >= 0 {
			return ret == 1
		}
		// The item is being queued or its timer is firing on another
		// CPU right now: a brief busy retry, as the kernel's cpu_relax.
		runtime.Gosched()
	}
}

// cancel is __cancel_work(): grab PENDING, optionally raise the disable
// count, release PENDING. It reports whether w was pending.
func cancel(c *kernel.Ctx, w *Work, isDwork, disable bool) bool {
	ret := workGrabPending(c, w, isDwork)
	if disable {
		if w.disable < offqDisableMax {
			w.disable++
		} else {
			kernel.WarnOnce(c, true, "workqueue: work disable count overflowed\n")
		}
	}
	w.data.Store(w.data.Load() &^ dataPending)
	return ret
}

// cancelSync is __cancel_work_sync(): cancel with the item disabled
// meanwhile (so that a self-requeueing item cannot come back), wait for a
// running instance, and re-enable it unless disabling was asked for.
func cancelSync(c *kernel.Ctx, w *Work, isDwork, disable bool) bool {
	ret := cancel(c, w, isDwork, true)
	if w.data.Load()&dataBH != 0 {
		kernel.WarnOnce(c, c.InHardirq(), "")
	} else {
		kernel.MightSleep(c)
	}
	flushWork(c, w, true)
	if !disable {
		EnableWork(c, w)
	}
	return ret
}

// CancelWork is cancel_work(w): if w is pending, take it off its queue.
// It returns true if w was pending. It does not wait for a running
// instance. Any context.
func CancelWork(c *kernel.Ctx, w *Work) bool { return cancel(c, w, false, false) }

// CancelWorkSync is cancel_work_sync(w): cancel w and wait until a running
// instance has finished. It works for items that requeue themselves: while
// it runs, queueing w fails. On return w is neither pending nor running
// (unless queued again concurrently). It returns true if w was pending.
// It may sleep, unless w was last queued on a BH workqueue (then it
// busy-waits, not from hardirq context). Use CancelDelayedWorkSync for a
// delayed item. Called from w's own function it would deadlock: kdefer
// prints lockdep's report and returns without waiting.
func CancelWorkSync(c *kernel.Ctx, w *Work) bool { return cancelSync(c, w, false, false) }

// CancelDelayedWork is cancel_delayed_work(dw): stop dw's timer or take it
// off its queue. True if it was pending and cancelled; the function may
// still be running on return. Any context.
func CancelDelayedWork(c *kernel.Ctx, dw *DelayedWork) bool {
	return cancel(c, &dw.Work, true, false)
}

// CancelDelayedWorkSync is cancel_delayed_work_sync(dw): CancelWorkSync for
// a delayed item.
func CancelDelayedWorkSync(c *kernel.Ctx, dw *DelayedWork) bool {
	return cancelSync(c, &dw.Work, true, false)
}

// DisableWork is disable_work(w) (v6.10+): raise w's disable count and
// cancel it if pending. While the count is not 0, queueing w fails
// (returns false). It returns true if w was pending. Any context. The count
// stops at 65535 with the kernel's warning "workqueue: work disable count
// overflowed".
func DisableWork(c *kernel.Ctx, w *Work) bool { return cancel(c, w, false, true) }

// DisableWorkSync is disable_work_sync(w): DisableWork, then wait for a
// running instance (as CancelWorkSync).
func DisableWorkSync(c *kernel.Ctx, w *Work) bool { return cancelSync(c, w, false, true) }

// EnableWork is enable_work(w): lower w's disable count. It returns true if
// the count reached 0 (w can be queued again; enabling does not queue it).
// Enabling an item that is not disabled gets the kernel's warning
// "workqueue: work disable count underflowed". Any context.
func EnableWork(c *kernel.Ctx, w *Work) bool {
	workGrabPending(c, w, false)
	if w.disable > 0 {
		w.disable--
	} else {
		kernel.WarnOnce(c, true, "workqueue: work disable count underflowed\n")
	}
	d := w.disable
	w.data.Store(w.data.Load() &^ dataPending)
	return d == 0
}

// EnableAndQueueWork is enable_and_queue_work(wq, w): EnableWork, and if
// the count reached 0, QueueWork. It reports whether the count reached 0
// (the queueing itself may still find w pending).
func EnableAndQueueWork(c *kernel.Ctx, wq *Workqueue, w *Work) bool {
	if EnableWork(c, w) {
		QueueWork(c, wq, w)
		return true
	}
	return false
}

// DisableDelayedWork is disable_delayed_work(dw).
func DisableDelayedWork(c *kernel.Ctx, dw *DelayedWork) bool { return cancel(c, &dw.Work, true, true) }

// DisableDelayedWorkSync is disable_delayed_work_sync(dw).
func DisableDelayedWorkSync(c *kernel.Ctx, dw *DelayedWork) bool {
	return cancelSync(c, &dw.Work, true, true)
}

// EnableDelayedWork is enable_delayed_work(dw).
func EnableDelayedWork(c *kernel.Ctx, dw *DelayedWork) bool { return EnableWork(c, &dw.Work) }

// Busy is work_busy(w): BusyPending and/or BusyRunning. Advisory only.
func Busy(c *kernel.Ctx, w *Work) uint32 {
	var ret uint32
	if Pending(w) {
		ret |= BusyPending
	}
	if pool := sysOf(c.Kernel()).workPool(w); pool != nil {
		pool.mu.Lock()
		if pool.findWorkerExecuting(w) != nil {
			ret |= BusyRunning
		}
		pool.mu.Unlock()
	}
	return ret
}

// --- execution ---

// processOneWork is process_one_work() (pool.mu held; released and
// retaken): run w on worker wk. Up to the call of the work function (the
// kernel's first half, inline here: this is the worker's hot path), w
// leaves its list, becomes the worker's current item, and its PENDING is
// cleared; finish does the rest.
func (wk *worker) processOneWork(c *kernel.Ctx, w *Work) {
	p := w.pwq
	pool := wk.pool
	if !wk.inBusy {
		pool.busy = append(pool.busy, wk)
		wk.inBusy = true
	}
	fn := w.fn
	qf := w.qflags
	wk.currentWork = w
	wk.currentFn = fn
	wk.currentFnID = w.fnID
	wk.currentPwq = p
	wk.currentQF = qf
	wk.execGen++
	if wq := p.wq; wk.descWQ != wq {
		wk.desc, wk.descWQ = wq.name, wq
	}
	sampled := w.stamped
	wk.sampled = sampled
	// The start time from the worker's cached clock (see readClock).
	wk.clockItems++
	if sampled || wk.clockStale || wk.clock == 0 {
		wk.readClock()
	}
	wk.startAt = wk.clock
	if sampled {
		p.stats.observeLatency(wk.startAt - w.queuedAt)
	}
	if wk.waited != waitedNone {
		// The first item after the worker waited for work: its queue
		// latency is the hand-off's (handoff.go).
		if sampled {
			pool.handoff.observe(wk.waited, wk.startAt-w.queuedAt, wk.startAt)
		}
		wk.waited = waitedNone
	}
	// w.pwq is left as it is: it is read only while work->data says w
	// is queued. w is on a list: the worklist (usually its head) or
	// the worker's scheduled list.
	if l := w.list; l.head == w {
		l.popFront(w)
	} else {
		l.remove(w)
	}
	if Flags(p.wq.flags.Load())&CPUIntensive != 0 {
		wk.setFlags(workerCPUIntensive)
	}
	if pool.nrRunning.Load() == 0 {
		// kick_pool: a no-op while a concurrency-managed worker runs.
		pool.kick(c)
	}
	// set_work_pool_and_clear_pending: the last update of w before its
	// function runs; queueing it from now on queues it again. A swap
	// (the kernel follows the store with smp_mb): it reads the value of
	// a queuer's test-and-set that found PENDING still set, so the
	// function sees what that queuer stored before.
	w.data.Swap(pool.data)
	p.stats.started++
	if !pool.tickArmed && wk.task != nil && wk.flags.Load()&workerNotRunning == 0 {
		pool.armTick(c)
	}
	pool.mu.Unlock()

	if pool.tr.On(trace.WorkqueueExecuteStart) {
		emitExecute(c, trace.WorkqueueExecuteStart, w, fn)
	}
	switch {
	case wk.task == nil:
		kernel.CallHandler(c, func() { fn(c, w) }) // BH: softirq context
	case wk.guarded:
		// runItems' recovery frame covers the call.
		wk.preemptBefore = c.PreemptCount()
		wk.inFn = true
		fn(c, w)
		wk.inFn = false
	default:
		wk.preemptBefore = c.PreemptCount()
		callWorkFn(c, wk, fn, w)
	}
	wk.finish(c)
}

// finish is the second half of process_one_work(), once the work
// function has returned (pool.mu taken).
func (wk *worker) finish(c *kernel.Ctx) {
	pool := wk.pool
	if pool.tr.On(trace.WorkqueueExecuteEnd) {
		emitExecute(c, trace.WorkqueueExecuteEnd, wk.currentWork, wk.currentFn)
	}
	if wk.task != nil {
		if c.PreemptCount() != wk.preemptBefore {
			leakedAtomic(c, wk.currentFn, wk.preemptBefore)
		}
		// cond_resched() between items: in real time the Go scheduler
		// preempts a long-running goroutine by itself, so the worker
		// yields only every condReschedEvery items; in virtual time
		// after each item, so that other tasks get their turn.
		wk.sinceResched++
		if wk.sinceResched >= condReschedEvery || pool.virtual {
			wk.sinceResched = 0
			kernel.CondResched(c)
		}
	}
	// The periodic read of the cached clock is made here, at the end of
	// an item, rather than before the next one starts: it then adds
	// nothing to that item's queue-to-start latency.
	var end int64
	if wk.sampled || wk.clockItems >= clockEvery {
		wk.readClock()
		end = wk.clock
	}
	pool.mu.Lock()
	if p := wk.currentPwq; wk.sampled && end-wk.startAt > p.stats.maxRun {
		p.stats.maxRun = end - wk.startAt
	}
	// release, without the call.
	qf := wk.currentQF
	if wk.flags.Load()&workerCPUIntensive != 0 {
		wk.clrFlags(workerCPUIntensive)
	}
	wk.clearCurrent().decNrInFlight(c, qf)
}

// runItems is worker_thread()'s loop over the pool's items (pool.mu
// held), with one recovery frame for all the work functions it calls
// rather than one per call: a panic in a work function is an Oops of the
// worker, which finishes the item and reports true to be called again;
// runtime.Goexit in one ends the worker (goexit).
func (wk *worker) runItems(c *kernel.Ctx) (again bool) {
	p := wk.pool
	normal := false
	defer func() {
		wk.guarded = false
		if normal {
			return
		}
		r := recover()
		if !wk.inFn {
			if r != nil {
				panic(r) // not from a work function: the worker's own
			}
			return
		}
		wk.inFn = false
		if r == nil {
			wk.goexit(c) // runtime.Goexit: the goroutine ends
			return
		}
		kernel.RecoverCallback(c, r, "workqueue: work function "+funcName(wk.currentFn))
		wk.finish(c)
		again = true
	}()
	wk.guarded = true
	for {
		switch w := p.worklist.head; {
		case !wk.scheduled.empty():
			wk.processScheduledWorks(c)
		case w != nil && w.qflags&qLinked == 0 && (len(p.busy) == 1 && p.busy[0] == wk || p.findWorkerExecuting(w) == nil):
			// runNext's common case, without the call: an item with
			// nothing linked that no other worker runs. What a flush
			// of it scheduled behind it meanwhile runs now, as in
			// runNext, before keepWorking may end the loop.
			wk.processOneWork(c, w)
			if !wk.scheduled.empty() {
				wk.processScheduledWorks(c)
			}
		default:
			wk.runNext(c)
		}
		if !p.keepWorking() || c.Dying() {
			break
		}
	}
	normal = true
	return false
}

// leakedAtomic reports a work function that returned with a raised
// preempt count and restores it.
func leakedAtomic(c *kernel.Ctx, fn Func, before uint32) {
	kernel.Report(c, printk.LevelErr, []string{
		"BUG: workqueue leaked atomic, lock or RCU: " + c.Current().Comm() + "[" + itoa(c.Current().PID()) + "]",
		"     preempt=" + hex8(c.PreemptCount()) + " lock=0->0 RCU=0->0 workfn=" + funcName(fn),
	}, true)
	unwindAtomic(c, before)
}

// release is the end of process_one_work() (pool.mu held): the worker is
// done with its item (it stays on the busy list until it goes idle).
func (wk *worker) release(c *kernel.Ctx) {
	qf := wk.currentQF
	if wk.flags.Load()&workerCPUIntensive != 0 {
		wk.clrFlags(workerCPUIntensive)
	}
	wk.clearCurrent().decNrInFlight(c, qf)
}

// clearCurrent is the worker's part of release: it forgets its item and
// counts it completed on its pwq, which it returns. Small enough to be
// inlined, so that finish does release's work without the call.
func (wk *worker) clearCurrent() *pwq {
	p := wk.currentPwq
	wk.lastFn = wk.currentFn
	wk.currentWork = nil
	wk.currentFn = nil
	wk.currentFnID = 0
	wk.currentPwq = nil
	p.stats.completed++
	return p
}

// goexit handles a work function that ended its goroutine with
// runtime.Goexit (a test's t.FailNow, say): the worker's task exits, so
// the pool forgets it — its item is released, what was scheduled behind
// it goes back to the front of the worklist, and another worker is woken
// or created — and nothing queued is lost.
func (wk *worker) goexit(c *kernel.Ctx) {
	pool := wk.pool
	pool.mu.Lock()
	wk.release(c)
	wk.leaveBusy()
	for it := wk.scheduled.tail; it != nil; it = wk.scheduled.tail {
		it.unlink()
		pool.worklist.insertBefore(pool.worklist.head, it)
	}
	if wk.flags.Load()&workerNotRunning == 0 {
		pool.nrRunning.Add(-1)
	}
	wk.flags.Store(wk.flags.Load() | workerDie | workerPrep)
	pool.nrWorkers--
	pool.detach(wk)
	pool.freeID(wk.id)
	if !pool.kick(c) && pool.needMoreWorker() && pool.nrIdle == 0 {
		pool.mu.Unlock()
		pool.createWorker(c)
		pool.mu.Lock()
		pool.kick(c)
	}
	pool.mu.Unlock()
	c.Current().SetSchedNotifier(nil)
}

// Sampling rates of the worker's clock reads.
const (
	latencySample    = 128  // one item in 128 queued to a busy pool has its queue latency measured
	clockEvery       = 16   // the cached clock is read at least every 16 items
	condReschedEvery = 1024 // real time: cond_resched every 1024 items
)

// readClock refreshes the worker's cached clock, from which the start
// times of items come: it is read at the start of a sampled item and of
// the first item after a wakeup, at the end of a sampled item and of
// every clockEvery-th item, and is otherwise late by at most the run time
// of the clockEvery-1 items before, which ran without sleeping.
func (wk *worker) readClock() {
	wk.clock = wk.pool.sys.k.Now()
	wk.clockItems = 0
	wk.clockStale = false
}

// callWorkFn calls the work function for a caller without runItems'
// recovery frame (the rescuer); a panic in it is an Oops of the worker,
// which goes on with its next item.
func callWorkFn(c *kernel.Ctx, wk *worker, fn Func, w *Work) {
	normal := false
	defer func() {
		if r := recover(); r != nil {
			kernel.RecoverCallback(c, r, "workqueue: work function "+funcName(fn))
		} else if !normal {
			wk.goexit(c) // runtime.Goexit: the goroutine ends
		}
	}()
	fn(c, w)
	normal = true
}

// unwindAtomic drops the atomic state a work function leaked (kdefer's
// difference: the kernel reports and goes on with the count left raised,
// which the next sleep then reports as "scheduling while atomic").
func unwindAtomic(c *kernel.Ctx, want uint32) {
	for c.PreemptCount()&kernel.SoftirqMask >= kernel.SoftirqDisableOffset && c.PreemptCount() > want {
		kernel.LocalBHEnable(c)
	}
	for c.PreemptCount()&kernel.PreemptMask > want&kernel.PreemptMask {
		kernel.PreemptEnable(c)
	}
	if c.PreemptCount() != want {
		kernel.SetPreemptCount(c, want)
	}
	kernel.LocalIRQEnable(c)
}

// cpuIntensiveReport is wq_cpu_intensive_report(): count the function's
// offences and print, from the fourth on with exponential backoff,
//
//	workqueue: fn hogged CPU for >20000us 4 times, consider switching to WQ_UNBOUND
func (s *system) cpuIntensiveReport(c *kernel.Ctx, fn Func, id uintptr) {
	s.wciMu.Lock()
	e := s.wci[id]
	if e == nil {
		e = &wciEnt{}
		s.wci[id] = e
	}
	e.cnt++
	cnt := e.cnt
	s.wciMu.Unlock()
	if cnt >= wqCPUIntensiveWarningThresh && isPowerOf2(cnt+1-wqCPUIntensiveWarningThresh) {
		kernel.Printk(c, printk.LevelWarning, "workqueue: %s hogged CPU for >%dus %d times, consider switching to WQ_UNBOUND\n",
			funcName(fn), s.threshUs, cnt)
	}
}

func isPowerOf2(n uint64) bool { return n != 0 && n&(n-1) == 0 }

// CPUIntensiveThresh returns wq_cpu_intensive_thresh_us of k: how long (µs)
// a concurrency-managed item may run without sleeping before it is marked
// CPU_INTENSIVE.
func CPUIntensiveThresh(k *kernel.Kernel) uint64 { return sysOf(k).threshUs }

// SetCPUIntensiveThresh sets the workqueue.cpu_intensive_thresh_us
// parameter of k (0 turns the detection off).
func SetCPUIntensiveThresh(k *kernel.Kernel, us uint64) {
	s := sysOf(k)
	s.threshUs = us
	s.threshNs = int64(us) * 1000
}

// funcName names a work function as %ps does.
func funcName(fn Func) string {
	if fn == nil {
		return "0x0"
	}
	return trace.SymbolName(trace.FuncPC(fn))
}

// CurrentWork is current_work(): the item the calling worker is running,
// or nil if c is not a workqueue worker.
func CurrentWork(c *kernel.Ctx) *Work {
	if w := currentWorker(c); w != nil {
		w.pool.mu.Lock()
		defer w.pool.mu.Unlock()
		return w.currentWork
	}
	return nil
}

// CurrentIsRescuer is current_is_workqueue_rescuer().
func CurrentIsRescuer(c *kernel.Ctx) bool {
	w := currentWorker(c)
	return w != nil && w.rescueWQ != nil
}

// SetWorkerDesc is set_worker_desc(format, …): a description of what the
// calling worker's item is about, shown in place of the workqueue's name
// after the worker's name in ps and /proc/PID/comm ("kworker/0:1+desc",
// see WorkerComm) until the worker starts its next item. At most
// WorkerDescLen-1 bytes are kept, as the kernel's buffer holds. Outside a
// workqueue worker it does nothing.
func SetWorkerDesc(c *kernel.Ctx, desc string) {
	if len(desc) >= WorkerDescLen {
		desc = desc[:WorkerDescLen-1]
	}
	if w := currentWorker(c); w != nil {
		w.pool.mu.Lock()
		w.desc, w.descWQ = desc, nil // the next item sets its own
		w.pool.mu.Unlock()
	}
}

// ScheduleOnEachCPU is schedule_on_each_cpu(fn): run fn on every CPU
// through System and wait until all have run. It returns 0.
func ScheduleOnEachCPU(c *kernel.Ctx, fn Func) int {
	n := c.Kernel().NumCPUs()
	works := make([]Work, n)
	for cpu := range works {
		Init(&works[cpu], fn)
		ScheduleWorkOn(c, cpu, &works[cpu])
	}
	for cpu := range works {
		FlushWork(c, &works[cpu])
	}
	return 0
}

// ExecuteInProcessContext is execute_in_process_context(fn, ew): outside
// interrupt context fn runs at once (on &ew.Work) and 0 is returned;
// otherwise it is scheduled on System and 1 returned.
func ExecuteInProcessContext(c *kernel.Ctx, fn Func, ew *ExecuteWork) int {
	if !c.InInterrupt() {
		fn(c, &ew.Work)
		return 0
	}
	Init(&ew.Work, fn)
	ScheduleWork(c, &ew.Work)
	return 1
}
