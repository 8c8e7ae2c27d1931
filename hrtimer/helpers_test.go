package hrtimer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

const (
	us = int64(1000)
	ms = int64(1000 * 1000)
)

// boot boots a kernel for a test (virtual time unless real is set) and
// shuts it down at the end.
func boot(t testing.TB, cpus int, real bool) *kernel.Kernel {
	t.Helper()
	k, err := kernel.Boot(kernel.Config{CPUs: cpus, Virtual: !real, Quiet: true})
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return k
}

// run runs a virtual kernel for d ns of virtual time.
func run(t testing.TB, k *kernel.Kernel, d int64) {
	t.Helper()
	if err := k.Run(context.Background(), time.Duration(d)); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// runTask runs fn as a task and returns its exit code.
func runTask(t testing.TB, k *kernel.Kernel, fn func(c *kernel.Ctx) int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := k.RunTask(ctx, "hrtest", fn)
	if err != nil {
		t.Fatalf("RunTask: %v", err)
	}
	return code
}

// logText returns the kernel log as text lines.
func logText(k *kernel.Kernel) string {
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Text)
		if !strings.HasSuffix(r.Text, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
