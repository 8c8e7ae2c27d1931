package kernel_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/datadriven"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
)

// Softirq scenarios in testdata/softirq_*.txt, run with internal/datadriven
// in virtual time. Each file boots its own kernel. Their prose says what
// kernel/softirq.c does; the expected outputs were checked against it.
//
// go test ./kernel -run TestSoftirqScenarios -args -rewrite regenerates the
// expected outputs in place.
//
// Commands (VEC is a softirq name: HI, TIMER, NET_TX, NET_RX, BLOCK,
// IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU; DUR a Go duration):
//
//	boot cpus=N hz=H            boot a virtual kernel (once per file)
//	open VEC [reraise=N] [raise=VEC,...] [spin=DUR]
//	                            open_softirq(VEC, a recording handler): each
//	                            run prints a line; then it busy-waits DUR
//	                            (Spin), raises the listed vectors (first run
//	                            only) and raises VEC again while it has run
//	                            fewer than N times
//	task NAME [cpu=N] STEP...   run a task through STEPs, then run the
//	                            kernel until it is idle; STEP is
//	                            bh-disable, bh-enable, raise=VEC,
//	                            lock-bh, unlock-bh (a spinlock's _bh forms)
//	irq cpu=N raise=VEC,...     a hardirq on cpu N whose handler raises the
//	                            vectors; then run the kernel until idle
//	stat                        kstat_softirqs_cpu of every vector that ran
//
// A handler run prints
//
//	VEC #RUN on cpuN in COMM: preempt_count=0x..., at Tus (jiffy J)
//
// with COMM the task whose context the softirq borrows (ksoftirqd/N for
// the softirq thread, swapper/N for an interrupted idle CPU), T the virtual
// CLOCK_MONOTONIC and J the jiffies since boot (jiffies - INITIAL_JIFFIES).
// Task steps print "NAME: step -> preempt_count=0x...".

func TestSoftirqScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/softirq_*.txt", func(t *testing.T, file string) {
		s := &softirqScenario{t: t, scripts: map[int]*softirqScript{}}
		datadriven.RunFile(t, file, s.commands())
	})
}

type softirqScenario struct {
	t       *testing.T
	k       *kernel.Kernel
	mu      sync.Mutex
	out     strings.Builder
	scripts map[int]*softirqScript
	nextIRQ int
	lock    kernel.SpinLock
}

// softirqScript is what a vector's recording handler does.
type softirqScript struct {
	runs    int
	reraise int
	raise   []int
	spin    time.Duration
}

func (s *softirqScenario) printf(format string, args ...any) {
	s.mu.Lock()
	fmt.Fprintf(&s.out, format, args...)
	s.mu.Unlock()
}

// take returns and clears the output recorded so far.
func (s *softirqScenario) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.out.String()
	s.out.Reset()
	return out
}

func vector(name string) (int, error) {
	for nr := 0; nr < kernel.NRSoftirqs; nr++ {
		if kernel.SoftirqName(nr) == name {
			return nr, nil
		}
	}
	return 0, fmt.Errorf("unknown softirq %q", name)
}

func vectors(list string) ([]int, error) {
	var out []int
	for _, name := range strings.Split(list, ",") {
		nr, err := vector(name)
		if err != nil {
			return nil, err
		}
		out = append(out, nr)
	}
	return out, nil
}

func (s *softirqScenario) commands() *datadriven.Commands {
	var cmds datadriven.Commands
	cmds.Add("boot", "boot cpus=N hz=H", s.boot)
	cmds.Add("open", "open VEC [reraise=N] [raise=VEC,...] [spin=DUR]", s.open)
	cmds.Add("task", "task NAME [cpu=N] STEP...", s.task)
	cmds.Add("irq", "irq cpu=N raise=VEC,...", s.irq)
	cmds.Add("stat", "stat", s.stat)
	return &cmds
}

func (s *softirqScenario) booted() error {
	if s.k == nil {
		return fmt.Errorf("no kernel: boot first")
	}
	return nil
}

func (s *softirqScenario) boot(d *datadriven.Cmd) (string, error) {
	if s.k != nil {
		return "", fmt.Errorf("booted already")
	}
	cpus, err := strconv.Atoi(d.KV["cpus"])
	if err != nil {
		return "", fmt.Errorf("cpus=: %v", err)
	}
	hz, err := strconv.Atoi(d.KV["hz"])
	if err != nil {
		return "", fmt.Errorf("hz=: %v", err)
	}
	s.k = ktest.Boot(s.t, kernel.Config{Virtual: true, CPUs: cpus, HZ: jiffies.HZ(hz), Quiet: true})
	return fmt.Sprintf("cpus=%d HZ=%d TICK_NSEC=%d MAX_SOFTIRQ_RESTART=%d\n",
		s.k.NumCPUs(), s.k.HZ(), s.k.TickNsec(), kernel.MaxSoftirqRestart), nil
}

