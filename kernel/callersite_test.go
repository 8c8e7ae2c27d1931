package kernel_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timer"
)

// TestWarnRaisedByKdeferItselfNamesItsOwnSite: a WARN that kdefer raises
// with no user code between it and the interrupt that ran it (here
// call_timer_fn's preempt-leak check, after the callback returned) names
// kdefer's own line, as the kernel names the WARN's line — not the Go
// runtime's goexit (real time) nor the test's Run call (virtual time).
func TestWarnRaisedByKdeferItselfNamesItsOwnSite(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		sites := make(chan string, 1)
		k := ktest.Boot(t, kernel.Config{CPUs: 1, HZ: 1000, Quiet: true, Virtual: virtual, Log: func(r printk.Record) {
			if strings.HasPrefix(r.Text, "WARNING: ") {
				sites <- r.Text
			}
		}})
		ktest.InTask(t, k, func(c *kernel.Ctx) {
			var tm timer.Timer
			timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
				kernel.PreemptDisable(c) // leaked: call_timer_fn warns after we return
			}, 0)
			timer.Mod(c, &tm, c.Jiffies()+1)
		})
		if virtual {
			if err := k.Run(context.Background(), 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		site := <-sites // the test's timeout bounds the wait
		if !regexp.MustCompile(`^WARNING: CPU: 0 PID: 0 at timer/api\.go:\d+ expire$`).MatchString(site) {
			t.Errorf("virtual=%t: WARNING line = %q, want kdefer's own site in timer/api.go", virtual, site)
		}
	}
}
