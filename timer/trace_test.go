package timer_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

func tracedFn(*kernel.Ctx, *timer.Timer) {}

// timerEvents returns the kernel's timer records as "comm-pid event: info"
// lines; the pointers given are named by the tokens they get, in order.
func timerEvents(k *kernel.Kernel, ptrs ...*timer.Timer) ([]string, []string) {
	f := trace.NewFormatter(k.Tracer().String)
	var toks []string
	for _, p := range ptrs {
		toks = append(toks, f.Pointer(trace.Ptr(trace.Addr(p))))
	}
	recs, _ := k.Tracer().Snapshot()
	var out []string
	for i := range recs {
		r := &recs[i]
		if r.Event.System() != "timer" {
			continue
		}
		comm := r.CommString()
		switch {
		case r.PID == 0:
			comm = "<idle>"
		case comm == "":
			comm = "<...>"
		}
		out = append(out, fmt.Sprintf("%s-%d %s: %s", comm, r.PID, r.Event.Name(), f.Info(r)))
	}
	return out, toks
}

// TestTimerTracepointsFollowTimerC walks one timer through what
// kernel/time/timer.c traces: setup, arm, a re-arm that changes nothing, a
// re-arm to another bucket (detach and enqueue), expiry (detach, then the
// callback between entry and exit), a delete without context and a
// timer_delete_sync.
func TestTimerTracepointsFollowTimerC(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, HZ: 1000, TraceEvents: "timer"})
	var a, b timer.Timer
	var j uint64
	task(t, k, func(c *kernel.Ctx) {
		j = c.Jiffies()
		timer.Setup(c, &a, tracedFn, 0)
		timer.Mod(c, &a, j+10)
		timer.Mod(c, &a, j+10)
		timer.Mod(c, &a, j+100)
		timer.Setup(c, &b, tracedFn, timer.FlagDeferrable|timer.FlagIRQSafe)
		timer.Mod(c, &b, j+5)
		timer.Delete(&b)
		timer.Mod(c, &b, j+5)
		timer.DeleteSync(c, &b)
		timer.DeleteSync(c, &b) // not pending: nothing to trace
	})
	ktest.Run(t, k, time.Second)
	got, tok := timerEvents(k, &a, &b)
	// Level 0 queues j+10 in the bucket of j+11; level 1 (granularity 8)
	// queues j+100 in the bucket at the next multiple of 8 after it.
	l1 := (j + 100 + 8) >> 3
	l1Expiry := l1 << 3
	want := []string{
		"test-4 timer_init: timer=" + tok[0],
		fmt.Sprintf("test-4 timer_start: timer=%s function=tracedFn expires=%d [timeout=10] bucket_expiry=%d cpu=0 idx=%d flags=", tok[0], j+10, j+11, (j+11)%64),
		"test-4 timer_cancel: timer=" + tok[0],
		fmt.Sprintf("test-4 timer_start: timer=%s function=tracedFn expires=%d [timeout=100] bucket_expiry=%d cpu=0 idx=%d flags=", tok[0], j+100, l1Expiry, 64+l1%64),
		"test-4 timer_init: timer=" + tok[1],
		fmt.Sprintf("test-4 timer_start: timer=%s function=tracedFn expires=%d [timeout=5] bucket_expiry=%d cpu=0 idx=%d flags=D|I", tok[1], j+5, j+6, (j+6)%64),
		"<...>--1 timer_cancel: timer=" + tok[1],
		fmt.Sprintf("test-4 timer_start: timer=%s function=tracedFn expires=%d [timeout=5] bucket_expiry=%d cpu=0 idx=%d flags=D|I", tok[1], j+5, j+6, (j+6)%64),
		"test-4 timer_cancel: timer=" + tok[1],
		"<idle>-0 timer_cancel: timer=" + tok[0],
		fmt.Sprintf("<idle>-0 timer_expire_entry: timer=%s function=tracedFn now=%d baseclk=%d", tok[0], l1Expiry, l1Expiry),
		"<idle>-0 timer_expire_exit: timer=" + tok[0],
	}
	if !slices.Equal(got, want) {
		t.Errorf("timer events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTimerMigratingBetweenCPUsTracesCancelAndStart: a pending timer
// re-armed from another CPU moves to that CPU's base, as __mod_timer
// moves it: detach on the old base, enqueue on the new.
func TestTimerMigratingBetweenCPUsTracesCancelAndStart(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250})
	k.Tracer().Enable("timer_start,timer_cancel")
	var tm timer.Timer
	var j uint64
	timer.Setup(k.IdleCtx(0), &tm, tracedFn, 0)
	timer.Mod(k.IdleCtx(0), &tm, k.Jiffies()+100)
	j = k.Jiffies()
	timer.Mod(k.IdleCtx(1), &tm, j+200)
	got, tok := timerEvents(k, &tm)
	if len(got) != 3 || !strings.HasPrefix(got[0], "<idle>-0 timer_start: timer="+tok[0]) ||
		got[1] != "<idle>-0 timer_cancel: timer="+tok[0] ||
		!strings.Contains(got[2], fmt.Sprintf("expires=%d [timeout=200]", j+200)) || !strings.Contains(got[2], " cpu=1 ") {
		t.Errorf("timer events:\n%s\nwant a start on cpu 0, a cancel, a start on cpu 1", strings.Join(got, "\n"))
	}
	recs, _ := k.Tracer().Snapshot()
	if recs[2].CPU != 1 {
		t.Errorf("migrated start recorded on cpu %d, want the arming cpu 1", recs[2].CPU)
	}
	timer.Delete(&tm)
}

// TestDisabledTimerTracepointsRecordNothing arms, re-arms, expires and
// deletes timers with only an unrelated event on.
func TestDisabledTimerTracepointsRecordNothing(t *testing.T) {
	k := bootK(t, kernel.Config{Virtual: true, CPUs: 1, TraceEvents: "hrtimer_start"})
	var a timer.Timer
	task(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &a, tracedFn, 0)
		timer.Mod(c, &a, c.Jiffies()+1)
		timer.Mod(c, &a, c.Jiffies()+100)
		timer.Delete(&a)
		timer.Mod(c, &a, c.Jiffies()+1)
	})
	ktest.Run(t, k, time.Second)
	if recs, _ := k.Tracer().Snapshot(); len(recs) != 0 {
		t.Errorf("%d records with the timer events off", len(recs))
	}
}
