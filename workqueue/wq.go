package workqueue

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/tasklet"
	"github.com/kdefer/kdefer/wait"
)

// Flags are the WQ_* flags of alloc_workqueue (include/linux/workqueue.h,
// values of v6.9 and later).
type Flags uint32

// Workqueue flags.
const (
	// BH is WQ_BH: items run in softirq context (TASKLET_SOFTIRQ, or
	// HI_SOFTIRQ with Highpri) on the CPU they were queued on — the
	// replacement for tasklets. Only Highpri may be combined with it, and
	// max_active must be 0. Work functions must not sleep.
	BH Flags = 1 << 0
	// Unbound is WQ_UNBOUND: items are served by the unbound pools
	// (kworker/uP:M), which are not concurrency managed: up to
	// max_active items of the workqueue run at once.
	Unbound Flags = 1 << 1
	// Freezable is WQ_FREEZABLE: FreezeWorkqueuesBegin holds its items
	// back (max_active 0) until ThawWorkqueues.
	Freezable Flags = 1 << 2
	// MemReclaim is WQ_MEM_RECLAIM: the workqueue has a rescuer thread
	// (kworker/R-name) that runs its items when a pool cannot get a new
	// worker, guaranteeing forward progress.
	MemReclaim Flags = 1 << 3
	// Highpri is WQ_HIGHPRI: the high-priority pools (nice -20; per-CPU
	// workers are named kworker/N:MH).
	Highpri Flags = 1 << 4
	// CPUIntensive is WQ_CPU_INTENSIVE: running items do not count in
	// the per-CPU pool's concurrency level.
	CPUIntensive Flags = 1 << 5
	// Sysfs is WQ_SYSFS. kdefer has no sysfs; the flag is accepted.
	Sysfs Flags = 1 << 6
	// PowerEfficient is WQ_POWER_EFFICIENT: per-CPU unless the
	// workqueue.power_efficient parameter is set; kdefer keeps the
	// default (off), so such workqueues are per-CPU.
	PowerEfficient Flags = 1 << 7
	// Percpu is WQ_PERCPU (≈v6.17): an explicit per-CPU marker.
	Percpu Flags = 1 << 8

	flagDestroying Flags = 1 << 15 // __WQ_DESTROYING
	flagDraining   Flags = 1 << 16 // __WQ_DRAINING
	flagOrdered    Flags = 1 << 17 // __WQ_ORDERED
	flagLegacy     Flags = 1 << 18 // __WQ_LEGACY
	flagClosed     Flags = 1 << 24 // kdefer: Shutdown has begun
	flagDestroyed  Flags = 1 << 25 // kdefer: destroyed
	flagCancelling Flags = 1 << 26 // kdefer: Shutdown(Cancel): chained queueing refused too

	bhAllows = BH | Highpri // __WQ_BH_ALLOWS
)

// max_active limits.
const (
	// MaxActive is WQ_MAX_ACTIVE, 2048 since v6.13 ("workqueue: Adjust
	// WQ_MAX_ACTIVE from 512 to 2048").
	MaxActive = 2048
	// DflActive is WQ_DFL_ACTIVE, MaxActive / 2: what max_active 0 means.
	DflActive = MaxActive / 2
	// UnboundMaxActive is WQ_UNBOUND_MAX_ACTIVE.
	UnboundMaxActive = MaxActive
	// DflMinActive is WQ_DFL_MIN_ACTIVE (v6.9+).
	DflMinActive = 8
	// NameLen is WQ_NAME_LEN: names are truncated to NameLen-1 bytes.
	NameLen = 32
)

// Errors.
var (
	// ErrInvalid is wrapped by the errors of calls the kernel refuses
	// with a WARN and a NULL return (alloc_workqueue of a BH workqueue
	// with other flags or a max_active).
	ErrInvalid = errors.New("workqueue: invalid argument")
	// ErrClosed is returned by Shutdown for a workqueue that was already
	// shut down or destroyed.
	ErrClosed = errors.New("workqueue: workqueue is shut down")
	// ErrTimeout is wrapped by Shutdown's error when its time ran out.
	ErrTimeout = errors.New("workqueue: shutdown timed out")
	// ErrInterrupted is wrapped by Shutdown's error when the caller's
	// context was cancelled (a signal, or an attached goroutine's parent
	// context).
	ErrInterrupted = errors.New("workqueue: shutdown interrupted")
)

