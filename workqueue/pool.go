package workqueue

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

// Worker flags (enum worker_flags).
const (
	workerDie          = 1 << 1 // WORKER_DIE
	workerIdle         = 1 << 2 // WORKER_IDLE
	workerPrep         = 1 << 3 // WORKER_PREP
	workerCPUIntensive = 1 << 6 // WORKER_CPU_INTENSIVE
	workerUnbound      = 1 << 7 // WORKER_UNBOUND
	workerRebound      = 1 << 8 // WORKER_REBOUND

	workerNotRunning = workerPrep | workerCPUIntensive | workerUnbound | workerRebound
)

// Pool constants (kernel/workqueue.c).
const (
	// maxIdleWorkersRatio is MAX_IDLE_WORKERS_RATIO: a quarter of the
	// busy workers may stay idle.
	maxIdleWorkersRatio = 4
	// idleWorkerTimeoutSec is IDLE_WORKER_TIMEOUT, 300 * HZ: idle workers
	// beyond the allowance are reaped after 5 minutes.
	idleWorkerTimeoutSec = 300
	// highpriNice is HIGHPRI_NICE_LEVEL (MIN_NICE).
	highpriNice = -20
	// bhWorkerRestarts is BH_WORKER_RESTARTS.
	bhWorkerRestarts = 10
)

// workerPool is struct worker_pool: a shared set of workers executing the
// items of every workqueue that feeds it. Each CPU has four — BH normal
// and high priority (a pseudo-worker running in softirq context), normal
// and high priority (kworker/N:M, kworker/N:MH) — and there is one unbound
// pool per priority (kworker/uP:M).
type workerPool struct {
	// Set when the pool is made: queue_work reads these without the
	// lock on every item, so they do not share a cache line with the
	// lock and the worklist, which the worker writes on every item (a
	// queuer's read there costs the worker's next locked operation a
	// cache-line round trip between the cores).
	sys  *system
	tr   *trace.Tracer // the kernel's, cached for the tracepoints
	id   int
	cpu  int // -1 for unbound pools
	nice int
	bh   bool
	// disassociated is POOL_DISASSOCIATED: workers are WORKER_UNBOUND
	// and not concurrency managed (unbound and BH pools).
	disassociated bool
	virtual       bool // the kernel runs in virtual time
	_             [64]byte

	mu sync.Mutex // pool->lock
	// Guarded by mu.
	worklist  wlist
	nrWorkers int
	nrIdle    int
	idle      workerList // LIFO: the most recently idle worker first
	// busy is busy_hash: the workers that execute an item. A worker
	// joins it with its first item and stays in it between items
	// (currentWork nil) until it goes idle, so every reader matches on
	// currentWork or currentPwq.
	busy      []*worker
	workers   []*worker // attached workers
	manager   *worker
	managing  bool   // POOL_MANAGER_ACTIVE
	ids       []bool // worker_ida
	tickArmed bool
	handoff   handoff // how an idle real-time worker waits (handoff.go)

	idleTimer   timer.Timer
	maydayTimer timer.Timer
	tickTimer   timer.Timer // wq_worker_tick's stand-in (CPU-intensive detection)
	tickKick    *time.Timer // real time: raises TIMER_SOFTIRQ for tickTimer (see modTick)
	idleCull    Work

	online atomic.Bool // the first worker exists
	bring  sync.Mutex

	// nrRunning is nr_running: the concurrency-managed workers running
	// (not sleeping, not NOT_RUNNING). Written under mu; queueFast reads
	// it without the lock.
	nrRunning atomic.Int32

	// data is poolData(p): what work->data holds for an item of the pool.
	data uint64

	// The lock-free side of queueing (queueFast), on cache lines of its
	// own: queuers write them, the worker reads them once per batch.
	_ [64]byte
	// incoming holds items queued without the lock, newest first,
	// linked through Work.next; splice moves them to their lists under
	// mu, in queueing order. Every path that looks at queued items
	// takes the lock with lock(), which splices.
	incoming atomic.Pointer[Work]
	// sampleSeq picks the items of queueFast whose queue latency is
	// measured (one in latencySample).
	sampleSeq atomic.Uint32
	_         [64]byte
}

