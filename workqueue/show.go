package workqueue

import (
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/trace"
)

// The workqueue dump of kernel/workqueue.c (show_all_workqueues and its
// helpers), in the layout of v6.9 and later (BH pools print "bh" where
// other pools print their nice level; several in-flight workers are
// separated by " ,"). Example, one item sleeping on CPU 0 with two behind
// it and a flush waiting on the second:
//
//	Showing busy workqueues and worker pools:
//	workqueue events: flags=0x0
//	  pwq 2: cpus=0 node=0 flags=0x0 nice=0 active=3 refcnt=5
//	    in-flight: 7:slow_fn
//	    pending: fast_fn BAR(9), fast_fn
//	pool 2: cpus=0 node=0 flags=0x0 nice=0 hung=0s workers=2 idle: 8
//
// The lines are built under the pool locks and printed (or returned) once
// those are dropped.

// Pool flags as the dump prints them (enum worker_pool_flags).
const (
	poolBH            = 1 << 0 // POOL_BH
	poolManagerActive = 1 << 1 // POOL_MANAGER_ACTIVE
	poolDisassociated = 1 << 2 // POOL_DISASSOCIATED
)

// kdeferOnlyWQFlags are the workqueue flags of kdefer's own, which the dump
// does not print.
const kdeferOnlyWQFlags = flagClosed | flagDestroyed | flagCancelling

// The dumps' headers.
const (
	showAllHeader       = "Showing busy workqueues and worker pools:"
	showFreezableHeader = "Showing freezable workqueues that are still busy:"
)

// noProgress is lastProgress's "unknown".
const noProgress = -1

// ShowAllWorkqueues is show_all_workqueues(), which the kernel runs for
// SysRq-t and its watchdogs: it prints, at KERN_INFO, every workqueue with
// items queued or running — for each of its pwqs that is not empty, the
// pwq's pool, its active count and references, the workers running its
// items (pid:function, with what is scheduled behind them), the items on
// the pool's worklist ("pending") and those waiting for max_active
// ("inactive"), with flush barriers as BAR(pid of the flusher) and runs of
// one function as N*function — and then every pool that has a busy worker,
// with how long its first pending item has waited ("hung"), its number of
// workers, its manager and its idle workers. DumpState returns the same
// text.
//
// Differences: kdefer keeps no pool->watchdog_ts, so "hung" counts from the
// start of the pool's most recent item still running, or from the queueing
// of the first pending item when its queueing time was measured (see
// Stats.QueueLatency), and is 0 otherwise. refcnt is 1 plus the items in flight on the pwq
// (the kernel's count also holds the references of unbound workqueues' pod
// tables). Every pool is on node 0.
func ShowAllWorkqueues(c *kernel.Ctx) {
	printLines(c, sysOf(c.Kernel()).showAll())
}

// DumpState returns the text ShowAllWorkqueues prints, one line per log
// record (kdefer's /proc/workqueues view; the kernel prints it only to the
// log).
func DumpState(k *kernel.Kernel) string {
	return strings.Join(sysOf(k).showAll(), "\n") + "\n"
}

// ShowOneWorkqueue is show_one_workqueue(wq): the part of the dump about
// wq, or nothing when it is idle.
func ShowOneWorkqueue(c *kernel.Ctx, wq *Workqueue) {
	printLines(c, wq.showLines())
}

// ShowFreezableWorkqueues is show_freezable_workqueues(), which the freezer
// prints when tasks fail to freeze: the busy freezable workqueues.
func ShowFreezableWorkqueues(c *kernel.Ctx) {
	lines := []string{showFreezableHeader}
	for _, wq := range sysOf(c.Kernel()).workqueues() {
		if wq.has(Freezable) {
			lines = append(lines, wq.showLines()...)
		}
	}
	printLines(c, lines)
}

func printLines(c *kernel.Ctx, lines []string) {
	for _, l := range lines {
		kernel.Printk(c, printk.LevelInfo, "%s\n", l)
	}
}

// workqueues returns the workqueues in creation order (the kernel's
// workqueues list).
func (s *system) workqueues() []*Workqueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Workqueue(nil), s.wqs...)
}

