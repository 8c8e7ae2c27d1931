package workqueue

import (
	"fmt"

	"github.com/kdefer/kdefer/kernel"
)

// PoolStats is a snapshot of one worker pool: its workers, how many of
// them are idle and how many run (nr_running), and the depth of its
// worklist — what show_one_worker_pool() and tools/workqueue/wq_dump.py
// print about a pool, as numbers. `kdefer top` shows it.
type PoolStats struct {
	// ID is the pool's id, as the dump's "pool N" names it: per CPU N
	// the BH, BH high-priority, normal and high-priority pools are
	// 4N … 4N+3, then the unbound pools (normal, high priority).
	ID int
	// CPU is the pool's CPU, -1 for an unbound pool.
	CPU int
	// Nice is the workers' nice level: 0, or -20 for a high-priority pool.
	Nice int
	// BH is set for a BH pool (its pseudo-worker runs in softirq context).
	BH bool
	// Workers is nr_workers, Idle nr_idle; Workers − Idle are busy.
	Workers, Idle int
	// Running is nr_running: the pool's concurrency-managed workers that
	// run now (not sleeping, not CPU-intensive). Unbound and BH pools are
	// not concurrency managed: it is 0 there.
	Running int
	// Pending is the number of items on the pool's worklist, waiting for
	// a worker (flush barriers included; items held back by max_active
	// wait on their workqueue's inactive list, not here).
	Pending int
}

// Busy returns the pool's busy workers (Workers − Idle).
func (p PoolStats) Busy() int { return p.Workers - p.Idle }

// Name returns the pool as its workers' names spell it: "0" (kworker/0:M),
// "0H" (kworker/0:MH), "u8" (kworker/u8:M), and "0B" and "0BH" for CPU 0's
// BH pools, whose workers have no task.
func (p PoolStats) Name() string {
	h := ""
	if p.Nice < 0 {
		h = "H"
	}
	switch {
	case p.CPU < 0:
		return fmt.Sprintf("u%d", p.ID)
	case p.BH:
		return fmt.Sprintf("%dB%s", p.CPU, h)
	}
	return fmt.Sprintf("%d%s", p.CPU, h)
}

// Pools returns a snapshot of k's worker pools, by id; a pool that has
// had no item yet has no worker (see the package doc: workers are created
// on first use). It may be called from any goroutine; each pool is read
// under its lock.
//
// Kernel counterpart: none as a function (the kernel's pools are read by
// drgn scripts such as tools/workqueue/wq_dump.py); this is a read-only
// accessor for monitors.
func Pools(k *kernel.Kernel) []PoolStats {
	s := sysOf(k)
	out := make([]PoolStats, 0, len(s.pools))
	for _, p := range s.pools {
		p.lock()
		ps := PoolStats{ID: p.id, CPU: p.cpu, Nice: p.nice, BH: p.bh,
			Workers: p.nrWorkers, Idle: p.nrIdle, Running: int(p.nrRunning.Load())}
		for w := p.worklist.head; w != nil; w = w.next {
			ps.Pending++
		}
		p.mu.Unlock()
		out = append(out, ps)
	}
	return out
}