func (s *softirqScenario) open(d *datadriven.Cmd) (string, error) {
	if err := s.booted(); err != nil {
		return "", err
	}
	name, err := d.Arg(0)
	if err != nil {
		return "", err
	}
	nr, err := vector(name)
	if err != nil {
		return "", err
	}
	sc := &softirqScript{}
	if v, ok := d.KV["reraise"]; ok {
		if sc.reraise, err = strconv.Atoi(v); err != nil {
			return "", err
		}
	}
	if v, ok := d.KV["raise"]; ok {
		if sc.raise, err = vectors(v); err != nil {
			return "", err
		}
	}
	if v, ok := d.KV["spin"]; ok {
		if sc.spin, err = time.ParseDuration(v); err != nil {
			return "", err
		}
	}
	s.scripts[nr] = sc
	s.k.OpenSoftirq(nr, func(c *kernel.Ctx) {
		sc.runs++
		k := c.Kernel()
		now := k.Now()
		s.printf("%s #%d on cpu%d in %s: preempt_count=%#x, at %dus (jiffy %d)\n",
			kernel.SoftirqName(nr), sc.runs, c.CPU(), c.Current().Comm(), c.PreemptCount(),
			now/1000, k.Jiffies()-k.InitialJiffies())
		kernel.Spin(c, int64(sc.spin))
		if sc.runs == 1 {
			for _, v := range sc.raise {
				kernel.RaiseSoftirq(c, v)
			}
		}
		if sc.runs < sc.reraise {
			kernel.RaiseSoftirq(c, nr)
		}
	})
	return "", nil
}

// runIdle runs the kernel until nothing is left to do now.
func (s *softirqScenario) runIdle() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.k.RunUntilIdle(ctx)
}

func (s *softirqScenario) task(d *datadriven.Cmd) (string, error) {
	if err := s.booted(); err != nil {
		return "", err
	}
	name, err := d.Arg(0)
	if err != nil {
		return "", err
	}
	cpu := 0
	if v, ok := d.KV["cpu"]; ok {
		if cpu, err = strconv.Atoi(v); err != nil {
			return "", err
		}
	}
	type step struct {
		op string
		nr int
	}
	var steps []step
	for _, f := range d.Fields[1:] {
		op, arg, _ := strings.Cut(f, "=")
		switch op {
		case "cpu":
		case "bh-disable", "bh-enable", "lock-bh", "unlock-bh":
			steps = append(steps, step{op: op})
		case "raise":
			nr, err := vector(arg)
			if err != nil {
				return "", err
			}
			steps = append(steps, step{op: op, nr: nr})
		default:
			return "", fmt.Errorf("unknown step %q", f)
		}
	}
	tk, err := s.k.CreateTask(kernel.TaskOpts{Comm: name, CPU: cpu}, func(c *kernel.Ctx) int {
		for _, st := range steps {
			what := ""
			switch st.op {
			case "bh-disable":
				kernel.LocalBHDisable(c)
				what = "local_bh_disable()"
			case "bh-enable":
				kernel.LocalBHEnable(c)
				what = "local_bh_enable()"
			case "lock-bh":
				s.lock.LockBH(c)
				what = "spin_lock_bh()"
			case "unlock-bh":
				s.lock.UnlockBH(c)
				what = "spin_unlock_bh()"
			case "raise":
				kernel.RaiseSoftirq(c, st.nr)
				what = fmt.Sprintf("raise_softirq(%s)", kernel.SoftirqName(st.nr))
			}
			s.printf("%s: %s -> preempt_count=%#x pending=%#x\n", name, what, c.PreemptCount(), c.LocalSoftirqPending())
		}
		return 0
	})
	if err != nil {
		return "", err
	}
	s.k.WakeUpProcess(tk)
	if err := s.runIdle(); err != nil {
		return s.take(), err
	}
	select {
	case <-tk.Exited():
	default:
		return s.take(), fmt.Errorf("task %s did not finish", name)
	}
	return s.take(), nil
}

func (s *softirqScenario) irq(d *datadriven.Cmd) (string, error) {
	if err := s.booted(); err != nil {
		return "", err
	}
	cpu, err := strconv.Atoi(d.KV["cpu"])
	if err != nil {
		return "", fmt.Errorf("cpu=: %v", err)
	}
	nrs, err := vectors(d.KV["raise"])
	if err != nil {
		return "", err
	}
	s.nextIRQ++
	line := 20 + s.nextIRQ
	err = s.k.RequestIRQ(line, func(c *kernel.Ctx, irq int, _ any) kernel.IRQReturn {
		s.printf("hardirq %d on cpu%d in %s: preempt_count=%#x\n", irq, c.CPU(), c.Current().Comm(), c.PreemptCount())
		for _, nr := range nrs {
			kernel.RaiseSoftirqIrqoff(c, nr)
		}
		return kernel.IRQHandled
	}, 0, "scenario", nil)
	if err != nil {
		return "", err
	}
	if err := s.k.GenerateIRQ(cpu, line); err != nil {
		return s.take(), err
	}
	s.printf("irq_exit done\n")
	if err := s.runIdle(); err != nil {
		return s.take(), err
	}
	return s.take(), nil
}

func (s *softirqScenario) stat(*datadriven.Cmd) (string, error) {
	if err := s.booted(); err != nil {
		return "", err
	}
	var b strings.Builder
	for nr := 0; nr < kernel.NRSoftirqs; nr++ {
		var counts []string
		total := uint64(0)
		for cpu := 0; cpu < s.k.NumCPUs(); cpu++ {
			n := s.k.SoftirqCount(nr, cpu)
			total += n
			counts = append(counts, fmt.Sprintf("cpu%d=%d", cpu, n))
		}
		if total > 0 {
			fmt.Fprintf(&b, "%s: %s\n", kernel.SoftirqName(nr), strings.Join(counts, " "))
		}
	}
	return b.String(), nil
}
