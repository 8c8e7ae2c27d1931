package kernel_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// boot boots a virtual kernel for a test and shuts it down at the end.
func boot(t *testing.T, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	cfg.Virtual = true
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	k, err := kernel.Boot(cfg)
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return k
}

// logText returns the kernel log's lines (without timestamps).
func logText(k *kernel.Kernel) []string {
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Text)
	}
	return out
}

func dmesg(k *kernel.Kernel) string {
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(printk.FormatDmesg(r))
		b.WriteByte('\n')
	}
	return b.String()
}

func run(t *testing.T, k *kernel.Kernel, d time.Duration) {
	t.Helper()
	if err := k.Run(context.Background(), d); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func newRecord(msg string) slog.Record {
	return slog.NewRecord(time.Time{}, slog.LevelInfo, msg, 0)
}
