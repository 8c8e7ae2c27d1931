package stats_test

import (
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/tasklet"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func fn(*kernel.Ctx, *timer.Timer)      {}
func tfn(*kernel.Ctx, *tasklet.Tasklet) {}

// run arms three timers in a virtual kernel at HZ=250: one 10 jiffies
// ahead (wheel level 0: exact), one 1000 ahead (level 2: its bucket is 64
// jiffies wide, so it runs late) and one 300 ahead that is deleted, and
// schedules a tasklet.
func run(t *testing.T, enable bool) (*kernel.Kernel, stats.Snapshot, stats.Snapshot) {
	k := ktest.Virtual(t, 2, 250)
	if enable {
		stats.Enable(k)
	}
	var a, b, c timer.Timer
	var tl tasklet.Tasklet
	tasklet.Setup(&tl, tfn)
	var expB uint64
	ktest.InTask(t, k, func(ctx *kernel.Ctx) {
		j := ctx.Jiffies()
		timer.Setup(ctx, &a, fn, 0)
		timer.Setup(ctx, &b, fn, 0)
		timer.Setup(ctx, &c, fn, 0)
		timer.Mod(ctx, &a, j+10)
		expB = j + 1000
		timer.Mod(ctx, &b, expB)
		timer.Mod(ctx, &c, j+300)
		tasklet.Schedule(ctx, &tl)
	})
	armed := stats.Read(k)
	ktest.InTask(t, k, func(*kernel.Ctx) { timer.Delete(&c) })
	ktest.Run(t, k, 10_000_000_000)
	return k, armed, stats.Read(k)
}

func TestTimerCountersAfterAKnownRun(t *testing.T) {
	_, armed, s := run(t, true)
	if !s.Counting {
		t.Fatal("not counting after Enable")
	}
	if armed.Timers.Levels[0].Pending != 1 || armed.Timers.Levels[1].Pending != 1 || armed.Timers.Levels[2].Pending != 1 {
		t.Errorf("pending per level after arming = %+v, want 1 on levels 0, 1 and 2", armed.Timers.Levels)
	}
	tm := s.Timers
	if tm.Armed != 3 || tm.Expired != 2 || tm.Cancelled != 1 {
		t.Errorf("armed %d expired %d cancelled %d, want 3 2 1", tm.Armed, tm.Expired, tm.Cancelled)
	}
	for i, lv := range tm.Levels {
		if lv.Pending != 0 {
			t.Errorf("level %d still has %d pending", i, lv.Pending)
		}
	}
	if l0 := tm.Levels[0]; l0.Expired != 1 || l0.LatenessMax != 1 {
		t.Errorf("level 0: %+v, want one expiry 1 jiffy late", l0)
	}
	l2 := tm.Levels[2]
	if l2.Expired != 1 || l2.LatenessMax <= 1 || l2.LatenessMax > 64 {
		t.Errorf("level 2: %+v, want one expiry 2..64 jiffies late", l2)
	}
	h := tm.Lateness
	if h.Count != 2 || h.Sum != float64(1+l2.LatenessSum)*0.004 || h.Max != float64(l2.LatenessMax)*0.004 {
		t.Errorf("lateness histogram %+v", h)
	}
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	if n != 2 || h.Counts[12] != 1 { // 4 ms: (2.048 ms, 4.096 ms]
		t.Errorf("bucket counts %v: want the 1-jiffy expiry in the 4.096 ms bucket, 2 in all", h.Counts)
	}
	if cum := h.Cumulative(); cum[len(cum)-1] != 2 {
		t.Errorf("cumulative %v", cum)
	}
}

func TestSoftirqTaskletAndTaskCounters(t *testing.T) {
	_, _, s := run(t, true)
	var raises, runs, tasklets uint64
	for _, c := range s.CPUs {
		raises += c.SoftirqRaises[kernel.TimerSoftirq]
		runs += c.Softirqs[kernel.TimerSoftirq]
		tasklets += c.TaskletRuns
	}
	if raises == 0 || runs == 0 || tasklets != 1 {
		t.Errorf("TIMER raises %d runs %d, tasklet runs %d (want >0, >0, 1)", raises, runs, tasklets)
	}
	if len(s.Tasks) == 0 || s.Tasks[0].State != "S" || s.Tasks[0].Kthreads == 0 {
		t.Errorf("tasks %+v, want sleeping kthreads first", s.Tasks)
	}
	if s.HZ != 250 || len(s.CPUs) != 2 || len(s.TraceLost) != 2 {
		t.Errorf("snapshot shape: HZ %d, %d CPUs, %d trace CPUs", s.HZ, len(s.CPUs), len(s.TraceLost))
	}
}

func TestWithoutEnableOnlyTheKernelsOwnCountsMove(t *testing.T) {
	k, _, s := run(t, false)
	if s.Counting || s.Timers.Armed != 0 || s.CPUs[0].SoftirqRaises[kernel.TimerSoftirq] != 0 {
		t.Errorf("counted without Enable: %+v", s.Timers)
	}
	if s.CPUs[0].Softirqs[kernel.TimerSoftirq]+s.CPUs[1].Softirqs[kernel.TimerSoftirq] == 0 {
		t.Error("softirq runs not read from the kernel")
	}
	if k.Tracer().On(trace.TimerStart) {
		t.Error("a tracepoint is on without Enable")
	}
}

func TestDisableDetachesTheProbesAndKeepsTheCounts(t *testing.T) {
	k, _, s := run(t, true)
	stats.Enable(k) // twice: nothing more attached
	stats.Disable(k)
	if stats.Enabled(k) || k.Tracer().On(trace.TimerStart) || k.Tracer().On(trace.TaskletEntry) {
		t.Fatal("probes still attached after Disable")
	}
	after := stats.Read(k)
	if after.Timers.Armed != s.Timers.Armed || after.Counting {
		t.Errorf("after Disable: armed %d (was %d), counting %v", after.Timers.Armed, s.Timers.Armed, after.Counting)
	}
}

func TestTwoKernelsCountApart(t *testing.T) {
	k1, _, s1 := run(t, true)
	k2 := ktest.Virtual(t, 1, 250)
	if s2 := stats.Read(k2); s2.Timers.Armed != 0 || len(s2.CPUs) != 1 {
		t.Errorf("second kernel sees %d arms, %d CPUs", s2.Timers.Armed, len(s2.CPUs))
	}
	if stats.Enabled(k2) || !stats.Enabled(k1) || s1.Timers.Armed != 3 {
		t.Error("enable state shared between kernels")
	}
}
