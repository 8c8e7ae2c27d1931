package stats

import (
	"errors"
	"fmt"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// ErrReplay is wrapped by NewReplay's errors: a CPU count or tick rate no
// kernel could have run with (a corrupt trace file's header, say).
var ErrReplay = errors.New("stats: invalid replay")

// Replay counts trace records read back from a recording (a trace file,
// trace.ReadFile), with no kernel: the counters of Enable's probes, fed by
// hand, so that `kdefer top FILE` shows a recording with the numbers a live
// `kdefer top` shows for the run. Feed it the records in time order
// (trace.SortRecords) and take a Snapshot wherever the recording is to be
// looked at.
//
// What a live Snapshot reads from the kernel is counted from the records
// instead: softirq runs from softirq_entry (where the kernel counts
// /proc/softirqs), interrupts from irq_handler_entry, jiffies from the
// time (INITIAL_JIFFIES + now/TICK_NSEC, as kdefer's kernel computes it).
// What the records do not tell stays zero: the local timer and
// rescheduling interrupts (not traced), and the tasks by state (the
// records do not list the tasks; a reader reconstructs what sched_switch
// and sched_wakeup tell). Events that were not recorded count nothing.
//
// There is no kernel counterpart: this is perf stat or trace-cmd's
// statistics run over a trace.dat after the fact. A Replay is not safe for
// concurrent use.
type Replay struct {
	c        *counters
	hz       jiffies.HZ
	softirqs [][kernel.NRSoftirqs]uint64
	irqs     map[int]uint64
	lost     []uint64
}

// NewReplay returns a Replay for a recording of a kernel with cpus CPUs
// (trace.FileHeader.CPUs) ticking at hz (FileHeader.HZ). It fails with an
// error wrapping ErrReplay for a CPU count outside 1..kernel.NRCPUs or an
// invalid tick rate.
func NewReplay(cpus int, hz jiffies.HZ) (*Replay, error) {
	if cpus < 1 || cpus > kernel.NRCPUs {
		return nil, fmt.Errorf("%w: %d CPUs (want 1..%d)", ErrReplay, cpus, kernel.NRCPUs)
	}
	if err := hz.Valid(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReplay, err)
	}
	return &Replay{
		c:        &counters{cpus: make([]cpuCounters, cpus), tickNs: hz.TickNsec()},
		hz:       hz,
		softirqs: make([][kernel.NRSoftirqs]uint64, cpus),
		irqs:     map[int]uint64{},
		lost:     make([]uint64, cpus),
	}, nil
}

// Add counts one record. Records of a CPU the recording did not have, and
// of events stats does not count, are ignored.
func (p *Replay) Add(r *trace.Record) {
	c := p.c
	switch r.Event {
	case trace.TimerStart:
		c.timerStart(r)
	case trace.TimerCancel:
		c.timerCancel(r)
	case trace.TimerExpireEntry:
		c.timerExpire(r)
	case trace.HrtimerStart:
		c.hrStart(r)
	case trace.HrtimerCancel:
		c.hrCancel(r)
	case trace.HrtimerExpireEntry:
		c.hrExpire(r)
	case trace.SoftirqRaise:
		c.raise(r)
	case trace.TaskletEntry:
		c.taskletEntry(r)
	case trace.WorkqueueQueueWork:
		c.wqQueue(r)
	case trace.WorkqueueExecuteStart:
		c.wqStart(r)
	case trace.WorkqueueExecuteEnd:
		c.wqEnd(r)
	case trace.SoftirqEntry:
		if int(r.CPU) < len(p.softirqs) && r.Args[0] < kernel.NRSoftirqs {
			p.softirqs[r.CPU][r.Args[0]]++
		}
	case trace.IRQHandlerEntry:
		p.irqs[int(int32(r.Args[0]))]++
	}
}

// SetStrings names the interned strings of the records (the workqueues'
// names): the recording's string table, trace.File.String. Without it a
// workqueue is named by its string id ("#3").
func (p *Replay) SetStrings(str func(id uint64) string) { p.c.str = str }

// AddLost counts n records of cpu that the recording lost (trace.Drop):
// Snapshot's TraceLost.
func (p *Replay) AddLost(cpu int, n uint64) {
	if cpu >= 0 && cpu < len(p.lost) {
		p.lost[cpu] += n
	}
}

// Snapshot returns the counts of the records added so far, as Read would
// have returned them at time now (ns since boot; the time of the last
// record added, or later). Counting is true; Tasks is empty (see Replay).
func (p *Replay) Snapshot(now int64) Snapshot {
	s := p.c
	snap := Snapshot{Counting: true, Now: now, HZ: int(p.hz), CPUs: make([]CPUStats, len(p.softirqs)), IRQs: map[int]uint64{}}
	snap.Jiffies = p.hz.InitialJiffies()
	if now > 0 {
		snap.Jiffies += uint64(now / p.hz.TickNsec())
	}
	for cpu := range snap.CPUs {
		c := &snap.CPUs[cpu]
		c.Softirqs = p.softirqs[cpu]
		for nr := range c.SoftirqRaises {
			c.SoftirqRaises[nr] = s.cpus[cpu].raises[nr].Load()
		}
		c.TaskletRuns = s.cpus[cpu].tasklet.Load()
	}
	for irq, n := range p.irqs {
		snap.IRQs[irq] = n
	}
	s.timerSnapshot(&snap)
	s.wqSnapshot(&snap)
	snap.TraceLost = append([]uint64(nil), p.lost...)
	return snap
}
