package top_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/top"
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/workqueue"
)

func spin(c *kernel.Ctx, _ *workqueue.Work) { delay.Mdelay(c, 10) }
func nap(c *kernel.Ctx, _ *workqueue.Work)  { delay.Msleep(c, 10) }
func nop(*kernel.Ctx, *workqueue.Work)      {}

// poolRun is a virtual 2-CPU kernel, recorded, that at 5 ms has: on CPU
// 0's pool an item spinning (its worker running) and two waiting behind
// it; on CPU 1's pool two items asleep; on CPU 1's high-priority pool one
// spinning; on the unbound pool one asleep; CPU 0's BH pool has run an
// item. It returns the live sample at 5 ms and the recording.
func poolRun(t *testing.T) (top.Sample, *trace.File) {
	t.Helper()
	k := ktest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true, TraceEvents: "all", TraceBufferRecords: 1 << 16})
	var buf bytes.Buffer
	rec, err := trace.NewRecorder(&buf, k.Tracer(), trace.FileHeader{HZ: 250, Virtual: true})
	if err != nil {
		t.Fatal(err)
	}
	ws := make([]workqueue.Work, 8)
	for i, fn := range []workqueue.Func{spin, nop, nop, nap, nap, spin, nap, nop} {
		workqueue.Init(&ws[i], fn)
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		hi, err := workqueue.AllocWorkqueue(c, "hi", workqueue.Highpri, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			workqueue.ScheduleWorkOn(c, 0, &ws[i])
		}
		workqueue.ScheduleWorkOn(c, 1, &ws[3])
		workqueue.ScheduleWorkOn(c, 1, &ws[4])
		workqueue.QueueWorkOn(c, 1, hi, &ws[5])
		workqueue.QueueWork(c, workqueue.SystemUnbound(k), &ws[6])
		kernel.LocalBHDisable(c)
		workqueue.QueueWork(c, workqueue.SystemBH(k), &ws[7])
		kernel.LocalBHEnable(c)
	})
	ktest.Run(t, k, 5_000_000)
	live := top.Collect(k, nil)
	ktest.Run(t, k, 100_000_000)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := trace.ReadFile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return live, f
}

func poolText(ps []top.Pool) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s workers=%d busy=%d idle=%d running=%d pending=%d\n", p.Name, p.Workers, p.Busy(), p.Idle, p.Running, p.Pending)
	}
	return b.String()
}

// TestLivePoolsShowWorkersRunningSleepingAndWaiting: the live sample's
// pool rows, read through the workqueue package.
func TestLivePoolsShowWorkersRunningSleepingAndWaiting(t *testing.T) {
	live, _ := poolRun(t)
	want := `0B workers=1 busy=0 idle=1 running=0 pending=0
0 workers=2 busy=1 idle=1 running=1 pending=2
1 workers=3 busy=2 idle=1 running=0 pending=0
1H workers=2 busy=1 idle=1 running=1 pending=0
u8 workers=2 busy=1 idle=1 running=0 pending=0
`
	if got := poolText(live.Pools); got != want {
		t.Errorf("live pools:\n%s\nwant\n%s", got, want)
	}
	if len(live.Stats.Workqueues) != 0 {
		t.Errorf("workqueue counts without stats.Enable: %+v", live.Stats.Workqueues)
	}
}

// TestReplayPoolsMatchTheLiveViewAtTheSameTime: the pools a replay
// reconstructs from the records at 5 ms are what the live view read then.
func TestReplayPoolsMatchTheLiveViewAtTheSameTime(t *testing.T) {
	live, f := poolRun(t)
	rp, err := top.NewReplay(f, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got := rp.Sample(0, 0)
	if rp.At(0) != 5e6 {
		t.Fatalf("first frame at %d", rp.At(0))
	}
	if poolText(got.Pools) != poolText(live.Pools) {
		t.Errorf("replay pools at 5 ms:\n%s\nlive\n%s", poolText(got.Pools), poolText(live.Pools))
	}
	wq := map[string]uint64{}
	for _, w := range got.Stats.Workqueues {
		wq[w.Name] = w.Queued
	}
	if wq["events"] != 5 || wq["hi"] != 1 || wq["events_unbound"] != 1 || wq["events_bh"] != 1 {
		t.Errorf("replay's workqueue counts by name: %v", wq)
	}
}

// TestReplayPoolViewAt80x24IsGolden: the frame at 5 ms of the pool run,
// as the replay shows it.
func TestReplayPoolViewAt80x24IsGolden(t *testing.T) {
	_, f := poolRun(t)
	rp, err := top.NewReplay(f, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	m := top.Play(rp, time.Second, "pools.kdt")
	keys(m, "p")
	got := m.Render()
	golden.Check(t, "testdata/replay_pools_80x24.golden", got+"\n")
	if lines := strings.Split(got, "\n"); len(lines) != 24 {
		t.Errorf("%d lines, want 24", len(lines))
	}
	// Without the scheduler's records nr_running is not known.
	var recs []trace.Record
	for _, r := range f.Records {
		if r.Event != trace.SchedSwitch {
			recs = append(recs, r)
		}
	}
	f.Records = recs
	rp, err = top.NewReplay(f, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rp.Sample(0, 0).Pools {
		if p.Running != -1 {
			t.Errorf("pool %s: running %d without sched_switch records", p.Name, p.Running)
		}
	}
	if r := top.Play(rp, time.Second, "x").Render(); !strings.Contains(r, "1H            2     1     1       -       0") {
		t.Errorf("an unknown nr_running is not shown as -:\n%s", r)
	}
}
