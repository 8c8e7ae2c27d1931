package delay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestOverflowingDelaysNeverReturnEarly: ndelay(1<<63+5), udelay(1<<62) and
// mdelay(1<<62) ask for more nanoseconds than an int64 holds. They used to
// wrap to a delay of about 100 ns; now they busy-wait "forever": the
// soft-lockup watchdog reports the CPU, the task never returns, the
// virtual-time driver stops with EDEADLK instead of looping, and Shutdown
// ends the wait.
func TestOverflowingDelaysNeverReturnEarly(t *testing.T) {
	for name, f := range map[string]func(c *kernel.Ctx){
		"ndelay(1<<63+5)": func(c *kernel.Ctx) { delay.Ndelay(c, 1<<63+5) },
		"udelay(1<<62)":   func(c *kernel.Ctx) { delay.Udelay(c, 1<<62) },
		"mdelay(1<<62)":   func(c *kernel.Ctx) { delay.Mdelay(c, 1<<62) },
	} {
		t.Run(name, func(t *testing.T) {
			k := bootK(t, 250)
			returned := false
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := k.RunTask(ctx, "delay", func(c *kernel.Ctx) int {
				f(c)
				returned = true
				return 0
			})
			if !errors.Is(err, kernel.EDEADLK) {
				t.Fatalf("RunTask: %v, want EDEADLK (stuck in the busy-wait)", err)
			}
			if returned {
				t.Fatal("the delay returned")
			}
			if k.Now() < 20*int64(time.Second) {
				t.Fatalf("driver stopped at %d ns, before the watchdog's threshold", k.Now())
			}
			if !strings.Contains(logText(k), "watchdog: BUG: soft lockup - CPU#") {
				t.Fatalf("no soft-lockup report:\n%s", logText(k))
			}
			ktest.Shutdown(t, k)
		})
	}
}
