package workqueue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

const ms = int64(time.Millisecond)

// onCPU starts fn as a user task bound to cpu.
func onCPU(t *testing.T, k *kernel.Kernel, comm string, cpu int, fn func(c *kernel.Ctx)) *kernel.Task {
	t.Helper()
	tk, err := k.CreateTask(kernel.TaskOpts{Comm: comm, CPU: cpu}, func(c *kernel.Ctx) int { fn(c); return 0 })
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(tk)
	return tk
}

// logHas fails t unless a log line contains s.
func logHas(t *testing.T, k *kernel.Kernel, s string) {
	t.Helper()
	if !ktest.Contains(k, s) {
		t.Fatalf("log has no line with %q:\n%s", s, ktest.Text(k))
	}
}

// logCount counts the log lines containing s.
func logCount(k *kernel.Kernel, s string) int {
	n := 0
	for _, l := range ktest.Lines(k) {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// kworkers returns the comms of k's live kworker tasks.
func kworkers(k *kernel.Kernel) []string {
	var out []string
	for _, tk := range k.Tasks() {
		if strings.HasPrefix(tk.Comm(), "kworker/") {
			out = append(out, tk.Comm())
		}
	}
	return out
}