// worker is struct worker: a kworker task (or the BH pseudo-worker, or a
// rescuer) and what it is executing.
type worker struct {
	pool  *workerPool // changes only for a rescuer (attach/detach)
	task  *kernel.Task
	id    int
	flags atomic.Uint32 // WORKER_* (written under pool.mu)

	// Guarded by pool.mu.
	currentWork  *Work
	currentFn    Func
	currentFnID  uintptr
	currentPwq   *pwq
	currentQF    uint16 // the current item's qflags (its flush color, inactive or not)
	startAt      int64  // when the current item started (kdefer's clock estimate, see readClock)
	sampled      bool   // the current item's queue latency is measured
	scheduled    wlist
	desc         string
	descWQ       *Workqueue // the workqueue whose name desc is (nil after set_worker_desc)
	lastActive   uint64
	lastFn       Func
	inext, iprev *worker
	onIdle       bool

	// CPU-hog detection (guarded by pool.mu): execGen changes whenever
	// the worker starts an item or wakes up (the kernel's current_at
	// reset); the pool's tick notes when it first saw each generation.
	execGen  uint32
	tickGen  uint32
	tickSeen int64

	// The worker's cached clock (its own goroutine only): read at the
	// end of every clockEvery-th item, after every wakeup, and for
	// sampled items (see readClock).
	clock        int64
	clockItems   int
	waited       int // how it waited for its next item (waitedPoll, waitedPark), until that item starts
	clockStale   bool
	sinceResched int

	sleeping atomic.Bool
	inBusy   bool // on pool.busy (guarded by pool.mu)

	// Own goroutine only: the work function is called under runItems'
	// recovery frame (guarded), is running (inFn), and the preempt
	// count before it (checked for leaks after it).
	guarded, inFn bool
	preemptBefore uint32

	rescueWQ *Workqueue
	// attached is the pool a rescuer is attached to (nil between its
	// visits), set and cleared under that pool's lock, for WorkerComm: a
	// rescuer's pool changes, the other workers' never does.
	attached atomic.Pointer[workerPool]

	warnedFlushDep bool // its item's check_flush_dependency warning is out (own goroutine)
}

// workerList is the intrusive idle list of a pool.
type workerList struct{ head, tail *worker }

func (l *workerList) pushFront(w *worker) {
	w.iprev, w.inext = nil, l.head
	if l.head != nil {
		l.head.iprev = w
	} else {
		l.tail = w
	}
	l.head = w
	w.onIdle = true
}

func (l *workerList) remove(w *worker) {
	if !w.onIdle {
		return
	}
	if w.iprev != nil {
		w.iprev.inext = w.inext
	} else {
		l.head = w.inext
	}
	if w.inext != nil {
		w.inext.iprev = w.iprev
	} else {
		l.tail = w.iprev
	}
	w.inext, w.iprev, w.onIdle = nil, nil, false
}

func newPool(s *system, id, cpu, nice int, bh bool) *workerPool {
	p := &workerPool{sys: s, tr: s.k.Tracer(), id: id, cpu: cpu, nice: nice, bh: bh, disassociated: cpu < 0 || bh}
	p.data = poolData(p)
	p.virtual = s.k.Virtual()
	timer.Setup(nil, &p.idleTimer, p.idleWorkerTimeout, timer.FlagDeferrable)
	timer.Setup(nil, &p.maydayTimer, p.maydayTimeout, 0)
	tickFlags := uint32(0)
	if !p.virtual && !p.disassociated {
		// Real time: the tick is deferrable, so that the CPU does not
		// wait for it precisely, and a Go timer raises the timer softirq
		// that runs it (see modTick).
		tickFlags = timer.FlagDeferrable | timer.FlagPinned
		p.tickKick = time.AfterFunc(time.Hour, p.kickTick)
		p.tickKick.Stop()
	}
	timer.Setup(nil, &p.tickTimer, p.tick, tickFlags)
	Init(&p.idleCull, p.idleCullFn)
	return p
}

// lock takes pool.mu and moves the items queued without it to their
// lists (splice), so that the caller sees every queued item.
func (p *workerPool) lock() {
	p.mu.Lock()
	if p.incoming.Load() != nil {
		p.splice()
	}
}

// --- policy functions (called with pool.mu held) ---

// hasWork reports items on the worklist or still to be spliced onto it.
// The incoming chain is read only when the worklist is empty: the queuers
// write its cache line.
func (p *workerPool) hasWork() bool { return !p.worklist.empty() || p.incoming.Load() != nil }

func (p *workerPool) needMoreWorker() bool  { return p.nrRunning.Load() == 0 && p.hasWork() }
func (p *workerPool) mayStartWorking() bool { return p.nrIdle > 0 }
func (p *workerPool) keepWorking() bool     { return p.nrRunning.Load() <= 1 && p.hasWork() }
func (p *workerPool) needToCreateWorker() bool {
	return p.needMoreWorker() && !p.mayStartWorking()
}