// pwq is struct pool_workqueue: the link between a workqueue and a pool,
// where the workqueue's max_active, inactive items and flush colors live.
type pwq struct {
	pool *workerPool
	wq   *Workqueue
	// queue_work reads the two fields above without the pool lock while
	// the worker updates the counters below: keep them on another cache
	// line.
	_ [64]byte

	// Guarded by pool.mu.
	workColor  int
	flushColor int
	nrInFlight [NrColors]int
	nrActive   int
	inactive   wlist
	stats      pwqStats

	onMayday bool // on wq.maydays (guarded by wq_mayday_lock)
}

// Workqueue is struct workqueue_struct: a named queue of work items with
// its flags and max_active, feeding the shared worker pools. Create one
// with AllocWorkqueue (or AllocOrderedWorkqueue, CreateWorkqueue…), or use
// a system workqueue (System, SystemUnbound…).
type Workqueue struct {
	sys      *system
	name     string
	flags    atomic.Uint32
	lockName string // lockdep: "(wq_completion)name"

	mu             sync.Mutex // wq->mutex
	pwqs           []*pwq
	cpuPwq         []*pwq
	maxActive      atomic.Int32
	savedMaxActive int
	minActive      int
	workColor      int
	flushColor     int
	nrPwqsToFlush  atomic.Int32
	firstFlusher   atomic.Pointer[flusher]
	flusherQueue   []*flusher
	flusherOver    []*flusher
	nrDrainers     int
	rescuer        *worker
	maydays        []*pwq // guarded by sys.maydayMu
	system         bool   // one of the system workqueues

	// Armed delayed items queued through this workqueue (for Shutdown).
	delayedMu   sync.Mutex
	delayedHead *DelayedWork
	nrDelayed   int
	nrFiring    int // delayed items between their timer and their queueing

	// closeq wakes Shutdown when the workqueue empties.
	closeq wait.Queue
}

// Name returns the workqueue's name.
func (wq *Workqueue) Name() string { return wq.name }

// Flags returns the workqueue's flags, internal ones included (as the
// kernel's dump prints them: __WQ_ORDERED is 1<<17, __WQ_LEGACY 1<<18).
func (wq *Workqueue) Flags() Flags { return Flags(wq.flags.Load()) }

func (wq *Workqueue) has(f Flags) bool { return Flags(wq.flags.Load())&f != 0 }

// system is one kernel's workqueue state: the pools, the workqueues, the
// freezer state and the lazily created system workqueues.
type system struct {
	k  *kernel.Kernel
	mu sync.Mutex // wq_pool_mutex: wqs, freezing

	wqs      []*Workqueue
	freezing bool

	pools []*workerPool // by id: per CPU bh, bh-hi, normal, hi; then unbound nice 0, -20

	threshNs int64  // wq_cpu_intensive_thresh_us, in ns
	threshUs uint64 // wq_cpu_intensive_thresh_us

	wciMu sync.Mutex
	wci   map[uintptr]*wciEnt

	maydayMu sync.Mutex // wq_mayday_lock

	sysMu  sync.Mutex
	sysWQs [nrSystemWQs]atomic.Pointer[Workqueue]

	lockdepMu   sync.Mutex
	lockdepSeen map[string]bool

	bhOnce sync.Once

	// failCreate makes worker creation fail (tests of the rescuer).
	failCreate func(p *workerPool) bool
}

// wciEnt is struct wci_ent: how often a work function hogged its CPU.
type wciEnt struct{ cnt uint64 }

// wqCPUIntensiveWarningThresh is wq_cpu_intensive_warning_thresh (4).
const wqCPUIntensiveWarningThresh = 4

var sysKey kernel.LocalKey

func sysOf(k *kernel.Kernel) *system { return k.Local(&sysKey, newSystem).(*system) }