// showAll is the text of show_all_workqueues().
func (s *system) showAll() []string {
	lines := []string{showAllHeader}
	for _, wq := range s.workqueues() {
		lines = append(lines, wq.showLines()...)
	}
	now := s.k.Now()
	for _, p := range s.pools {
		if l, ok := p.showLine(now); ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// showLines is show_one_workqueue(): nothing for an idle workqueue, else
// its header and the lines of each pwq that is not empty.
func (wq *Workqueue) showLines() []string {
	var lines []string
	for _, p := range wq.pwqs {
		pl := p.showLinesIfBusy()
		if len(pl) == 0 {
			continue
		}
		if lines == nil {
			lines = append(lines, fmt.Sprintf("workqueue %s: flags=0x%x", wq.name, uint32(wq.Flags()&^kdeferOnlyWQFlags)))
		}
		lines = append(lines, pl...)
	}
	return lines
}

func (p *pwq) showLinesIfBusy() []string {
	p.pool.lock()
	defer p.pool.mu.Unlock()
	if p.isEmpty() {
		return nil
	}
	return p.showLinesLocked()
}

// showLines is show_pwq() for the destroy_workqueue report.
func (p *pwq) showLines() []string {
	p.pool.lock()
	defer p.pool.mu.Unlock()
	return p.showLinesLocked()
}

// showLinesLocked is show_pwq() (pool.mu held).
func (p *pwq) showLinesLocked() []string {
	pool := p.pool
	s := pool.sys
	refs := 1
	for _, n := range p.nrInFlight {
		refs += n
	}
	s.maydayMu.Lock()
	mayday := ""
	if p.onMayday {
		mayday = " MAYDAY"
	}
	s.maydayMu.Unlock()
	lines := []string{fmt.Sprintf("  pwq %d:%s active=%d refcnt=%d%s", pool.id, pool.info(), p.nrActive, refs, mayday)}

	var pc contWork
	var b strings.Builder
	comma := false
	for _, wk := range pool.busy {
		if wk.currentPwq != p {
			continue
		}
		if comma {
			b.WriteString(" ,")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(wk.showID())
		b.WriteString(":" + funcName(wk.currentFn))
		for w := wk.scheduled.head; w != nil; w = w.next {
			pc.work(&b, false, w)
		}
		pc.end(&b)
		comma = true
	}
	if b.Len() > 0 {
		lines = append(lines, "    in-flight:"+b.String())
	}

	b.Reset()
	comma = false
	for w := pool.worklist.head; w != nil; w = w.next {
		if w.pwq != p {
			continue
		}
		pc.work(&b, comma, w)
		comma = w.qflags&qLinked == 0
	}
	pc.end(&b)
	if b.Len() > 0 {
		lines = append(lines, "    pending:"+b.String())
	}

	b.Reset()
	comma = false
	for w := p.inactive.head; w != nil; w = w.next {
		pc.work(&b, comma, w)
		comma = w.qflags&qLinked == 0
	}
	pc.end(&b)
	if b.Len() > 0 {
		lines = append(lines, "    inactive:"+b.String())
	}
	return lines
}

// showLine is show_one_worker_pool(): the pool's line if it has a busy
// worker (ok false otherwise). now is the kernel's clock.
func (p *workerPool) showLine(now int64) (string, bool) {
	p.lock()
	defer p.mu.Unlock()
	if p.nrWorkers == p.nrIdle {
		return "", false
	}
	var hung int64
	if !p.worklist.empty() {
		if since := p.lastProgress(); since >= 0 && now > since {
			hung = (now - since) / int64(time.Second)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pool %d:%s hung=%ds workers=%d", p.id, p.info(), hung, p.nrWorkers)
	if p.manager != nil && p.manager.task != nil {
		fmt.Fprintf(&b, " manager: %d", p.manager.task.PID())
	}
	first := true
	for w := p.idle.head; w != nil; w = w.inext {
		if first {
			b.WriteString(" idle: ")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(w.showID())
		first = false
	}
	return b.String(), true
}

// lastProgress is kdefer's stand-in for pool->watchdog_ts (pool.mu held):
// the start of the newest item a worker of the pool is running, or the
// sampled queueing time of the first pending item, whichever is later;
// noProgress when neither is known.
func (p *workerPool) lastProgress() int64 {
	last := int64(noProgress)
	for _, wk := range p.busy {
		if wk.currentWork != nil && wk.startAt > last {
			last = wk.startAt
		}
	}
	if w := p.worklist.head; w != nil && w.stamped && w.queuedAt > last {
		last = w.queuedAt
	}
	return last
}

// info is pr_cont_pool_info(): " cpus=LIST node=0 flags=0xF", then " nice=N"
// or, for a BH pool, " bh" or " bh-hi" (pool.mu held).
func (p *workerPool) info() string {
	cpus := fmt.Sprint(p.cpu)
	if p.cpu < 0 {
		cpus = cpuList(p.sys.k.NumCPUs())
	}
	flags := 0
	if p.bh {
		flags |= poolBH
	}
	if p.managing {
		flags |= poolManagerActive
	}
	if p.disassociated {
		flags |= poolDisassociated
	}
	s := fmt.Sprintf(" cpus=%s node=0 flags=0x%x", cpus, flags)
	switch {
	case p.bh && p.nice == highpriNice:
		return s + " bh-hi"
	case p.bh:
		return s + " bh"
	}
	return s + fmt.Sprintf(" nice=%d", p.nice)
}

// cpuList is %*pbl of CPUs 0..n-1: "0" or "0-3".
func cpuList(n int) string {
	if n <= 1 {
		return "0"
	}
	return fmt.Sprintf("0-%d", n-1)
}

// showID is pr_cont_worker_id(): "bh" or "bh-hi" for a BH pool's worker, else
// the task's pid, with "(RESCUER)" for a rescuer.
func (w *worker) showID() string {
	if w.task == nil {
		if w.pool.nice == highpriNice {
			return "bh-hi"
		}
		return "bh"
	}
	if w.rescueWQ != nil {
		return fmt.Sprintf("%d(RESCUER)", w.task.PID())
	}
	return fmt.Sprint(w.task.PID())
}

// contWork is struct pr_cont_work_struct: it prints a list of work items,
// a run of consecutive items with the same function as "N*function".
type contWork struct {
	comma bool
	pc    uint64 // the function of the run (its entry PC)
	name  string
	ctr   int
}

// flush is pr_cont_work_flush(comma, fn): a different function (or the end
// of the list, last) prints the run so far; then, unless last, a run of fn
// begins.
func (pc *contWork) flush(b *strings.Builder, comma bool, fn Func, last bool) {
	if pc.ctr != 0 {
		if !last && trace.FuncPC(fn) == pc.pc {
			pc.ctr++
			return
		}
		sep := ""
		if pc.comma {
			sep = ","
		}
		if pc.ctr == 1 {
			fmt.Fprintf(b, "%s %s", sep, pc.name)
		} else {
			fmt.Fprintf(b, "%s %d*%s", sep, pc.ctr, pc.name)
		}
		pc.ctr = 0
	}
	if last {
		return
	}
	pc.comma, pc.pc, pc.name, pc.ctr = comma, trace.FuncPC(fn), funcName(fn), 1
}

// end flushes the run under way (pr_cont_work_flush(…, -1L, …)).
func (pc *contWork) end(b *strings.Builder) { pc.flush(b, false, nil, true) }

// work is pr_cont_work(): w joins the list, a flush barrier as BAR(pid).
func (pc *contWork) work(b *strings.Builder, comma bool, w *Work) {
	if w.isBarrier {
		pc.end(b)
		bar := (*wqBarrier)(unsafe.Pointer(w))
		pid := 0
		if bar.task != nil {
			pid = bar.task.PID()
		}
		sep := ""
		if comma {
			sep = ","
		}
		fmt.Fprintf(b, "%s BAR(%d)", sep, pid)
		return
	}
	if !comma {
		pc.end(b)
	}
	pc.flush(b, comma, w.fn, false)
}

// WorkerDescLen is WORKER_DESC_LEN: the size of a worker's description
// buffer, its terminating NUL included.
const WorkerDescLen = 32

// procNameLen is the size of proc_task_name's buffer (tcomm[64]).
const procNameLen = 64

// WorkerComm is wq_worker_comm(): the name /proc/PID/comm, /proc/PID/stat
// and /proc/PID/status — and so ps — show for t when t is a workqueue
// worker (ok false otherwise, and t's comm applies): its worker name
// (kworker/N:M, kworker/N:MH, kworker/uP:M, or kworker/R-name in full,
// where the comm is cut at 15 bytes), then "+desc" while it runs an item
// or "-desc" after its last one, desc being the workqueue's name or what
// that item set with SetWorkerDesc. A worker that has run nothing yet, and
// a rescuer between its visits to pools, show the bare name.
func WorkerComm(t *kernel.Task) (name string, ok bool) {
	w, _ := t.Private().(*worker)
	if w == nil {
		return "", false
	}
	var p *workerPool
	if w.rescueWQ == nil {
		p = w.pool // a pool's own worker never leaves it
	} else if p = w.attached.Load(); p == nil {
		return "kworker/R-" + w.rescueWQ.name, true
	}
	p.mu.Lock()
	if w.rescueWQ != nil && w.attached.Load() != p {
		// It moved on meanwhile (its desc is guarded by another lock now).
		p.mu.Unlock()
		return "kworker/R-" + w.rescueWQ.name, true
	}
	name = p.workerName(w)
	if w.desc != "" {
		if w.currentWork != nil {
			name += "+" + w.desc
		} else {
			name += "-" + w.desc
		}
	}
	p.mu.Unlock()
	if len(name) >= procNameLen {
		name = name[:procNameLen-1]
	}
	return name, true
}