// tooManyWorkers is too_many_workers(): the manager counts as idle.
func (p *workerPool) tooManyWorkers() bool {
	nrIdle := p.nrIdle
	if p.managing {
		nrIdle++
	}
	nrBusy := p.nrWorkers - nrIdle
	return nrIdle > 2 && (nrIdle-2)*maxIdleWorkersRatio >= nrBusy
}

// setFlags is worker_set_flags(): entering NOT_RUNNING drops nr_running.
func (w *worker) setFlags(flags uint32) {
	p := w.pool
	old := w.flags.Load()
	if flags&workerNotRunning != 0 && old&workerNotRunning == 0 {
		p.nrRunning.Add(-1)
	}
	w.flags.Store(old | flags)
}

// clrFlags is worker_clr_flags(): leaving NOT_RUNNING raises nr_running.
func (w *worker) clrFlags(flags uint32) {
	p := w.pool
	old := w.flags.Load()
	nw := old &^ flags
	w.flags.Store(nw)
	if flags&workerNotRunning != 0 && old&workerNotRunning != 0 && nw&workerNotRunning == 0 {
		p.nrRunning.Add(1)
	}
}

func (p *workerPool) firstIdleWorker() *worker { return p.idle.head }

// enterIdle is worker_enter_idle().
func (p *workerPool) enterIdle(c *kernel.Ctx, w *worker) {
	if w.flags.Load()&workerIdle != 0 {
		return
	}
	w.flags.Store(w.flags.Load() | workerIdle)
	p.nrIdle++
	w.lastActive = p.sys.k.Jiffies()
	p.idle.pushFront(w)
	if p.tooManyWorkers() && !timer.Pending(&p.idleTimer) {
		timer.Mod(p.ctxFor(c), &p.idleTimer, p.sys.k.Jiffies()+idleWorkerTimeoutSec*uint64(p.sys.k.HZ()))
	}
}

// leaveIdle is worker_leave_idle().
func (p *workerPool) leaveIdle(w *worker) {
	if w.flags.Load()&workerIdle == 0 {
		return
	}
	w.clrFlags(workerIdle)
	p.nrIdle--
	p.idle.remove(w)
}

// ctxFor returns c, or a context to arm the pool's timers from when the
// caller has none at hand (the pool's CPU's idle context, which the timer
// code only reads the CPU and clock from).
func (p *workerPool) ctxFor(c *kernel.Ctx) *kernel.Ctx {
	if c != nil {
		return c
	}
	cpu := p.cpu
	if cpu < 0 {
		cpu = 0
	}
	return p.sys.k.IdleCtx(cpu)
}

// findWorkerExecuting is find_worker_executing_work(): the worker of the
// pool executing w (matched by address and function), or nil.
func (p *workerPool) findWorkerExecuting(w *Work) *worker {
	for _, wk := range p.busy {
		if wk.currentWork == w && wk.currentFnID == w.fnID {
			return wk
		}
	}
	return nil
}

// leaveBusy takes w off its pool's busy list, between items (pool.mu
// held).
func (w *worker) leaveBusy() {
	if !w.inBusy {
		return
	}
	w.inBusy = false
	p := w.pool
	for i, b := range p.busy {
		if b == w {
			last := len(p.busy) - 1
			p.busy[i] = p.busy[last]
			p.busy[last] = nil
			p.busy = p.busy[:last]
			return
		}
	}
}

// assignWork is assign_work(): w and its linked items go to wk's scheduled
// list, or to the worker already executing w in this pool (non-reentrancy).
// It returns whether wk got them, and the item after the last one moved.
func (p *workerPool) assignWork(w *Work, wk *worker) (bool, *Work) {
	if collision := p.findWorkerExecuting(w); collision != nil {
		return false, moveLinkedWorks(w, &collision.scheduled)
	}
	return true, moveLinkedWorks(w, &wk.scheduled)
}

// kick is kick_pool(): wake the first idle worker if the pool needs one. c
// is the caller's context (nil where there is none); a BH pool raises its
// softirq instead.
func (p *workerPool) kick(c *kernel.Ctx) bool {
	t, kicked := p.kickLater(c)
	if t != nil {
		p.sys.k.WakeUpProcess(t)
	}
	return kicked
}

// kickLater is kick() leaving the wakeup of the chosen worker's task to
// the caller, to do once it has dropped pool.mu: the worker then does not
// find its waker holding the lock it takes first. It reports whether the
// pool was kicked.
func (p *workerPool) kickLater(c *kernel.Ctx) (*kernel.Task, bool) {
	if !p.needMoreWorker() {
		return nil, false
	}
	w := p.firstIdleWorker()
	if w == nil {
		return nil, false
	}
	if p.bh {
		p.kickBH(c)
		return nil, true
	}
	return w.task, true
}