func newSystem(k *kernel.Kernel) any {
	n := k.NumCPUs()
	s := &system{k: k, wci: map[uintptr]*wciEnt{}, lockdepSeen: map[string]bool{}}
	s.pools = make([]*workerPool, 4*n+2)
	nices := [2]int{0, highpriNice}
	for cpu := 0; cpu < n; cpu++ {
		for i := 0; i < 2; i++ {
			s.pools[cpu*4+i] = newPool(s, cpu*4+i, cpu, nices[i], true)
			s.pools[cpu*4+2+i] = newPool(s, cpu*4+2+i, cpu, nices[i], false)
		}
	}
	for i := 0; i < 2; i++ {
		s.pools[4*n+i] = newPool(s, 4*n+i, -1, nices[i], false)
	}
	s.initCPUIntensiveThresh()
	return s
}

// initCPUIntensiveThresh is wq_cpu_intensive_thresh_init(): 10 ms, scaled
// up to at most 1 s when BogoMIPS is below 4000 (kdefer's delay loop gives
// BogoMIPS 2000, hence 20 ms).
func (s *system) initCPUIntensiveThresh() {
	thresh := uint64(10 * 1000)
	bogo := max(s.k.LoopsPerJiffy()/500000*uint64(s.k.HZ()), 1)
	if bogo < 4000 {
		thresh = min(thresh*4000/bogo, 1000000)
	}
	s.threshUs = thresh
	s.threshNs = int64(thresh) * 1000
}

// cpuPool returns the per-CPU pool of cpu (bh, highpri).
func (s *system) cpuPool(cpu int, bh, highpri bool) *workerPool {
	i := cpu * 4
	if !bh {
		i += 2
	}
	if highpri {
		i++
	}
	return s.pools[i]
}

func (s *system) unboundPool(highpri bool) *workerPool {
	i := 4 * s.k.NumCPUs()
	if highpri {
		i++
	}
	return s.pools[i]
}

// poolByID is idr_find(&worker_pool_idr, id).
func (s *system) poolByID(id int) *workerPool {
	if id < 0 || id >= len(s.pools) {
		return nil
	}
	return s.pools[id]
}

// initBH installs the BH workqueues' hook in the tasklet softirqs
// (workqueue_softirq_action).
func (s *system) initBH() {
	s.bhOnce.Do(func() {
		tasklet.SetBHHook(s.k, s.softirqAction)
	})
}

// softirqAction is workqueue_softirq_action(highpri).
func (s *system) softirqAction(c *kernel.Ctx, highpri bool) bool {
	p := s.cpuPool(c.CPU(), true, highpri)
	if !p.online.Load() {
		return false
	}
	p.mu.Lock()
	need := p.needMoreWorker()
	var w *worker
	if len(p.workers) > 0 {
		w = p.workers[0]
	}
	p.mu.Unlock()
	if !need || w == nil {
		return false
	}
	p.bhWorker(c, w)
	return true
}

// AllocWorkqueue is alloc_workqueue(name, flags, max_active): a new
// workqueue. max_active is the most items of the workqueue that may run at
// once per CPU (for an Unbound workqueue, system-wide); 0 means DflActive,
// and a value outside [1, MaxActive] is clamped with the kernel's message
//
//	workqueue: max_active 5000 requested for name is out of range, clamping between 1 and 2048
//
// Items beyond max_active wait on an inactive list and are activated in
// queueing order. A BH workqueue takes only Highpri and max_active 0 (the
// kernel WARNs and returns NULL otherwise: kdefer warns and returns an
// error wrapping ErrInvalid). With MemReclaim the rescuer thread is
// created at once; otherwise no thread exists until an item is queued.
// Names longer than NameLen-1 bytes are truncated with the kernel's
// warning.
func AllocWorkqueue(c *kernel.Ctx, name string, flags Flags, maxActive int) (*Workqueue, error) {
	s := sysOf(c.Kernel())
	if flags&BH != 0 {
		if flags&^bhAllows != 0 {
			kernel.WarnOnce(c, true, "")
			return nil, fmt.Errorf("workqueue: alloc_workqueue %q: WQ_BH takes no flag but WQ_HIGHPRI (flags %#x): %w", name, uint32(flags), ErrInvalid)
		}
		if maxActive != 0 {
			kernel.WarnOnce(c, true, "")
			return nil, fmt.Errorf("workqueue: alloc_workqueue %q: WQ_BH takes max_active 0, not %d: %w", name, maxActive, ErrInvalid)
		}
	}
	if len(name) >= NameLen {
		name = name[:NameLen-1]
		kernel.Printk(c, printk.LevelWarning, "workqueue: name exceeds WQ_NAME_LEN. Truncating to: %s\n", name)
	}
	if flags&BH != 0 {
		maxActive = 1<<31 - 1 // INT_MAX
	} else {
		if maxActive == 0 {
			maxActive = DflActive
		}
		maxActive = clampMaxActive(c, maxActive, name)
	}
	return s.newWorkqueue(c, name, flags, maxActive), nil
}

