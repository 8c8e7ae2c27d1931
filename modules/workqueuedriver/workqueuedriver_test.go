package workqueuedriver_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/workqueuedriver"
	"github.com/kdefer/kdefer/procfs"
)

// TestLoadRunUnloadMatchesGolden: load, the work's line from its kworker,
// unload; the log as dmesg prints it.
func TestLoadRunUnloadMatchesGolden(t *testing.T) {
	k, ld := demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true}, workqueuedriver.Info)
	demotest.Insmod(t, k, ld, workqueuedriver.Name)
	demotest.RunFor(t, k, 100*time.Millisecond)
	demotest.Rmmod(t, k, ld, workqueuedriver.Name)
	golden.Check(t, "testdata/load_unload.golden", demotest.Dmesg(k, 0))
	want := []string{
		"workqueue_driver: loading out-of-tree module taints kernel.",
		"Workqueue scheduled",
		"Workqueue executed in process context",
		"Workqueue removed",
	}
	if got := demotest.Lines(k, 0); !slices.Equal(got, want) {
		t.Fatalf("log %q, want %q", got, want)
	}
}

// TestTheWorkRunsInAnUnboundKworkerAndTheRescuerLivesWithTheModule: the
// message is logged by a kworker of the unbound pool (process context),
// ps lists the workqueue's rescuer [kworker/R-my_wq] while the module is
// loaded and not after, and the worker shows "-my_wq" once it has run the
// item.
func TestTheWorkRunsInAnUnboundKworkerAndTheRescuerLivesWithTheModule(t *testing.T) {
	k, ld := demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true}, workqueuedriver.Info)
	demotest.Insmod(t, k, ld, workqueuedriver.Name)
	demotest.RunFor(t, k, 10*time.Millisecond)
	names := func() []string {
		var out []string
		for _, tk := range k.Tasks() {
			out = append(out, procfs.TaskName(tk))
		}
		return out
	}
	loaded := names()
	if !slices.Contains(loaded, "kworker/R-my_wq") || !slices.Contains(loaded, "kworker/u8:0-my_wq") {
		t.Errorf("tasks while loaded: %q, want kworker/R-my_wq and kworker/u8:0-my_wq", loaded)
	}
	for _, r := range demotest.Records(k, 0) {
		if r.Text == "Workqueue executed in process context" {
			if tk := k.FindTask(r.PID); tk == nil || !strings.HasPrefix(tk.Comm(), "kworker/u") {
				t.Errorf("the work ran on pid %d, not an unbound kworker", r.PID)
			}
		}
	}
	demotest.Rmmod(t, k, ld, workqueuedriver.Name)
	if slices.Contains(names(), "kworker/R-my_wq") {
		t.Errorf("the rescuer outlives the module: %q", names())
	}
}