// kickBH is kick_bh_pool(): raise TASKLET_SOFTIRQ (HI_SOFTIRQ for the
// high-priority pool) on the pool's CPU — locally, or through the stand-in
// for the kernel's irq_work on another CPU.
func (p *workerPool) kickBH(c *kernel.Ctx) {
	nr := kernel.TaskletSoftirq
	if p.nice == highpriNice {
		nr = kernel.HISoftirq
	}
	if c != nil && c.CPU() == p.cpu {
		kernel.RaiseSoftirqIrqoff(c, nr)
		return
	}
	p.sys.k.RaiseSoftirqOn(p.cpu, nr)
}

// workerName is format_worker_id().
func (p *workerPool) workerName(w *worker) string {
	switch {
	case w.rescueWQ != nil:
		return "kworker/R-" + w.rescueWQ.name
	case p.cpu >= 0:
		h := ""
		if p.nice < 0 {
			h = "H"
		}
		return fmt.Sprintf("kworker/%d:%d%s", p.cpu, w.id, h)
	}
	return fmt.Sprintf("kworker/u%d:%d", p.id, w.id)
}

func (p *workerPool) allocID() int {
	for i, used := range p.ids {
		if !used {
			p.ids[i] = true
			return i
		}
	}
	p.ids = append(p.ids, true)
	return len(p.ids) - 1
}

func (p *workerPool) freeID(id int) {
	if id >= 0 && id < len(p.ids) {
		p.ids[id] = false
	}
}

// bringUp creates the pool's first worker on first use (the kernel creates
// it at boot, in workqueue_init; kdefer starts no goroutine before a pool
// is needed).
func (p *workerPool) bringUp(c *kernel.Ctx) {
	p.bring.Lock()
	defer p.bring.Unlock()
	if p.online.Load() {
		return
	}
	p.createWorker(c)
	p.online.Store(true)
}

// createWorker is create_worker(): a new worker attached to the pool and
// idle, its task started. It reports false if the task could not be
// created (the kernel is shutting down, or a test made it fail).
func (p *workerPool) createWorker(c *kernel.Ctx) bool {
	s := p.sys
	p.mu.Lock()
	id := p.allocID()
	p.mu.Unlock()
	w := &worker{pool: p, id: id}
	w.flags.Store(workerPrep)
	if !p.bh {
		if s.failCreate != nil && s.failCreate(p) {
			p.mu.Lock()
			p.freeID(id)
			p.mu.Unlock()
			return false
		}
		t, err := s.k.CreateTask(kernel.TaskOpts{Comm: p.workerName(w), Kthread: true, CPU: p.cpu}, w.thread)
		if err != nil {
			p.mu.Lock()
			p.freeID(id)
			p.mu.Unlock()
			return false
		}
		w.task = t
		t.SetPrivate(w)
		t.SetSchedNotifier(w)
	}
	p.mu.Lock()
	p.attach(w)
	p.nrWorkers++
	p.enterIdle(c, w)
	if w.task != nil {
		s.k.WakeUpProcess(w.task)
	}
	p.mu.Unlock()
	return true
}

// attach is worker_attach_to_pool() (with pool.mu held). Only a rescuer
// changes pools: a pool's own workers are made with it.
func (p *workerPool) attach(w *worker) {
	if p.disassociated {
		w.flags.Store(w.flags.Load() | workerUnbound)
	}
	p.workers = append(p.workers, w)
	if w.rescueWQ != nil {
		w.pool = p
		w.attached.Store(p)
	}
}

// detach is worker_detach_from_pool() (with pool.mu held).
func (p *workerPool) detach(w *worker) {
	for i, x := range p.workers {
		if x == w {
			p.workers = append(p.workers[:i], p.workers[i+1:]...)
			break
		}
	}
	w.flags.Store(w.flags.Load() &^ (workerUnbound | workerRebound))
	if w.rescueWQ != nil {
		w.attached.Store(nil)
	}
}