// clampMaxActive is wq_clamp_max_active().
func clampMaxActive(c *kernel.Ctx, maxActive int, name string) int {
	if maxActive < 1 || maxActive > MaxActive {
		kernel.Printk(c, printk.LevelWarning, "workqueue: max_active %d requested for %s is out of range, clamping between %d and %d\n",
			maxActive, name, 1, MaxActive)
	}
	return min(max(maxActive, 1), MaxActive)
}

func (s *system) newWorkqueue(c *kernel.Ctx, name string, flags Flags, maxActive int) *Workqueue {
	k := s.k
	wq := &Workqueue{sys: s, name: name, lockName: "(wq_completion)" + name}
	wq.flags.Store(uint32(flags))
	wq.maxActive.Store(int32(maxActive))
	wq.savedMaxActive = maxActive
	wq.minActive = min(maxActive, DflMinActive)
	n := k.NumCPUs()
	wq.cpuPwq = make([]*pwq, n)
	highpri := flags&Highpri != 0
	if flags&Unbound != 0 {
		// One pod (WQ_AFFN_SYSTEM): a single pwq on the unbound pool of
		// the workqueue's priority; ordered workqueues share it.
		p := &pwq{pool: s.unboundPool(highpri), wq: wq, flushColor: -1}
		wq.pwqs = []*pwq{p}
		for cpu := range wq.cpuPwq {
			wq.cpuPwq[cpu] = p
		}
	} else {
		for cpu := 0; cpu < n; cpu++ {
			p := &pwq{pool: s.cpuPool(cpu, flags&BH != 0, highpri), wq: wq, flushColor: -1}
			wq.pwqs = append(wq.pwqs, p)
			wq.cpuPwq[cpu] = p
		}
	}
	if flags&BH != 0 {
		s.initBH()
	}
	s.mu.Lock()
	wq.mu.Lock()
	wq.adjustMaxActiveLocked(c, s.freezing)
	wq.mu.Unlock()
	s.wqs = append(s.wqs, wq)
	s.mu.Unlock()
	if flags&MemReclaim != 0 {
		wq.initRescuer(c)
	}
	return wq
}

// initRescuer is init_rescuer(): the rescuer kthread kworker/R-name.
func (wq *Workqueue) initRescuer(c *kernel.Ctx) {
	k := wq.sys.k
	r := &worker{rescueWQ: wq, id: -1}
	r.flags.Store(workerPrep)
	t, err := k.CreateTask(kernel.TaskOpts{Comm: "kworker/R-" + wq.name, Kthread: true, CPU: -1}, r.rescuerThread)
	if err != nil {
		if c != nil {
			kernel.Printk(c, printk.LevelErr, "workqueue: Failed to create a rescuer kthread for wq \"%s\": %v", wq.name, err)
		}
		return
	}
	r.task = t
	t.SetPrivate(r)
	wq.rescuer = r
	k.WakeUpProcess(t)
}

// AllocOrderedWorkqueue is alloc_ordered_workqueue(name, flags): an
// unbound workqueue that runs one item at a time, in queueing order
// (WQ_UNBOUND | __WQ_ORDERED, max_active 1).
func AllocOrderedWorkqueue(c *kernel.Ctx, name string, flags Flags) (*Workqueue, error) {
	return AllocWorkqueue(c, name, Unbound|flagOrdered|flags, 1)
}

// CreateWorkqueue is create_workqueue(name): the legacy per-CPU workqueue
// with a rescuer and one item at a time per CPU (__WQ_LEGACY |
// WQ_MEM_RECLAIM, max_active 1).
func CreateWorkqueue(c *kernel.Ctx, name string) (*Workqueue, error) {
	return AllocWorkqueue(c, name, flagLegacy|MemReclaim, 1)
}

