package debugobjects_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/debugobjects"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// TestOnlyTheFirstFiveReportsOfAKernelArePrinted, per kernel: a second
// kernel has its own count.
func TestOnlyTheFirstFiveReportsOfAKernelArePrinted(t *testing.T) {
	for range 2 {
		k := ktest.Virtual(t, 1, 250)
		c := k.IdleCtx(0)
		for i := range 7 {
			printed := debugobjects.Report(c, "init", "active", "000000003e8f1e72", "timer_list", "fn+0x0/0x10")
			if printed != (i < debugobjects.MaxReports) {
				t.Fatalf("report %d printed=%v", i+1, printed)
			}
		}
		if n := strings.Count(ktest.Text(k), "ODEBUG: init active (active state 0) object: 000000003e8f1e72 object type: timer_list hint: fn+0x0/0x10"); n != 5 {
			t.Fatalf("%d reports in the log, want 5", n)
		}
		if k.Tainted()&kernel.TaintWarn == 0 {
			t.Fatal("not tainted W")
		}
	}
}