// thread is worker_thread(): the body of a kworker.
func (w *worker) thread(c *kernel.Ctx) int {
	p := w.pool
	for {
		p.mu.Lock()
		if w.flags.Load()&workerDie != 0 || c.Dying() {
			w.exit(c)
			return 0
		}
		p.leaveIdle(w)
		w.clockStale = true
	recheck:
		if !p.needMoreWorker() {
			goto sleep
		}
		if !p.mayStartWorking() && p.manageWorkers(c, w) {
			goto recheck
		}
		w.clrFlags(workerPrep | workerRebound)
	work:
		for w.runItems(c) {
		}
		if w.pollIncoming(c) {
			goto work
		}
		w.setFlags(workerPrep)
		w.leaveBusy()
		// nr_running went down: an item that queueFast pushed after
		// keepWorking looked, while its queuer still saw this worker
		// running, is left to the pool's workers.
		if p.incoming.Load() != nil && !c.Dying() {
			goto recheck
		}
	sleep:
		p.enterIdle(c, w)
		kernel.SetCurrentState(c, kernel.TaskIdle)
		if w.measuresHandoff() {
			if p.handoff.polls() {
				// Schedule spins for its wakeup before it parks: the
				// first item's latency may be a poll's or a parked
				// worker's wakeup, so it is not measured.
				w.waited = waitedNone
				p.mu.Unlock()
				kernel.Schedule(c)
			} else {
				w.waited = waitedPark
				p.mu.Unlock()
				kernel.ScheduleNoSpin(c)
			}
			continue
		}
		p.mu.Unlock()
		kernel.Schedule(c)
	}
}

// measuresHandoff reports whether w is a real-time concurrency-managed
// worker, whose way of waiting for work the pool's handoff chooses.
func (w *worker) measuresHandoff() bool {
	p := w.pool
	return !p.virtual && w.task != nil && !p.disassociated
}

// workerPoll is how long a real-time concurrency-managed worker whose
// pool ran out of items keeps polling for new ones before it goes idle.
const workerPoll = 2 * time.Microsecond

// pollIncoming is kdefer's short busy poll of a real-time worker whose
// pool has run out of items (pool.mu held; released and retaken): still
// counted in nr_running, so that queue_work takes its lock-free path, it
// watches the incoming chain for up to workerPoll. An item queued within
// that time starts without a wakeup. It reports whether there is work
// again. The worker is running meanwhile, as a task spinning before it
// sleeps is. It does not poll while the pool's handoff has found
// parking at once the faster way.
func (w *worker) pollIncoming(c *kernel.Ctx) bool {
	p := w.pool
	k := p.sys.k
	if !w.measuresHandoff() || c.Dying() || w.flags.Load()&workerNotRunning != 0 || p.nrRunning.Load() != 1 || !p.handoff.polls() {
		return false
	}
	p.mu.Unlock()
	end := k.Now() + int64(workerPoll)
	for i := 1; p.incoming.Load() == nil; i++ {
		if i&63 == 0 && k.Now() > end {
			break
		}
	}
	p.mu.Lock()
	if p.keepWorking() && !c.Dying() {
		w.waited = waitedPoll
		return true
	}
	return false
}

// exit is the WORKER_DIE path of worker_thread (pool.mu held; released).
func (w *worker) exit(c *kernel.Ctx) {
	p := w.pool
	if w.flags.Load()&workerDie == 0 {
		// The kernel is going down: leave the pool's books as they are,
		// minus this worker.
		p.leaveIdle(w)
		p.nrWorkers--
	}
	w.leaveBusy()
	p.detach(w)
	p.freeID(w.id)
	p.mu.Unlock()
	c.Current().SetSchedNotifier(nil)
}

// manageWorkers is manage_workers(): become the pool's manager and make
// sure an idle worker exists. It reports whether it managed.
func (p *workerPool) manageWorkers(c *kernel.Ctx, w *worker) bool {
	if p.managing {
		return false
	}
	p.managing = true
	p.manager = w
	p.maybeCreateWorker(c)
	p.manager = nil
	p.managing = false
	return true
}

// maybeCreateWorker is maybe_create_worker() (pool.mu held, released and
// retaken): create workers until one is idle; if that takes longer than
// MAYDAY_INITIAL_TIMEOUT, the mayday timer calls the rescuers.
func (p *workerPool) maybeCreateWorker(c *kernel.Ctx) {
	k := p.sys.k
	for {
		p.mu.Unlock()
		timer.Mod(c, &p.maydayTimer, k.Jiffies()+maydayInitialTimeout(k.HZ()))
		for {
			if p.createWorker(c) || !p.needToCreateWorkerLocked() || c.Dying() {
				break
			}
			delay.ScheduleTimeoutInterruptible(c, int64(k.HZ())) // CREATE_COOLDOWN
			if !p.needToCreateWorkerLocked() || c.Dying() {
				break
			}
		}
		timer.DeleteSync(c, &p.maydayTimer)
		p.mu.Lock()
		if !p.needToCreateWorker() || c.Dying() {
			return
		}
	}
}