// CreateFreezableWorkqueue is create_freezable_workqueue(name).
func CreateFreezableWorkqueue(c *kernel.Ctx, name string) (*Workqueue, error) {
	return AllocWorkqueue(c, name, flagLegacy|Freezable|Unbound|MemReclaim, 1)
}

// CreateSinglethreadWorkqueue is create_singlethread_workqueue(name): an
// ordered workqueue with a rescuer (__WQ_LEGACY | WQ_MEM_RECLAIM).
func CreateSinglethreadWorkqueue(c *kernel.Ctx, name string) (*Workqueue, error) {
	return AllocOrderedWorkqueue(c, name, flagLegacy|MemReclaim)
}

// The system workqueues (workqueue_init_early).
const (
	sysEvents = iota
	sysHighpri
	sysLong
	sysUnbound
	sysFreezable
	sysPowerEfficient
	sysFreezablePowerEfficient
	sysBH
	sysBHHighpri
	nrSystemWQs
)

var systemWQDefs = [nrSystemWQs]struct {
	name      string
	flags     Flags
	maxActive int
}{
	sysEvents:                  {"events", 0, 0},
	sysHighpri:                 {"events_highpri", Highpri, 0},
	sysLong:                    {"events_long", 0, 0},
	sysUnbound:                 {"events_unbound", Unbound, MaxActive},
	sysFreezable:               {"events_freezable", Freezable, 0},
	sysPowerEfficient:          {"events_power_efficient", PowerEfficient, 0},
	sysFreezablePowerEfficient: {"events_freezable_pwr_efficient", Freezable | PowerEfficient, 0},
	sysBH:                      {"events_bh", BH, 0},
	sysBHHighpri:               {"events_bh_highpri", BH | Highpri, 0},
}

// systemWQ returns system workqueue i of k, creating it on first use. The
// kernel creates them all at boot; kdefer creates each when first asked
// for, and a workqueue starts no goroutine before an item is queued.
func systemWQ(k *kernel.Kernel, i int) *Workqueue {
	s := sysOf(k)
	if wq := s.sysWQs[i].Load(); wq != nil {
		return wq
	}
	s.sysMu.Lock()
	defer s.sysMu.Unlock()
	if wq := s.sysWQs[i].Load(); wq != nil {
		return wq
	}
	d := systemWQDefs[i]
	ma := d.maxActive
	if d.flags&BH != 0 {
		ma = 1<<31 - 1
	} else if ma == 0 {
		ma = DflActive
	}
	wq := s.newWorkqueue(nil, d.name, d.flags, ma)
	wq.system = true
	s.sysWQs[i].Store(wq)
	return wq
}

// System is system_wq ("events"), the workqueue of ScheduleWork.
func System(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysEvents) }

// SystemHighpri is system_highpri_wq ("events_highpri").
func SystemHighpri(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysHighpri) }

// SystemLong is system_long_wq ("events_long"), for items that may run long.
func SystemLong(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysLong) }

// SystemUnbound is system_unbound_wq ("events_unbound", WQ_UNBOUND,
// max_active WQ_MAX_ACTIVE).
func SystemUnbound(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysUnbound) }

// SystemFreezable is system_freezable_wq ("events_freezable").
func SystemFreezable(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysFreezable) }

// SystemPowerEfficient is system_power_efficient_wq ("events_power_efficient").
func SystemPowerEfficient(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysPowerEfficient) }

// SystemFreezablePowerEfficient is system_freezable_power_efficient_wq
// ("events_freezable_pwr_efficient").
func SystemFreezablePowerEfficient(k *kernel.Kernel) *Workqueue {
	return systemWQ(k, sysFreezablePowerEfficient)
}

// SystemBH is system_bh_wq ("events_bh", WQ_BH, v6.9+): tasklet_schedule's
// replacement.
func SystemBH(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysBH) }

// SystemBHHighpri is system_bh_highpri_wq ("events_bh_highpri"):
// tasklet_hi_schedule's replacement.
func SystemBHHighpri(k *kernel.Kernel) *Workqueue { return systemWQ(k, sysBHHighpri) }

