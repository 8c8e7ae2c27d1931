package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
)

// recordPeriodicTimer records every event of a 3-second virtual run of
// 1-2-timer with its periodic timer (a second, on wheel level 1) and
// returns the file's path.
func recordPeriodicTimer(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "periodic.kdt")
	_, errs, code := kdefer(t, "trace", "record", "-o", file, "--", "run", "1-2-timer", "periodic=Y", "--virtual", "--for", "3s", "--cpus", "2", "--console=false")
	if code != 0 {
		t.Fatalf("trace record: exit %d, stderr %q", code, errs)
	}
	return file
}

// kdefer top -b replays a recording as text, one frame a step: the golden
// is the three seconds of 1-2-timer, a frame a second.
func TestTopBatchOfAVirtualRecordingIsGolden(t *testing.T) {
	file := recordPeriodicTimer(t)
	out, errs, code := kdefer(t, "top", "-b", "--step", "1s", "--events", "6", file)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/top_batch_periodic.golden", out)
	if n := strings.Count(out, "kdefer top - periodic.kdt: kdefer run 1-2-timer periodic=Y"); n != 3 {
		t.Errorf("%d frames, want 3", n)
	}
	// Flags may follow the FILE, as top's own do.
	if again, _, _ := kdefer(t, "top", file, "-b", "--events", "6", "--step", "1s"); again != out {
		t.Errorf("flags after FILE give another output:\n%s", again)
	}
}

func TestTopBatchTakesIterationsWidthAndEvents(t *testing.T) {
	file := recordPeriodicTimer(t)
	out, _, code := kdefer(t, "top", "-b", "-n", "2", "-w", "40", "--events", "1", "--step", "500ms", file)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(out, "kdefer top - "); n != 2 {
		t.Errorf("-n 2 printed %d frames", n)
	}
	for _, l := range strings.Split(out, "\n") {
		if len([]rune(l)) > 40 {
			t.Errorf("-w 40: line of %d columns: %q", len([]rune(l)), l)
		}
	}
	if !strings.Contains(out, "frame 2/6") || strings.Count(out, "EVENTS\n") != 2 {
		t.Errorf("frames or events missing:\n%s", out)
	}
}

func TestTopReplayUsageErrors(t *testing.T) {
	file := recordPeriodicTimer(t)
	for _, args := range [][]string{
		{"top", "-b", "--", "run", "timer_simple"},
		{"top", "--step", "1s", "--", "run", "timer_simple"},
		{"top", "--step", "0", "-b", file},
		{"top", "--step", "1ns", "-b", file}, // billions of frames
		{"top", "-n", "3", file},
		{"top", "-b", "-w", "5", file},
		{"top", "-b", file, "extra"},
		{"top", "-b", file, "--nosuch"},
		{"top", "--interval", "1ms", file},
	} {
		if _, errs, code := kdefer(t, args...); code != 2 || strings.Count(errs, "\n") != 2 {
			t.Errorf("kdefer %q: exit %d, want 2 (stderr %q)", args, code, errs)
		}
	}
	notTrace := filepath.Join(t.TempDir(), "x.kdt")
	os.WriteFile(notTrace, []byte("hello"), 0o644)
	for _, f := range []string{filepath.Join(t.TempDir(), "none.kdt"), notTrace} {
		if _, errs, code := kdefer(t, "top", "-b", f); code != 1 || !strings.HasPrefix(errs, "kdefer: top: ") {
			t.Errorf("top -b %s: exit %d, stderr %q", f, code, errs)
		}
	}
}

// A signal to kdefer (its context cancelled with the signal as cause)
// ends a replay with 128+signal, as it ends a run.
func TestTopReplayEndsOnASignalWith128PlusIt(t *testing.T) {
	file := recordPeriodicTimer(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&runner.Interrupted{Sig: kernel.SIGTERM})
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"top", file}, &out, &errb); code != 128+int(kernel.SIGTERM) || errb.String() != "" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// kdefer top -b of a recording of workq_simple (a timer schedules a work
// item on events): the workqueue line and CPU 0's pool with its two
// kworkers, a frame a second.
func TestTopBatchOfAWorkqueueRecordingShowsItsPools(t *testing.T) {
	file := filepath.Join(t.TempDir(), "workq.kdt")
	_, errs, code := kdefer(t, "trace", "record", "-o", file, "--", "run", "workq_simple", "--virtual", "--for", "2s", "--cpus", "2", "--console=false")
	if code != 0 {
		t.Fatalf("trace record: exit %d, stderr %q", code, errs)
	}
	out, errs, code := kdefer(t, "top", "-b", "--step", "1s", "--events", "3", file)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/top_batch_workq.golden", out)
	if !strings.Contains(out, "POOL    WORKERS  BUSY  IDLE RUNNING PENDING   (1 pools)\n0             2     0     2       0       0") {
		t.Errorf("no pool table:\n%s", out)
	}
}