func (p *workerPool) needToCreateWorkerLocked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.needToCreateWorker()
}

// maydayInitialTimeout is MAYDAY_INITIAL_TIMEOUT: HZ/100, at least 2.
func maydayInitialTimeout(hz jiffies.HZ) uint64 {
	if hz/100 >= 2 {
		return uint64(hz / 100)
	}
	return 2
}

// runNext runs the first item of the pool's worklist (pool.mu held): the
// loop body of worker_thread(). The items queued without the lock join
// the worklist when it runs dry (there may then be none to run: max_active
// may keep them inactive). An item with nothing linked to it that no
// other worker is executing runs straight off the worklist (the kernel's
// old "optimization path"); otherwise assign_work() moves it, with its
// linked barriers, to this worker's scheduled list or to the worker
// already executing it.
func (w *worker) runNext(c *kernel.Ctx) {
	p := w.pool
	first := p.worklist.head
	if first == nil {
		p.splice()
		if first = p.worklist.head; first == nil {
			return
		}
	}
	if first.qflags&qLinked == 0 && p.findWorkerExecuting(first) == nil {
		w.processOneWork(c, first)
		if !w.scheduled.empty() {
			w.processScheduledWorks(c)
		}
		return
	}
	if ok, _ := p.assignWork(first, w); ok {
		w.processScheduledWorks(c)
	}
}

// processScheduledWorks is process_scheduled_works() (pool.mu held).
func (w *worker) processScheduledWorks(c *kernel.Ctx) {
	first := true
	for w.scheduled.head != nil {
		if first {
			first = false // the kernel stamps pool->watchdog_ts here (no watchdog in kdefer)
		}
		w.processOneWork(c, w.scheduled.head)
	}
}

// --- scheduler notifier: concurrency management ---

// Sleeping is wq_worker_sleeping(): a busy, concurrency-managed worker is
// about to block, so the pool loses a running worker and, if items wait,
// another one is woken to run them.
func (w *worker) Sleeping(*kernel.Task) {
	if w.flags.Load()&workerNotRunning != 0 || w.sleeping.Load() {
		return
	}
	w.sleeping.Store(true)
	p := w.pool
	p.mu.Lock()
	if w.flags.Load()&workerNotRunning != 0 {
		p.mu.Unlock()
		return
	}
	p.nrRunning.Add(-1)
	if p.kick(nil) && w.currentPwq != nil {
		w.currentPwq.stats.cmWakeups++
	}
	p.mu.Unlock()
}

// Running is wq_worker_running(): the worker runs again; it counts in
// nr_running again and its CPU-hog clock restarts.
func (w *worker) Running(t *kernel.Task) {
	if !w.sleeping.Load() {
		return
	}
	w.clockStale = true
	p := w.pool
	if w.flags.Load()&workerNotRunning == 0 {
		p.mu.Lock()
		if w.flags.Load()&workerNotRunning == 0 {
			p.nrRunning.Add(1)
		}
		w.execGen++
		if w.currentWork != nil {
			p.armTick(t.Ctx())
		}
		p.mu.Unlock()
	}
	w.sleeping.Store(false)
}

// --- CPU-intensive detection (wq_worker_tick) ---

// armTick arms the pool's tick, the stand-in for the scheduler tick that
// calls wq_worker_tick(): it runs every tickPeriod while a
// concurrency-managed worker of the pool runs an item (pool.mu held).
func (p *workerPool) armTick(c *kernel.Ctx) {
	if p.tickArmed || p.disassociated || p.sys.threshNs <= 0 {
		return
	}
	p.tickArmed = true
	p.modTick(p.ctxFor(c))
}

// modTick arms the tick timer tickPeriod from now (pool.mu held). In real
// time the timer is deferrable: a real-time CPU waits for its next
// non-deferrable timer with nanosleep and a spin (kernel/cpu.go), which
// would hold one of the program's processors for most of every tick
// period while items run — a stall of 2 µs or more for every other
// goroutine queued behind it, such as the queuers of the pool. Instead
// the Go runtime's timer (millisecond resolution, nothing held while it
// waits) raises TIMER_SOFTIRQ on the pool's CPU once the tick is due: the
// tick comes up to a millisecond late, which the CPU-hog threshold
// (10 ms by default) does not mind.
func (p *workerPool) modTick(c *kernel.Ctx) {
	k := p.sys.k
	exp := k.Jiffies() + p.sys.tickPeriod()
	timer.Mod(c, &p.tickTimer, exp)
	if p.tickKick != nil {
		// The wheel runs a timer at the end of its expiry jiffy (its
		// level-0 bucket is expires+1).
		p.tickKick.Reset(time.Duration(k.JiffiesToNs(exp+1)-k.Now()) + tickKickSlack)
	}
}

