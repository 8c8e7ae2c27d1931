package lab12timer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/lab12timer"
	"github.com/kdefer/kdefer/printk"
)

func boot(t *testing.T, hz jiffies.HZ) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: hz, Quiet: true}, lab12timer.Info)
}

func run(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, d time.Duration, args ...string) []printk.Record {
	t.Helper()
	seq := k.Log().NextSeq()
	demotest.Insmod(t, k, ld, lab12timer.Name, args...)
	demotest.RunFor(t, k, d)
	demotest.Rmmod(t, k, ld, lab12timer.Name)
	return demotest.Records(k, seq)
}

func texts(recs []printk.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Text)
	}
	return out
}

func TestLogMatchesGolden(t *testing.T) {
	for _, tc := range []struct {
		hz   jiffies.HZ
		args []string
		file string
	}{
		{250, nil, "periodic_hz250.golden"},
		{1000, nil, "periodic_hz1000.golden"},
		{250, []string{"periodic=N"}, "oneshot_hz250.golden"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			k, ld := boot(t, tc.hz)
			seq := k.Log().NextSeq()
			run(t, k, ld, 3500*time.Millisecond, tc.args...)
			golden.Check(t, "testdata/"+tc.file, demotest.Dmesg(k, seq))
		})
	}
}

func TestExercise1FiresOnce(t *testing.T) {
	k, ld := boot(t, 250)
	got := texts(run(t, k, ld, 5*time.Second, "periodic=0"))
	want := []string{
		"1_2_timer: loading out-of-tree module taints kernel.",
		"[timer_init] Init module",
		"[timer_handler] nseconds = 1",
		"[timer_exit] Exit module",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestExercise2IsPeriodic(t *testing.T) {
	k, ld := boot(t, 250)
	got := texts(run(t, k, ld, 4500*time.Millisecond))
	want := []string{
		"1_2_timer: loading out-of-tree module taints kernel.",
		"[timer_init] Init module",
		"[timer_handler] nseconds = 1",
		"[timer_handler] nseconds = 2",
		"[timer_handler] nseconds = 3",
		"[timer_handler] nseconds = 4",
		"[timer_exit] Exit module",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// Each firing is where the wheel puts jiffies + TIMER_TIMEOUT*HZ, armed
// from init (base clock = jiffies) or from the handler (jiffies+1).
func TestHandlerFiresWhenTheWheelSays(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		for _, periodic := range []string{"Y", "N"} {
			t.Run(fmt.Sprintf("HZ=%d,periodic=%s", hz, periodic), func(t *testing.T) {
				k, ld := boot(t, hz)
				demotest.RunFor(t, k, time.Duration(k.TickNsec()/2)) // off a jiffy boundary
				recs := run(t, k, ld, 10*time.Second, "periodic="+periodic)
				jiffyOf := func(ns int64) uint64 { return k.InitialJiffies() + uint64(ns/k.TickNsec()) }
				var armed, clk uint64
				n := 0
				for _, r := range recs {
					switch {
					case r.Text == "[timer_init] Init module":
						armed = jiffyOf(r.TimeNs)
						clk = armed
					case strings.HasPrefix(r.Text, "[timer_handler] nseconds = "):
						n++
						if r.Text != fmt.Sprintf("[timer_handler] nseconds = %d", n) {
							t.Errorf("firing %d: %q", n, r.Text)
						}
						want := demotest.WheelFireAt(hz, clk, armed+uint64(hz)*lab12timer.TimerTimeout)
						if got := jiffyOf(r.TimeNs); got != want || r.TimeNs%k.TickNsec() != 0 {
							t.Errorf("firing %d at jiffy %d (%d ns), want %d", n, got, r.TimeNs, want)
						}
						armed = jiffyOf(r.TimeNs)
						clk = armed + 1
					}
				}
				wantN := 1
				if periodic == "Y" {
					wantN = 9 // about 1.03 s apart at most: 9 firings in 10 s
				}
				if n < wantN || (periodic == "N" && n != 1) || n > 10 {
					t.Errorf("%d firings in 10 s", n)
				}
			})
		}
	}
}

func TestTwoKernelsCountSeparately(t *testing.T) {
	k1, ld1 := boot(t, 250)
	k2, ld2 := boot(t, 250)
	demotest.Insmod(t, k1, ld1, lab12timer.Name)
	demotest.RunFor(t, k1, 2500*time.Millisecond)
	demotest.Insmod(t, k2, ld2, lab12timer.Name)
	demotest.RunFor(t, k2, 1500*time.Millisecond)
	if l := demotest.Lines(k2, 0); !demotest.Has(l, "[timer_handler] nseconds = 1") || demotest.Has(l, "[timer_handler] nseconds = 3") {
		t.Errorf("second kernel: %q", l)
	}
	demotest.Rmmod(t, k1, ld1, lab12timer.Name)
	demotest.Rmmod(t, k2, ld2, lab12timer.Name)
}

func TestParameters(t *testing.T) {
	p := lab12timer.Info.Params()
	if len(p) != 1 || p[0].Name != "periodic" || p[0].Default != "Y" || p[0].Type != "bool" || p[0].Perm != 0444 {
		t.Errorf("Params = %+v", p)
	}
}
