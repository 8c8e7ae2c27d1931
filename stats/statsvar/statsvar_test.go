package statsvar_test

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/stats/statsvar"
	"github.com/kdefer/kdefer/timer"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func fn(*kernel.Ctx, *timer.Timer) {}

func TestPublishedVariableIsTheSnapshotAsJSON(t *testing.T) {
	k := ktest.Virtual(t, 2, 250)
	stats.Enable(k)
	var tm timer.Timer
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, fn, 0)
		timer.Mod(c, &tm, c.Jiffies()+5)
	})
	ktest.Run(t, k, 1_000_000_000)
	// expvar's names are process-wide and never unpublished: one per run
	// of the test (go test -count).
	name := fmt.Sprintf("kdefer_test_%d", time.Now().UnixNano())
	if err := statsvar.Publish(name, k); err != nil {
		t.Fatal(err)
	}
	if err := statsvar.Publish(name, k); !errors.Is(err, statsvar.ErrExists) {
		t.Errorf("second Publish: %v, want ErrExists", err)
	}
	var got stats.Snapshot
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Counting || got.Timers.Armed != 1 || got.Timers.Expired != 1 || len(got.CPUs) != 2 {
		t.Errorf("published snapshot: counting %v, timers %+v, %d CPUs", got.Counting, got.Timers, len(got.CPUs))
	}
}