// tickKickSlack is how long after the tick's bucket is due the Go timer
// raises the softirq, so that kdefer's clock has reached that jiffy when
// the softirq looks (the Go timer never fires early, but kdefer's clock
// and the runtime's may differ by a few ns).
const tickKickSlack = 20 * time.Microsecond

// kickTick is the Go timer of a real-time tick (see modTick): it raises
// TIMER_SOFTIRQ on the pool's CPU, and looks again a jiffy later for as
// long as the tick timer is still pending (its bucket may lie past the
// expected jiffy: on the wheel's higher levels, up to the level's
// granularity; or the softirq has not run yet).
func (p *workerPool) kickTick() {
	k := p.sys.k
	if k.ShuttingDown() || !timer.Pending(&p.tickTimer) {
		return
	}
	k.RaiseSoftirqOn(p.cpu, kernel.TimerSoftirq)
	p.tickKick.Reset(time.Duration(k.TickNsec()))
}

// tickPeriod is the period of the pool's tick in jiffies: an eighth of the
// CPU-hog threshold, at least one jiffy. (The kernel checks at every
// scheduler tick; a kdefer CPU sleeps between its events, and waking it
// every jiffy while items run would cost more than the items.)
func (s *system) tickPeriod() uint64 {
	t := s.k.TickNsec()
	return uint64(max((s.threshNs/8+t-1)/t, 1))
}

// tick is wq_worker_tick() for every busy worker of the pool: a
// concurrency-managed worker that has run an item for
// wq_cpu_intensive_thresh_us without sleeping is marked CPU_INTENSIVE (it no
// longer counts in nr_running, so the pool's other items get a worker), its
// function is reported, and the pool kicked. A run is timed from the tick
// that first saw it (the kernel reads the task's exact runtime at each
// scheduler tick): the mark comes after the threshold, late by less than
// two tick periods (in real time, plus up to a millisecond each: see
// modTick).
func (p *workerPool) tick(c *kernel.Ctx, _ *timer.Timer) {
	s := p.sys
	k := s.k
	p.mu.Lock()
	p.tickArmed = false
	now := k.Now()
	again := false
	for _, w := range p.busy {
		if w.flags.Load()&workerNotRunning != 0 || w.sleeping.Load() || w.currentPwq == nil {
			continue
		}
		if w.tickGen != w.execGen {
			w.tickGen = w.execGen
			w.tickSeen = now
		}
		if now-w.tickSeen < s.threshNs {
			again = true
			continue
		}
		w.setFlags(workerCPUIntensive)
		s.cpuIntensiveReport(c, w.currentFn, w.currentFnID)
		w.currentPwq.stats.cpuIntensive++
		if p.kick(c) {
			w.currentPwq.stats.cmWakeups++
		}
	}
	if again {
		p.tickArmed = true
		p.modTick(c)
	}
	p.mu.Unlock()
}

// --- idle worker reaping ---

// idleWorkerTimeout is idle_worker_timeout(): if too many workers have been
// idle for IDLE_WORKER_TIMEOUT, queue the pool's cull work on
// system_unbound_wq; otherwise re-arm for the oldest idle worker.
func (p *workerPool) idleWorkerTimeout(c *kernel.Ctx, _ *timer.Timer) {
	if Pending(&p.idleCull) {
		return
	}
	k := p.sys.k
	doCull := false
	p.mu.Lock()
	if p.tooManyWorkers() && p.idle.tail != nil {
		expires := p.idle.tail.lastActive + idleWorkerTimeoutSec*uint64(k.HZ())
		doCull = !jiffies.TimeBefore(k.Jiffies(), expires)
		if !doCull {
			timer.Mod(c, &p.idleTimer, expires)
		}
	}
	p.mu.Unlock()
	if doCull {
		QueueWork(c, SystemUnbound(k), &p.idleCull)
	}
}

