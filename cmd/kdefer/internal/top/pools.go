package top

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/workqueue"
)

// Pool is one row of the worker-pool table.
type Pool struct {
	// ID is the pool's id and Name what its workers' names say of it:
	// "0" (kworker/0:M), "0H" (kworker/0:MH), "u4" (kworker/u4:M), "0B" and
	// "0BH" for CPU 0's BH pools (see workqueue.PoolStats).
	ID   int
	Name string
	// Workers and Idle are the pool's workers and the idle ones among
	// them; Running its concurrency-managed workers that run (nr_running;
	// -1 where a replay cannot tell); Pending the items on its worklist.
	Workers, Idle, Running, Pending int
}

// Busy returns the pool's busy workers.
func (p Pool) Busy() int { return p.Workers - p.Idle }

// collectPools reads k's worker pools through the workqueue package:
// those that have workers or pending items.
func collectPools(k *kernel.Kernel) []Pool {
	var out []Pool
	for _, p := range workqueue.Pools(k) {
		if p.Workers == 0 && p.Pending == 0 {
			continue
		}
		out = append(out, Pool{ID: p.ID, Name: p.Name(), Workers: p.Workers, Idle: p.Idle, Running: p.Running, Pending: p.Pending})
	}
	return out
}

// Pool ids, as package workqueue numbers them: per CPU N, the BH, BH
// high-priority, normal and high-priority pools are 4N … 4N+3; then the
// unbound pools, normal and high priority.
const (
	poolBH     = 0
	poolBHHi   = 1
	poolNormal = 2
	poolHi     = 3
)

// poolName is workqueue.PoolStats.Name for the pool of id on a kernel
// with cpus CPUs.
func poolName(id, cpus int) string {
	if id >= 4*cpus {
		return "u" + strconv.Itoa(id)
	}
	cpu := strconv.Itoa(id / 4)
	switch id % 4 {
	case poolBH:
		return cpu + "B"
	case poolBHHi:
		return cpu + "BH"
	case poolHi:
		return cpu + "H"
	}
	return cpu
}

// workerPoolID is the pool of the kworker named comm (-1 if comm is no
// pool's worker: a rescuer kworker/R-name, any other task).
func workerPoolID(comm string) int {
	rest, ok := strings.CutPrefix(comm, "kworker/")
	if !ok {
		return -1
	}
	pool, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return -1
	}
	if u, ok := strings.CutPrefix(pool, "u"); ok {
		n, err := strconv.Atoi(u)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	cpu, err := strconv.Atoi(pool)
	if err != nil || cpu < 0 {
		return -1
	}
	if strings.HasSuffix(id, "H") {
		return 4*cpu + poolHi
	}
	return 4*cpu + poolNormal
}

// wqKind is what the executions of a workqueue's items showed of its
// pools: high priority, BH.
type wqKind struct{ hi, bh bool }

// poolTable is what the workqueue records tell about the worker pools so
// far, for a replay: the workers are the kworkers the records name (by
// their comm), busy between an item's execute_start and execute_end;
// an item is pending on a pool from its workqueue_activate_work to its
// execute_start. Which pool: the CPU queue_work recorded (-1: unbound)
// and the kind of pool the workqueue's items ran on so far (the records
// do not say whether a workqueue is high priority or BH until one of its
// items runs; until then its items count on the normal pool). Running is
// a busy worker that sched_switch last left running (-1 without
// sched_switch records). Like stats' in-flight count, an item cancelled
// while pending stays pending until it is queued again.
type poolTable struct {
	cpus    int
	sched   bool
	workers map[int32]int // kworker pid → pool id
	busy    map[int32]int // pid of a worker executing an item → pool id
	bhBusy  map[int]int   // CPU executing a BH item → pool id
	bhSeen  map[int]bool  // BH pools that ran an item
	vec     []int         // per CPU, the softirq being served (-1: none)

	queued  map[uint64]queuedWork // work item → its latest queue_work
	pending map[uint64]int        // work item → the pool it waits on
	kinds   map[uint64]wqKind     // workqueue name (a Str) → its pools
}

type queuedWork struct {
	wq  uint64 // the workqueue's name (Str)
	cpu int    // the pool's CPU, -1 unbound
}

func newPoolTable(cpus int, sched bool) *poolTable {
	pt := &poolTable{cpus: cpus, sched: sched, workers: map[int32]int{}, busy: map[int32]int{},
		bhBusy: map[int]int{}, bhSeen: map[int]bool{}, vec: make([]int, cpus),
		queued: map[uint64]queuedWork{}, pending: map[uint64]int{}, kinds: map[uint64]wqKind{}}
	for i := range pt.vec {
		pt.vec[i] = -1
	}
	return pt
}

// seen notes the task pid named comm: a pool's worker if comm says so.
func (pt *poolTable) seen(pid int32, comm string) {
	if pid <= 0 {
		return
	}
	if id := workerPoolID(comm); id >= 0 && id < 4*pt.cpus+2 {
		pt.workers[pid] = id
	}
}

// poolOf is the pool an item of queueing q waits on.
func (pt *poolTable) poolOf(q queuedWork) int {
	k := pt.kinds[q.wq]
	if q.cpu < 0 || q.cpu >= pt.cpus {
		if k.hi {
			return 4*pt.cpus + 1
		}
		return 4 * pt.cpus
	}
	switch {
	case k.bh && k.hi:
		return 4*q.cpu + poolBHHi
	case k.bh:
		return 4*q.cpu + poolBH
	case k.hi:
		return 4*q.cpu + poolHi
	}
	return 4*q.cpu + poolNormal
}

