package taskletdriver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/taskletdriver"
)

func boot(t *testing.T, cfg kernel.Config) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, cfg, taskletdriver.Info)
}

func taskletRuns(k *kernel.Kernel) uint64 {
	var n uint64
	for cpu := range k.NumCPUs() {
		n += k.SoftirqCount(kernel.TaskletSoftirq, cpu)
	}
	return n
}

func TestLoadUnloadLogMatchesGolden(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	demotest.Insmod(t, k, ld, taskletdriver.Name)
	demotest.RunFor(t, k, time.Second)
	demotest.Rmmod(t, k, ld, taskletdriver.Name)
	golden.Check(t, "testdata/load_unload.golden", demotest.Dmesg(k, 0))
}

func TestTheTaskletRunsOnceFromTheTaskletSoftirq(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true, TraceEvents: "irq:tasklet_entry,irq:tasklet_exit"})
	demotest.Insmod(t, k, ld, taskletdriver.Name)
	demotest.RunFor(t, k, time.Second)
	if n := taskletRuns(k); n != 1 {
		t.Errorf("TASKLET_SOFTIRQ ran %d times, want 1", n)
	}
	var rep strings.Builder
	if err := k.Tracer().Report(&rep); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{"tasklet_entry:", "tasklet_exit:"} {
		if n := strings.Count(rep.String(), ev); n != 1 || !strings.Contains(rep.String(), "function=my_tasklet_func") {
			t.Errorf("%d %s events of my_tasklet_func, want 1:\n%s", n, ev, rep.String())
		}
	}
	demotest.Rmmod(t, k, ld, taskletdriver.Name)
}

// tasklet_kill waits for the scheduled run: an rmmod right after insmod,
// before anything else ran, still sees the tasklet execute first.
func TestUnloadWaitsForThePendingRun(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	demotest.Run(t, k, "sh", func(c *kernel.Ctx) int {
		if err := ld.Insmod(c, taskletdriver.Name); err != nil {
			t.Errorf("insmod: %v", err)
		}
		if err := ld.Rmmod(c, taskletdriver.Name); err != nil {
			t.Errorf("rmmod: %v", err)
		}
		return 0
	})
	want := []string{
		"tasklet_driver: loading out-of-tree module taints kernel.",
		"Tasklet scheduled",
		"Tasklet executed with data: 1234",
		"Tasklet removed",
	}
	if got := demotest.Lines(k, 0); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestRealTimeLoadUnloadIsRaceFree(t *testing.T) {
	k, ld := boot(t, kernel.Config{CPUs: 4, Quiet: true})
	for range 50 {
		demotest.Insmod(t, k, ld, taskletdriver.Name)
		demotest.Rmmod(t, k, ld, taskletdriver.Name)
	}
	if n := strings.Count(strings.Join(demotest.Lines(k, 0), "\n"), "Tasklet executed with data: 1234"); n != 50 {
		t.Errorf("%d runs for 50 loads", n)
	}
}
