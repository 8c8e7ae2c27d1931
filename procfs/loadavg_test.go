package procfs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
)

// sleepers boots a virtual kernel at HZ=250 with two tasks in msleep
// (TASK_UNINTERRUPTIBLE: D, which the load average counts, as the
// kernel's does) for a minute.
func sleepers(t *testing.T) *kernel.Kernel {
	k := ktest.Virtual(t, 2, 250)
	for i := range 2 {
		if _, err := k.Spawn(fmt.Sprintf("sleeper%d", i), func(c *kernel.Ctx) int {
			delay.Msleep(c, 60_000)
			return 0
		}); err != nil {
			t.Fatal(err)
		}
	}
	ktest.Run(t, k, time.Millisecond) // let them block
	return k
}

func TestLoadavgFollowsTheKernelsDecay(t *testing.T) {
	k := sleepers(t)
	var b strings.Builder
	b.WriteString(procfs.Loadavg(k))
	for range 12 {
		ktest.Run(t, k, 5004*time.Millisecond) // LOAD_FREQ: 5 s + 1 jiffy
		b.WriteString(procfs.Loadavg(k))
	}
	ktest.Run(t, k, 60*time.Second) // the sleepers have exited
	b.WriteString(procfs.Loadavg(k))
	golden.Check(t, "testdata/loadavg.golden", b.String())
	lines := strings.Split(b.String(), "\n")
	var l1, l5, l15 float64
	var run, threads, last int
	fmt.Sscanf(lines[12], "%f %f %f %d/%d %d", &l1, &l5, &l15, &run, &threads, &last)
	// Two tasks active for 60 s: 2(1-1/e) ≈ 1.26 over a minute.
	if l1 < 1.2 || l1 > 1.3 || !(l5 < l1 && l15 < l5) {
		t.Errorf("after a minute of 2 active tasks: %q", lines[12])
	}
	if run != 0 || threads < 4 || last != k.LastPID() {
		t.Errorf("running/threads last_pid: %q (last pid %d)", lines[12], k.LastPID())
	}
}

func TestLoadavgCatchesUpMissedSamplesAsNOHZDoes(t *testing.T) {
	every, once := sleepers(t), sleepers(t)
	for range 12 {
		ktest.Run(t, every, 5004*time.Millisecond)
		procfs.Loadavg(every)
	}
	ktest.Run(t, once, 12*5004*time.Millisecond)
	a, b := procfs.Loadavg(every), procfs.Loadavg(once)
	var a1, b1 float64
	fmt.Sscanf(a, "%f", &a1)
	fmt.Sscanf(b, "%f", &b1)
	if d := a1 - b1; d > 0.02 || d < -0.02 {
		t.Errorf("sampled every period: %q; caught up at once: %q", a, b)
	}
	if !strings.HasPrefix(procfs.Loadavg(ktest.Virtual(t, 1, 250)), "0.00 0.00 0.00 0/") {
		t.Error("a fresh kernel has load")
	}
}

func TestPSListsTasksAsProcps(t *testing.T) {
	k := sleepers(t)
	golden.Check(t, "testdata/ps.golden", procfs.PS(k))
}
