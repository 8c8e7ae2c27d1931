package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
)

// recordTimerSimple records every event of a 2-second virtual run of
// timer_simple into a file in a temporary directory and returns its path.
func recordTimerSimple(t *testing.T, extra ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "t.kdt")
	args := append([]string{"trace", "record", "-o", file}, extra...)
	args = append(args, "--", "run", "timer_simple", "--virtual", "--for", "2s", "--cpus", "2", "--console=false")
	_, errs, code := kdefer(t, args...)
	if code != 0 {
		t.Fatalf("trace record: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(errs, "records written to "+file) {
		t.Errorf("no summary on stderr: %q", errs)
	}
	return file
}

func TestTraceReportOfAVirtualRunIsGolden(t *testing.T) {
	file := recordTimerSimple(t)
	out, errs, code := kdefer(t, "trace", "report", file)
	if code != 0 {
		t.Fatalf("trace report: exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/trace_report_timer_simple.golden", out)
}

func TestTraceRecordFiltersEvents(t *testing.T) {
	file := recordTimerSimple(t, "-e", "timer:timer_expire_*", "-e", "softirq_entry")
	out, _, _ := kdefer(t, "trace", "report", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+3*3 {
		t.Fatalf("%d lines, want cpus= and 3 × (softirq_entry, timer_expire_entry, timer_expire_exit):\n%s", len(lines), out)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "softirq_entry:") && !strings.Contains(l, "timer_expire_") {
			t.Errorf("unselected event: %s", l)
		}
	}
}

func TestTraceRecordRejectsUnknownEventsAndMissingRun(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"trace", "record", "-e", "nosuch", "-o", filepath.Join(dir, "a"), "--", "run", "timer_simple", "--virtual"},
		{"trace", "record", "-o", filepath.Join(dir, "b"), "--", "timer_simple"},
		{"trace", "record", "-o", filepath.Join(dir, "c"), "--", "run"},
		{"trace", "record", "-o", filepath.Join(dir, "d"), "--", "run", "nosuch", "--virtual"},
		{"trace", "record", "--buffer", "0", "-o", filepath.Join(dir, "e"), "--", "run", "timer_simple"},
		{"trace", "bogus"},
		{"trace", "report", "a", "b"},
	} {
		if _, errs, code := kdefer(t, args...); code != 2 {
			t.Errorf("kdefer %q: exit %d, want 2 (stderr %q)", args, code, errs)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed records left files: %v", ents)
	}
}

func TestTraceRecordCountsLostEventsWithASmallBuffer(t *testing.T) {
	// 4 records per CPU and a drain every hour: the run's ~40 records
	// overflow, and only the final drain reads what is left.
	file := recordTimerSimple(t, "--buffer", "4", "--interval", "1h")
	out, _, _ := kdefer(t, "trace", "report", file)
	if !strings.Contains(out, "EVENTS DROPPED]") {
		t.Errorf("report shows no drop:\n%s", out)
	}
}

func TestTraceReportOfATruncatedFileWarnsAndPrintsWhatItHas(t *testing.T) {
	file := recordTimerSimple(t)
	data, _ := os.ReadFile(file)
	os.WriteFile(file, data[:len(data)-10], 0o644)
	out, errs, code := kdefer(t, "trace", "report", file)
	if code != 0 || !strings.Contains(errs, "truncated") || !strings.HasPrefix(out, "cpus=2\n") {
		t.Errorf("exit %d, stderr %q, out:\n%s", code, errs, out)
	}
	if _, errs, code := kdefer(t, "trace", "report", filepath.Join(t.TempDir(), "none")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
}

func TestTraceListShowsEveryEventWithItsFormat(t *testing.T) {
	out, _, code := kdefer(t, "trace", "list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	golden.Check(t, "testdata/trace_list.golden", out)
	full, _, _ := kdefer(t, "trace", "list", "-F")
	if !strings.Contains(full, "irq:irq_handler_entry\nname: irq_handler_entry\nformat:\n\tfield:int irq;\n") {
		t.Errorf("trace list -F:\n%s", full)
	}
}

// The formats start in one column, one after the longest event name
// (sched:sched_kthread_work_execute_start overflowed a fixed width).
func TestTraceListAlignsFormatsAfterTheLongestEventName(t *testing.T) {
	out, _, code := kdefer(t, "trace", "list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	longest := 0
	for _, l := range lines {
		name, _, _ := strings.Cut(l, " ")
		longest = max(longest, len(name))
	}
	for _, l := range lines {
		name, _, _ := strings.Cut(l, " ")
		if len(l) <= longest+1 || strings.TrimRight(l[:longest+1], " ") != name || l[longest+1] == ' ' {
			t.Errorf("format of %s does not start at column %d:\n%s", name, longest+2, l)
		}
	}
	if longest != len("sched:sched_kthread_work_execute_start") {
		t.Errorf("longest name %d bytes", longest)
	}
}

func TestTraceExportWritesPerfettoJSON(t *testing.T) {
	file := recordTimerSimple(t)
	out := filepath.Join(t.TempDir(), "t.json")
	_, errs, code := kdefer(t, "trace", "export", "--format", "perfetto", "-o", out, file)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		TraceEvents []struct {
			Name string `json:"name"`
			Ph   string `json:"ph"`
		} `json:"traceEvents"`
		OtherData map[string]string `json:"otherData"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	dings := 0
	for _, e := range top.TraceEvents {
		if e.Ph == "X" && e.Name == "ding" {
			dings++
		}
	}
	if dings != 3 || !strings.HasPrefix(top.OtherData["title"], "kdefer run timer_simple") {
		t.Errorf("%d ding slices (want 3), title %q", dings, top.OtherData["title"])
	}
	if _, _, code := kdefer(t, "trace", "export", "--format", "svg", file); code != 2 {
		t.Errorf("--format svg: exit %d, want 2", code)
	}
}
