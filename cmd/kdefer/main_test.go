package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func kdefer(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestRunLoadsModuleStreamsLogAndUnloads(t *testing.T) {
	out, errs, code := kdefer(t, "run", "testmod", "count=5", "bogus=1", "--virtual", "--for", "2s", "--cpus", "2", "--no-timestamps", "--proc")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"testmod: unknown parameter 'bogus' ignored",
		"count=5",
		"testmod:Exit(): unloaded",
		"$ cat /proc/softirqs",
		"     TASKLET:",
		"LOC: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunIsReproducibleInVirtualTime(t *testing.T) {
	a, _, _ := kdefer(t, "run", "testmod", "--virtual", "--for", "1s", "--cpus", "2")
	b, _, _ := kdefer(t, "run", "testmod", "--virtual", "--for", "1s", "--cpus", "2")
	if a != b {
		t.Fatalf("two virtual runs differ:\n%s\n---\n%s", a, b)
	}
}

func TestBadParameterValueFailsTheLoad(t *testing.T) {
	out, errs, code := kdefer(t, "run", "testmod", "count=abc", "--virtual")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "testmod: `abc' invalid for parameter `count'") {
		t.Errorf("log lacks the kernel's message:\n%s", out)
	}
	if strings.TrimSpace(errs) != "insmod: ERROR: could not insert module testmod: Invalid parameters" {
		t.Errorf("stderr = %q", errs)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run"},
		{"run", "nosuch"},
		{"run", "testmod", "--hz", "123"},
		{"run", "testmod", "--for", "-1s"},
		{"run", "testmod", "--cpus", "999"},
	} {
		if _, _, code := kdefer(t, args...); code != 2 {
			t.Errorf("kdefer %q: exit %d, want 2", args, code)
		}
	}
}

func TestHelpVersionAndModules(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help", "run"}, {"run", "--help"}, {"modules", "--help"}, {"version"}} {
		if out, _, code := kdefer(t, args...); code != 0 || out == "" {
			t.Errorf("kdefer %q: exit %d, output %q", args, code, out)
		}
	}
	out, _, _ := kdefer(t, "modules")
	if !strings.Contains(out, "testmod") || !strings.Contains(out, "count:int") {
		t.Errorf("modules output:\n%s", out)
	}
}
