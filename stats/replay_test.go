package stats_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/tasklet"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

// A Replay fed the records of a run counts what the live probes counted
// during it: the same timers, lateness, softirqs and tasklets, and the
// kernel's jiffies at the end.
func TestReplayOfARecordingCountsWhatTheProbesCounted(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: jiffies.HZ250, Quiet: true, TraceEvents: "all", TraceBufferRecords: 1 << 16})
	stats.Enable(k)
	var a, b, c timer.Timer
	var tl tasklet.Tasklet
	tasklet.Setup(&tl, tfn)
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		j := ctx.Jiffies()
		timer.Setup(ctx, &a, fn, 0)
		timer.Setup(ctx, &b, fn, 0)
		timer.Setup(ctx, &c, fn, 0)
		timer.Mod(ctx, &a, j+10)
		timer.Mod(ctx, &b, j+1000)
		timer.Mod(ctx, &c, j+300)
		tasklet.Schedule(ctx, &tl)
	})
	ktest.InTask(t, k, func(*kernel.Ctx) { timer.Delete(&c) })
	ktest.Run(t, k, 10_000_000_000)
	live := stats.Read(k)

	recs, lost := k.Tracer().Snapshot()
	trace.SortRecords(recs)
	p, err := stats.NewReplay(2, jiffies.HZ250)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		p.Add(&recs[i])
	}
	for cpu, n := range lost {
		p.AddLost(cpu, n)
	}
	got := p.Snapshot(live.Now)
	if !reflect.DeepEqual(got.Timers, live.Timers) || !reflect.DeepEqual(got.HRTimers, live.HRTimers) {
		t.Errorf("timers: replay %+v\nlive %+v", got.Timers, live.Timers)
	}
	for cpu := range live.CPUs {
		g, l := got.CPUs[cpu], live.CPUs[cpu]
		if g.Softirqs != l.Softirqs || g.SoftirqRaises != l.SoftirqRaises || g.TaskletRuns != l.TaskletRuns {
			t.Errorf("CPU%d: replay %+v\nlive %+v", cpu, g, l)
		}
	}
	if got.Jiffies != live.Jiffies || got.HZ != 250 || !got.Counting || len(got.TraceLost) != 2 {
		t.Errorf("replay jiffies %d (live %d), HZ %d, counting %v, lost %v", got.Jiffies, live.Jiffies, got.HZ, got.Counting, got.TraceLost)
	}
	if live.Timers.Expired != 2 || live.CPUs[0].TaskletRuns+live.CPUs[1].TaskletRuns != 1 {
		t.Errorf("the run did not do what it should: %+v", live.Timers)
	}
}

func TestNewReplayRefusesWhatNoKernelRanWith(t *testing.T) {
	for _, tc := range []struct {
		cpus int
		hz   jiffies.HZ
	}{{0, jiffies.HZ250}, {kernel.NRCPUs + 1, jiffies.HZ250}, {2, 0}, {2, 123}} {
		if _, err := stats.NewReplay(tc.cpus, tc.hz); !errors.Is(err, stats.ErrReplay) {
			t.Errorf("NewReplay(%d, %d): %v", tc.cpus, tc.hz, err)
		}
	}
}
