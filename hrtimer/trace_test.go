package hrtimer_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
)

// hrEvents returns the kernel's hrtimer records as "comm-pid [cpu]
// event: info", naming ptrs by the tokens they get in order.
func hrEvents(k *kernel.Kernel, ptrs ...*hrtimer.HRTimer) ([]string, []string) {
	f := trace.NewFormatter(k.Tracer().String)
	var toks []string
	for _, p := range ptrs {
		toks = append(toks, f.Pointer(trace.Ptr(trace.Addr(p))))
	}
	recs, _ := k.Tracer().Snapshot()
	var out []string
	for i := range recs {
		r := &recs[i]
		if !strings.HasPrefix(r.Event.Name(), "hrtimer_") {
			continue
		}
		comm := r.CommString()
		switch {
		case r.PID == 0:
			comm = "<idle>"
		case comm == "":
			comm = "<...>"
		}
		out = append(out, fmt.Sprintf("%s-%d [%03d] %s: %s", comm, r.PID, r.CPU, r.Event.Name(), f.Info(r)))
	}
	return out, toks
}

var ticks int

func periodic(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
	ticks++
	if ticks == 2 {
		return hrtimer.NoRestart
	}
	hrtimer.ForwardNow(t, 100*us)
	return hrtimer.Restart
}

// TestHrtimerTracepointsFollowHrtimerC: setup (recorded at the first
// start), start, a restart that removes the queued timer first, two
// expiries (cancel, entry, exit; the first one restarting with mode ABS),
// and a try_to_cancel of a queued timer without context.
func TestHrtimerTracepointsFollowHrtimerC(t *testing.T) {
	k := boot(t, 1, false)
	k.Tracer().Enable("timer:hrtimer_*")
	ticks = 0
	var a, b hrtimer.HRTimer
	runTask(t, k, func(c *kernel.Ctx) int {
		hrtimer.Setup(&a, periodic, hrtimer.ClockMonotonic, hrtimer.ModeRel|hrtimer.ModeSoft)
		hrtimer.Start(c, &a, 50*us, hrtimer.ModeRel|hrtimer.ModeSoft)
		hrtimer.Start(c, &a, 60*us, hrtimer.ModeRel|hrtimer.ModeSoft)
		hrtimer.Setup(&b, periodic, hrtimer.ClockRealtime, hrtimer.ModeAbs)
		hrtimer.Start(c, &b, 1e18, hrtimer.ModeAbs)
		hrtimer.TryToCancel(&b)
		return 0
	})
	run(t, k, 1*ms)
	got, tok := hrEvents(k, &a, &b)
	want := []string{
		"hrtest-4 [000] hrtimer_setup: hrtimer=" + tok[0] + " clockid=CLOCK_MONOTONIC mode=REL|SOFT",
		"hrtest-4 [000] hrtimer_start: hrtimer=" + tok[0] + " function=periodic expires=50000 softexpires=50000 mode=REL|SOFT",
		"hrtest-4 [000] hrtimer_cancel: hrtimer=" + tok[0],
		"hrtest-4 [000] hrtimer_start: hrtimer=" + tok[0] + " function=periodic expires=60000 softexpires=60000 mode=REL|SOFT",
		"hrtest-4 [000] hrtimer_setup: hrtimer=" + tok[1] + " clockid=CLOCK_REALTIME mode=ABS",
		"hrtest-4 [000] hrtimer_start: hrtimer=" + tok[1] + " function=periodic expires=1000000000000000000 softexpires=1000000000000000000 mode=ABS",
		"<...>--1 [000] hrtimer_cancel: hrtimer=" + tok[1],
		"<idle>-0 [000] hrtimer_cancel: hrtimer=" + tok[0],
		"<idle>-0 [000] hrtimer_expire_entry: hrtimer=" + tok[0] + " function=periodic now=60000",
		"<idle>-0 [000] hrtimer_expire_exit: hrtimer=" + tok[0],
		"<idle>-0 [000] hrtimer_start: hrtimer=" + tok[0] + " function=periodic expires=160000 softexpires=160000 mode=ABS",
		"<idle>-0 [000] hrtimer_cancel: hrtimer=" + tok[0],
		"<idle>-0 [000] hrtimer_expire_entry: hrtimer=" + tok[0] + " function=periodic now=160000",
		"<idle>-0 [000] hrtimer_expire_exit: hrtimer=" + tok[0],
	}
	if !slices.Equal(got, want) {
		t.Errorf("hrtimer events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	recs, _ := k.Tracer().Snapshot()
	for _, r := range recs {
		if r.Event == trace.HrtimerExpireEntry && r.Flags&trace.FlagSoftirq == 0 {
			t.Errorf("a soft hrtimer's expire_entry has flags %#x, want serving a softirq", r.Flags)
		}
	}
}

func TestHrtimerCancelTracesOnlyAQueuedTimer(t *testing.T) {
	k := boot(t, 1, false)
	k.Tracer().Enable("hrtimer_cancel")
	var a hrtimer.HRTimer
	runTask(t, k, func(c *kernel.Ctx) int {
		hrtimer.Setup(&a, periodic, hrtimer.ClockMonotonic, hrtimer.ModeRel)
		hrtimer.Cancel(c, &a) // never started
		hrtimer.Start(c, &a, 1*ms, hrtimer.ModeRel)
		hrtimer.Cancel(c, &a)
		hrtimer.Cancel(c, &a) // no longer queued
		return 0
	})
	got, tok := hrEvents(k, &a)
	if want := []string{"hrtest-4 [000] hrtimer_cancel: hrtimer=" + tok[0]}; !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}
