package kernel_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// boot boots a virtual kernel for a test and shuts it down at the end.
func boot(t *testing.T, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	cfg.Virtual = true
	return ktest.Boot(t, cfg)
}

// logText returns the kernel log's lines (without timestamps).
func logText(k *kernel.Kernel) []string { return ktest.Lines(k) }

func dmesg(k *kernel.Kernel) string { return ktest.Dmesg(k) }

func run(t *testing.T, k *kernel.Kernel, d time.Duration) {
	t.Helper()
	ktest.Run(t, k, d)
}

func newRecord(msg string) slog.Record {
	return slog.NewRecord(time.Time{}, slog.LevelInfo, msg, 0)
}