func (pt *poolTable) apply(r *trace.Record) {
	if r.Flags&(trace.FlagHardirq|trace.FlagSoftirq) == 0 {
		pt.seen(r.PID, r.CommString())
	}
	a := &r.Args
	cpu := int(r.CPU)
	switch r.Event {
	case trace.SchedSwitch:
		pt.seen(int32(a[4]), trace.UnpackComm(a[2], a[3]))
		if r.PID > 0 {
			if l := switchLetter(a[1]); l == 'X' || l == 'Z' {
				delete(pt.workers, r.PID)
				delete(pt.busy, r.PID)
			}
		}
	case trace.SchedWakeup:
		pt.seen(int32(a[2]), trace.UnpackComm(a[0], a[1]))
	case trace.SoftirqEntry:
		if cpu < pt.cpus {
			pt.vec[cpu] = int(a[0])
		}
	case trace.SoftirqExit:
		if cpu < pt.cpus {
			pt.vec[cpu] = -1
		}
	case trace.WorkqueueQueueWork:
		pt.queued[a[0]] = queuedWork{wq: a[2], cpu: int(int32(a[4]))}
		delete(pt.pending, a[0]) // a pending item is not queued again: it was cancelled
	case trace.WorkqueueActivateWork:
		if q, ok := pt.queued[a[0]]; ok {
			pt.pending[a[0]] = pt.poolOf(q)
		}
	case trace.WorkqueueExecuteStart:
		delete(pt.pending, a[0])
		id := -1
		if r.Flags&trace.FlagSoftirq != 0 && cpu < pt.cpus {
			id = 4*cpu + poolBH
			if pt.vec[cpu] == kernel.HISoftirq {
				id = 4*cpu + poolBHHi
			}
			pt.bhBusy[cpu] = id
			pt.bhSeen[id] = true
		} else if wid, ok := pt.workers[r.PID]; ok {
			id = wid
			pt.busy[r.PID] = id
		}
		if q, ok := pt.queued[a[0]]; ok && id >= 0 {
			pt.kinds[q.wq] = wqKind{hi: id%4 == poolHi || id%4 == poolBHHi || id == 4*pt.cpus+1,
				bh: id < 4*pt.cpus && id%4 <= poolBHHi}
		}
	case trace.WorkqueueExecuteEnd:
		if r.Flags&trace.FlagSoftirq != 0 {
			delete(pt.bhBusy, cpu)
		} else {
			delete(pt.busy, r.PID)
		}
		if _, again := pt.pending[a[0]]; !again {
			delete(pt.queued, a[0])
		}
	}
}

// list returns the pools the records showed workers or pending items of,
// by id. tasks gives the workers' states (for Running).
func (pt *poolTable) list(tasks map[int32]*Task) []Pool {
	rows := map[int]*Pool{}
	row := func(id int) *Pool {
		p := rows[id]
		if p == nil {
			p = &Pool{ID: id, Name: poolName(id, pt.cpus)}
			if !pt.sched {
				p.Running = -1
			}
			rows[id] = p
		}
		return p
	}
	for pid, id := range pt.workers {
		p := row(id)
		p.Workers++
		bid, busy := pt.busy[pid]
		if !busy || bid != id {
			p.Idle++
			continue
		}
		managed := id < 4*pt.cpus // unbound pools are not concurrency managed
		if tk := tasks[pid]; pt.sched && managed && tk != nil && tk.State == 'R' {
			p.Running++
		}
	}
	for id := range pt.bhSeen { // one pseudo-worker, never counted running
		p := row(id)
		p.Workers, p.Idle = 1, 1
	}
	for _, id := range pt.bhBusy {
		row(id).Idle = 0
	}
	for _, id := range pt.pending {
		row(id).Pending++
	}
	out := make([]Pool, 0, len(rows))
	for _, p := range rows {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Pool) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// poolRows renders the pool table: a header and at most n rows (all of
// them when n < 0). Idle pools give way first when they do not all fit.
func poolRows(pools []Pool, n int) []string {
	show := pools
	if n >= 0 && len(pools) > n {
		var busy, idle []Pool
		for _, p := range pools {
			if p.Busy() > 0 || p.Pending > 0 {
				busy = append(busy, p)
			} else {
				idle = append(idle, p)
			}
		}
		show = append(busy, idle...)[:n]
		slices.SortFunc(show, func(a, b Pool) int { return cmp.Compare(a.ID, b.ID) })
	}
	more := ""
	if len(show) < len(pools) {
		more = fmt.Sprintf(", %d shown", len(show))
	}
	lines := []string{fmt.Sprintf("%-7s %7s %5s %5s %7s %7s   (%d pools%s)", "POOL", "WORKERS", "BUSY", "IDLE", "RUNNING", "PENDING", len(pools), more)}
	for _, p := range show {
		running := "-"
		if p.Running >= 0 {
			running = strconv.Itoa(p.Running)
		}
		lines = append(lines, fmt.Sprintf("%-7s %7d %5d %5d %7s %7d", p.Name, p.Workers, p.Busy(), p.Idle, running, p.Pending))
	}
	return lines
}