// idleCullFn is idle_cull_fn(): the workers idle for longer than
// IDLE_WORKER_TIMEOUT, beyond the allowance, are told to die and reaped.
func (p *workerPool) idleCullFn(c *kernel.Ctx, _ *Work) {
	k := p.sys.k
	var cull []*worker
	p.mu.Lock()
	for p.tooManyWorkers() && p.idle.tail != nil {
		w := p.idle.tail
		expires := w.lastActive + idleWorkerTimeoutSec*uint64(k.HZ())
		if jiffies.TimeBefore(k.Jiffies(), expires) {
			timer.Mod(c, &p.idleTimer, expires)
			break
		}
		// set_worker_dying
		p.nrWorkers--
		p.nrIdle--
		p.idle.remove(w)
		w.flags.Store(w.flags.Load() | workerDie)
		cull = append(cull, w)
	}
	p.mu.Unlock()
	for _, w := range cull {
		// reap_dying_workers: kthread_stop_put
		k.WakeUpProcess(w.task)
		kernel.WaitTaskExit(c, w.task)
	}
}

// --- the rescuer ---

// maydayTimeout is pool_mayday_timeout(): worker creation is stuck, so the
// rescuers of the workqueues with items on the pool are called.
func (p *workerPool) maydayTimeout(c *kernel.Ctx, _ *timer.Timer) {
	s := p.sys
	p.lock()
	s.maydayMu.Lock()
	if p.needToCreateWorker() {
		for w := p.worklist.head; w != nil; w = w.next {
			s.sendMayday(w.pwq)
		}
	}
	s.maydayMu.Unlock()
	p.mu.Unlock()
	timer.Mod(c, &p.maydayTimer, s.k.Jiffies()+maydayInterval(s.k.HZ()))
}

// maydayInterval is MAYDAY_INTERVAL: HZ/10.
func maydayInterval(hz jiffies.HZ) uint64 { return max(uint64(hz/10), 1) }

// sendMayday is send_mayday() (wq_mayday_lock held).
func (s *system) sendMayday(pwq *pwq) {
	wq := pwq.wq
	if wq.rescuer == nil || pwq.onMayday {
		return
	}
	pwq.onMayday = true
	wq.maydays = append(wq.maydays, pwq)
	s.k.WakeUpProcess(wq.rescuer.task)
	pwq.stats.mayday++
}

// rescuerThread is rescuer_thread(): the WQ_MEM_RECLAIM workqueue's
// kworker/R-name, which runs that workqueue's items on pools that cannot
// get a new worker.
func (w *worker) rescuerThread(c *kernel.Ctx) int {
	wq := w.rescueWQ
	s := wq.sys
	for {
		kernel.SetCurrentState(c, kernel.TaskIdle)
		shouldStop := c.KthreadShouldStop() || c.Dying()
		s.maydayMu.Lock()
		for len(wq.maydays) > 0 {
			pwq := wq.maydays[0]
			wq.maydays = wq.maydays[1:]
			pwq.onMayday = false
			kernel.SetCurrentState(c, kernel.TaskRunning)
			s.maydayMu.Unlock()
			p := pwq.pool
			p.lock()
			p.attach(w)
			for it := p.worklist.head; it != nil; {
				if it.pwq == pwq {
					var ok bool
					ok, it = p.assignWork(it, w)
					if ok {
						pwq.stats.rescued++
					}
					continue
				}
				it = it.next
			}
			if !w.scheduled.empty() {
				w.processScheduledWorks(c)
				if pwq.nrActive > 0 && p.needToCreateWorker() {
					s.maydayMu.Lock()
					if wq.rescuer != nil && !pwq.onMayday {
						pwq.onMayday = true
						wq.maydays = append(wq.maydays, pwq)
					}
					s.maydayMu.Unlock()
				}
			}
			p.kick(nil)
			w.leaveBusy()
			p.detach(w)
			p.mu.Unlock()
			s.maydayMu.Lock()
		}
		s.maydayMu.Unlock()
		if shouldStop {
			kernel.SetCurrentState(c, kernel.TaskRunning)
			return 0
		}
		kernel.Schedule(c)
	}
}

// --- BH pools ---

// bhWorker is bh_worker(): run the BH pool's items in softirq context, at
// most BH_WORKER_RESTARTS of them and for at most BH_WORKER_JIFFIES; what
// is left raises the softirq again.
func (p *workerPool) bhWorker(c *kernel.Ctx, w *worker) {
	k := p.sys.k
	restarts := bhWorkerRestarts
	end := k.Jiffies() + k.HZ().MsecsToJiffies(2)
	p.mu.Lock()
	p.leaveIdle(w)
	if p.needMoreWorker() {
		w.clrFlags(workerPrep | workerRebound)
		for {
			w.runNext(c)
			restarts--
			if !p.keepWorking() || restarts == 0 || !jiffies.TimeBefore(k.Jiffies(), end) {
				break
			}
		}
		w.setFlags(workerPrep)
		w.leaveBusy()
	}
	p.enterIdle(c, w)
	p.kick(c)
	p.mu.Unlock()
}
