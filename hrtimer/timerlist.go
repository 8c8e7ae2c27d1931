package hrtimer

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// Pointer tokens printed for %p in /proc/timer_list. The kernel prints
// hashed addresses; kdefer prints made-up but deterministic ones: the
// timer's number in its kernel, or the base's CPU and index, laid out like
// direct-map addresses.
const (
	timerTokenBase = 0xffff888000001000
	timerTokenStep = 0x40
	baseTokenBase  = 0xffff88807fc1e000
	baseTokenCPU   = 0x40000
	baseTokenStep  = 0x40
)

var getTimeNames = [maxClockBases / 2]string{"ktime_get", "ktime_get_real", "ktime_get_boottime", "ktime_get_clocktai"}

// funcName is what %ps prints for t's callback.
func funcName(t *HRTimer) string {
	switch {
	case t.sleeper != nil:
		return "hrtimer_wakeup"
	case t.function == nil:
		return "0x0"
	}
	pc := reflect.ValueOf(t.function).Pointer()
	if pc == reflect.ValueOf(hrtimerDummyTimeout).Pointer() {
		return "hrtimer_dummy_timeout"
	}
	return trace.SymbolName(uint64(pc))
}

type timerSnap struct {
	id         uint64
	fn         string
	state      uint32
	soft, hard int64
	seq        uint64
}

// TimerList returns the hrtimer part of /proc/timer_list
// (kernel/time/timer_list.c): the header, then per CPU its eight clock
// bases with their queued timers in expiry order and the CPU base's
// counters, then jiffies.
//
// Differences: the header says "Timer List Version: v0.9" (Linux 6.1;
// v0.10 since 6.9 differs only in the tick fields); pointers are
// deterministic tokens, not hashed addresses; of the hrtimer_cpu_base
// fields it prints expires_next, hres_active (always 1), nr_events and the
// hang statistics (nr_retries, nr_hangs, max_hang_time), and
// of the tick_sched fields none; the "Tick Device" section is not printed.
// Wheel timers (timer_list) are not listed, as in the kernel.
func TimerList(k *kernel.Kernel) string {
	st := getState(k)
	now := k.Now()
	var b strings.Builder
	b.WriteString("Timer List Version: v0.9\n")
	fmt.Fprintf(&b, "HRTIMER_MAX_CLOCK_BASES: %d\n", maxClockBases)
	fmt.Fprintf(&b, "now at %d nsecs\n", now)
	b.WriteString("\n")
	for cpu := range st.cpus {
		cb := &st.cpus[cpu]
		var snaps [maxClockBases][]timerSnap
		cb.lock.Lock()
		for i := range cb.clock {
			for _, t := range cb.clock[i].q {
				snaps[i] = append(snaps[i], timerSnap{
					id: t.id, fn: funcName(t), state: t.state.Load(),
					soft: t.softexpires, hard: t.expires, seq: t.seq,
				})
			}
		}
		expiresNext := cb.nextEvent()
		nrEvents, nrRetries, nrHangs, maxHang := cb.nrEvents, cb.nrRetries, cb.nrHangs, cb.maxHangTime
		cb.lock.Unlock()

		fmt.Fprintf(&b, "cpu: %d\n", cpu)
		for i := range cb.clock {
			base := &cb.clock[i]
			fmt.Fprintf(&b, " clock %d:\n", i)
			fmt.Fprintf(&b, "  .base:       %016x\n", baseTokenBase+uint64(cpu)*baseTokenCPU+uint64(i)*baseTokenStep)
			fmt.Fprintf(&b, "  .index:      %d\n", base.index)
			fmt.Fprintf(&b, "  .resolution: %d nsecs\n", Resolution)
			fmt.Fprintf(&b, "  .get_time:   %s\n", getTimeNames[i%(maxClockBases/2)])
			fmt.Fprintf(&b, "  .offset:     %d nsecs\n", base.offset)
			b.WriteString("active timers:\n")
			ts := snaps[i]
			sort.Slice(ts, func(x, y int) bool {
				return ts[x].hard < ts[y].hard || (ts[x].hard == ts[y].hard && ts[x].seq < ts[y].seq)
			})
			basenow := now + base.offset
			for n, s := range ts {
				fmt.Fprintf(&b, " #%d: <%016x>, %s, S:%02x\n", n, timerTokenBase+s.id*timerTokenStep, s.fn, s.state)
				fmt.Fprintf(&b, " # expires at %d-%d nsecs [in %d to %d nsecs]\n", s.soft, s.hard, s.soft-basenow, s.hard-basenow)
			}
		}
		fmt.Fprintf(&b, "  .%-15s: %d nsecs\n", "expires_next", expiresNext)
		fmt.Fprintf(&b, "  .%-15s: %d\n", "hres_active", 1)
		fmt.Fprintf(&b, "  .%-15s: %d\n", "nr_events", nrEvents)
		fmt.Fprintf(&b, "  .%-15s: %d\n", "nr_retries", nrRetries)
		fmt.Fprintf(&b, "  .%-15s: %d\n", "nr_hangs", nrHangs)
		fmt.Fprintf(&b, "  .%-15s: %d\n", "max_hang_time", maxHang)
		fmt.Fprintf(&b, "jiffies: %d\n", k.Jiffies())
		b.WriteString("\n")
	}
	return b.String()
}
