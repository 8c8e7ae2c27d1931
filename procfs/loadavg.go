package procfs

import (
	"fmt"
	"sync"

	"github.com/kdefer/kdefer/kernel"
)

// Load average arithmetic (include/linux/sched/loadavg.h,
// kernel/sched/loadavg.c): 11-bit fixed point, a sample every LOAD_FREQ
// (5 s + 1 jiffy), decayed by e^(-5s/1min), e^(-5s/5min), e^(-5s/15min).
const (
	fshift = 11          // FSHIFT
	fixed1 = 1 << fshift // FIXED_1
	exp1   = 1884        // EXP_1: 1/exp(5sec/1min) as fixed-point
	exp5   = 2014        // EXP_5
	exp15  = 2037        // EXP_15
)

// loadState is one kernel's avenrun[] and the jiffy of its next sample.
type loadState struct {
	mu      sync.Mutex
	avenrun [3]uint64
	next    uint64 // calc_load_update
}

var loadKey kernel.LocalKey

// calcLoad is calc_load(): one exponential step of load towards active.
func calcLoad(load, exp, active uint64) uint64 {
	newload := load*exp + active*(fixed1-exp)
	if active >= load {
		newload += fixed1 - 1
	}
	return newload / fixed1
}

// fixedPowerInt is fixed_power_int(x, FSHIFT, n): x^n in fixed point,
// rounding each product.
func fixedPowerInt(x uint64, n uint64) uint64 {
	result := uint64(fixed1)
	for n != 0 {
		if n&1 != 0 {
			result = (result*x + fixed1/2) >> fshift
		}
		n >>= 1
		if n == 0 {
			break
		}
		x = (x*x + fixed1/2) >> fshift
	}
	return result
}

// calcLoadN is calc_load_n(): n steps at once, with the same active count.
func calcLoadN(load, exp, active, n uint64) uint64 {
	return calcLoad(load, fixedPowerInt(exp, n), active)
}

// Runnable counts k's tasks as the scheduler's load does: running (tasks
// in state R, idle tasks excluded), uninterruptible (state D, not
// TASK_NOLOAD, which shows as I) and threads (every task but the idle
// tasks).
func Runnable(k *kernel.Kernel) (running, uninterruptible, threads int) {
	for _, t := range k.Tasks() {
		if t.IsIdle() {
			continue
		}
		threads++
		switch t.State().Letter() {
		case 'R':
			running++
		case 'D':
			uninterruptible++
		}
	}
	return running, uninterruptible, threads
}

// Loadavg returns the text of /proc/loadavg (fs/proc/loadavg.c): the 1, 5
// and 15 minute load averages, running/threads and the last pid given
// out:
//
//	0.00 0.00 0.00 1/9 12
//
// The averages follow kernel/sched/loadavg.c: a sample of the active count
// (running plus uninterruptible) every LOAD_FREQ, folded in with
// calc_load's fixed-point decay, read with FIXED_1/200 added to round.
//
// Differences: kdefer has no tick to sample at, so the samples are taken
// when the file is read: each read first folds in every LOAD_FREQ period
// that has passed since the last sample with the active count of now, as
// the kernel's NO_HZ catch-up (calc_global_nohz, calc_load_n) does for
// periods its CPUs slept through. A kernel whose loadavg is never read has
// no samples; read it regularly (kdefer top does) for averages that follow
// the load. The running count does not include a reader (no task runs
// cat).
func Loadavg(k *kernel.Kernel) string {
	st := k.Local(&loadKey, func(k *kernel.Kernel) any {
		return &loadState{next: k.InitialJiffies() + loadFreq(k)}
	}).(*loadState)
	running, unint, threads := Runnable(k)
	st.mu.Lock()
	if j, freq := k.Jiffies(), loadFreq(k); int64(j-st.next) >= 0 {
		n := (j-st.next)/freq + 1
		active := uint64(running+unint) * fixed1
		for i, e := range [3]uint64{exp1, exp5, exp15} {
			st.avenrun[i] = calcLoadN(st.avenrun[i], e, active, n)
		}
		st.next += n * freq
	}
	av := st.avenrun
	st.mu.Unlock()
	var b []byte
	for i := range av {
		x := av[i] + fixed1/200 // get_avenrun's offset: round to 2 decimals
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%d.%02d", x>>fshift, ((x&(fixed1-1))*100)>>fshift)
	}
	return fmt.Sprintf("%s %d/%d %d\n", b, running, threads, k.LastPID())
}

// loadFreq is LOAD_FREQ: 5*HZ+1 jiffies.
func loadFreq(k *kernel.Kernel) uint64 { return 5*uint64(k.HZ()) + 1 }