// adjustMaxActiveLocked is wq_adjust_max_active() (wq.mu held): max_active
// is 0 while a freezable workqueue is frozen, its saved value otherwise;
// raising it activates inactive items, round-robin over the pwqs. c is the
// caller's context, nil where it has none.
func (wq *Workqueue) adjustMaxActiveLocked(c *kernel.Ctx, freezing bool) {
	newMax := wq.savedMaxActive
	if wq.has(Freezable) && freezing {
		newMax = 0
	}
	if int(wq.maxActive.Load()) == newMax {
		return
	}
	// Items queued before the change are put on their lists under the
	// old limit.
	for _, p := range wq.pwqs {
		p.pool.lock()
		p.pool.mu.Unlock()
	}
	wq.maxActive.Store(int32(newMax))
	if newMax == 0 {
		return
	}
	for {
		activated := false
		for _, p := range wq.pwqs {
			pool := p.pool
			pool.lock()
			if p.activateFirstInactive(c) {
				activated = true
				pool.kick(nil)
			}
			pool.mu.Unlock()
		}
		if !activated {
			break
		}
	}
}

// SetMaxActive is workqueue_set_max_active(wq, max_active): it changes the
// limit (clamped as at allocation), activating waiting items if it grew.
// BH and ordered workqueues refuse it with a WARN.
func SetMaxActive(c *kernel.Ctx, wq *Workqueue, maxActive int) {
	if kernel.WarnOn(c, wq.has(BH)) || kernel.WarnOn(c, wq.has(flagOrdered)) {
		return
	}
	maxActive = clampMaxActive(c, maxActive, wq.name)
	s := wq.sys
	s.mu.Lock()
	freezing := s.freezing
	s.mu.Unlock()
	wq.mu.Lock()
	wq.savedMaxActive = maxActive
	wq.adjustMaxActiveLocked(c, freezing)
	wq.mu.Unlock()
}

// MaxActiveOf returns the workqueue's current max_active (0 while frozen).
func MaxActiveOf(wq *Workqueue) int { return int(wq.maxActive.Load()) }

// Congested is workqueue_congested(cpu, wq): whether items of wq wait on
// cpu's inactive list (CPUUnbound: the caller's CPU). Advisory only.
func Congested(c *kernel.Ctx, cpu int, wq *Workqueue) bool {
	if cpu == CPUUnbound || cpu < 0 || cpu >= len(wq.cpuPwq) {
		cpu = c.CPU()
	}
	p := wq.cpuPwq[cpu]
	p.pool.lock()
	defer p.pool.mu.Unlock()
	return !p.inactive.empty()
}

// --- freezer (kernel/workqueue.c, CONFIG_FREEZER) ---

// FreezeWorkqueuesBegin is freeze_workqueues_begin(): from now on the items
// of freezable workqueues wait on their inactive lists (max_active 0); the
// ones already active run to completion.
func FreezeWorkqueuesBegin(k *kernel.Kernel) {
	s := sysOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freezing = true
	for _, wq := range s.wqs {
		wq.mu.Lock()
		wq.adjustMaxActiveLocked(nil, true)
		wq.mu.Unlock()
	}
}

// FreezeWorkqueuesBusy is freeze_workqueues_busy(): whether a freezable
// workqueue still has active items (freezing is complete when it is false).
func FreezeWorkqueuesBusy(k *kernel.Kernel) bool {
	s := sysOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, wq := range s.wqs {
		if !wq.has(Freezable) {
			continue
		}
		for _, p := range wq.pwqs {
			p.pool.lock()
			busy := p.nrActive > 0
			p.pool.mu.Unlock()
			if busy {
				return true
			}
		}
	}
	return false
}

// ThawWorkqueues is thaw_workqueues(): max_active is restored and the
// items held back are activated, in order.
func ThawWorkqueues(k *kernel.Kernel) {
	s := sysOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.freezing {
		return
	}
	s.freezing = false
	for _, wq := range s.wqs {
		wq.mu.Lock()
		wq.adjustMaxActiveLocked(nil, false)
		wq.mu.Unlock()
	}
}
