package timersimple_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/timersimple"
	"github.com/kdefer/kdefer/printk"
)

// printCtx is seed-demos §1.2's PRINT_CTX regex.
var printCtx = regexp.MustCompile(`^(?:\S+:\S+\(\): )?(\d{3})\) ([\[ ])([^\]]{1,15}?)([\] ]):(\d+)   \|  ([d.])([N.])([Hhs.])([01])   /\* (\w+)\(\) \*/$`)

func boot(t *testing.T, hz jiffies.HZ) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: hz, Quiet: true}, timersimple.Info)
}

// run loads timer_simple with args, runs the kernel for d and unloads it,
// returning the records logged.
func run(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, d time.Duration, args ...string) []printk.Record {
	t.Helper()
	seq := k.Log().NextSeq()
	demotest.Insmod(t, k, ld, timersimple.Name, args...)
	demotest.RunFor(t, k, d)
	demotest.Rmmod(t, k, ld, timersimple.Name)
	return demotest.Records(k, seq)
}

func TestLogMatchesGolden(t *testing.T) {
	for _, hz := range []jiffies.HZ{250, 1000} {
		t.Run(fmt.Sprintf("HZ=%d", hz), func(t *testing.T) {
			k, ld := boot(t, hz)
			seq := k.Log().NextSeq()
			run(t, k, ld, 2*time.Second)
			golden.Check(t, fmt.Sprintf("testdata/hz%d.golden", hz), demotest.Dmesg(k, seq))
		})
	}
}

func TestCountsDownThreeTwoOneInSoftirqContext(t *testing.T) {
	k, ld := boot(t, 250)
	var lines []string
	for _, r := range run(t, k, ld, 3*time.Second) {
		lines = append(lines, r.Text)
	}
	want := []string{
		"timer_simple: loading out-of-tree module taints kernel.",
		"timer_simple:timer_simple_init(): timer set to expire in 420 ms",
		"timer_simple:ding(): timed out... data=3",
		"",
		"timer_simple:ding(): timed out... data=2",
		"",
		"timer_simple:ding(): timed out... data=1",
		"",
		"timer_simple:timer_simple_exit(): removed",
	}
	if len(lines) != len(want) {
		t.Fatalf("log = %q, want %d lines like %q", lines, len(want), want)
	}
	for i, w := range want {
		if w == "" {
			m := printCtx.FindStringSubmatch(lines[i])
			if m == nil || !strings.HasPrefix(lines[i], "timer_simple:ding(): ") {
				t.Errorf("line %d = %q, want a PRINT_CTX line of ding()", i, lines[i])
				continue
			}
			// a kernel thread (idle task or ksoftirqd), IRQs on, serving a
			// softirq, preempt count non-zero, in ding()
			if m[2] != "[" || m[4] != "]" || m[6]+m[7]+m[8]+m[9] != "..s1" || m[10] != "ding" {
				t.Errorf("line %d = %q, want [kthread] ..s1 /* ding() */", i, lines[i])
			}
			continue
		}
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
}

// TestDingFiresWhenTheWheelSays checks every expiry against the timer
// wheel's formula: the first arm is from the insmod task (base clock =
// jiffies), each re-arm from ding() itself (base clock = jiffies+1).
func TestDingFiresWhenTheWheelSays(t *testing.T) {
	for _, tc := range []struct {
		hz    jiffies.HZ
		expMs uint32
	}{{100, 420}, {250, 420}, {300, 420}, {1000, 420}, {250, 100}, {1000, 30}, {1000, 1000}} {
		t.Run(fmt.Sprintf("HZ=%d,exp_ms=%d", tc.hz, tc.expMs), func(t *testing.T) {
			k, ld := boot(t, tc.hz)
			// Start off a jiffy boundary, as a real insmod would.
			demotest.RunFor(t, k, time.Duration(k.TickNsec()/3))
			recs := run(t, k, ld, 5*time.Duration(tc.expMs)*time.Millisecond+time.Second, fmt.Sprintf("exp_ms=%d", tc.expMs))
			jiffyOf := func(ns int64) uint64 { return k.InitialJiffies() + uint64(ns/k.TickNsec()) }
			period := tc.hz.MsecsToJiffies(tc.expMs)
			var armed, clk uint64
			var fired []uint64
			for _, r := range recs {
				switch {
				case strings.HasSuffix(r.Text, "timer set to expire in "+fmt.Sprint(tc.expMs)+" ms"):
					armed = jiffyOf(r.TimeNs)
					clk = armed
				case strings.HasPrefix(r.Text, "timer_simple:ding(): timed out... data="):
					fired = append(fired, jiffyOf(r.TimeNs))
					if r.TimeNs%k.TickNsec() != 0 {
						t.Errorf("ding logged at %d ns, not on a tick", r.TimeNs)
					}
				}
			}
			if len(fired) != timersimple.InitialValue {
				t.Fatalf("ding fired %d times, want %d", len(fired), timersimple.InitialValue)
			}
			for i, got := range fired {
				want := demotest.WheelFireAt(tc.hz, clk, armed+period)
				if got != want {
					t.Errorf("firing %d at jiffy %d (armed at %d for %d), want %d", i+1, got, armed, armed+period, want)
				}
				if got < armed+period {
					t.Errorf("firing %d early: %d < %d", i+1, got, armed+period)
				}
				armed, clk = got, got+1
			}
		})
	}
}

func TestDebugOffHidesDebugOutput(t *testing.T) {
	k, ld := boot(t, 250)
	var lines []string
	for _, r := range run(t, k, ld, 2*time.Second, "debug=0") {
		lines = append(lines, r.Text)
	}
	want := []string{
		"timer_simple: loading out-of-tree module taints kernel.",
		"timer_simple:timer_simple_init(): timer set to expire in 420 ms",
		"timer_simple:timer_simple_exit(): removed",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", lines, want)
	}
}

func TestRmmodStopsTheCountdown(t *testing.T) {
	k, ld := boot(t, 250)
	recs := run(t, k, ld, 600*time.Millisecond)
	seq := k.Log().NextSeq()
	demotest.RunFor(t, k, 2*time.Second)
	dings := 0
	for _, r := range recs {
		if strings.Contains(r.Text, "timed out...") {
			dings++
		}
	}
	if dings != 1 {
		t.Errorf("%d dings in 600 ms, want 1", dings)
	}
	if after := demotest.Lines(k, seq); len(after) != 0 {
		t.Errorf("log after rmmod = %q, want nothing", after)
	}
}

func TestTwoKernelsCountDownIndependently(t *testing.T) {
	k1, ld1 := boot(t, 250)
	k2, ld2 := boot(t, 1000)
	demotest.Insmod(t, k1, ld1, timersimple.Name)
	demotest.Insmod(t, k2, ld2, timersimple.Name, "exp_ms=100")
	demotest.RunFor(t, k1, 700*time.Millisecond) // k1: data=3 fired
	demotest.RunFor(t, k2, 2*time.Second)        // k2: all three fired
	demotest.RunFor(t, k1, 2*time.Second)
	for _, k := range []*kernel.Kernel{k1, k2} {
		var got []string
		for _, l := range demotest.Lines(k, 0) {
			if strings.Contains(l, "timed out...") {
				got = append(got, strings.TrimPrefix(l, "timer_simple:ding(): timed out... "))
			}
		}
		if strings.Join(got, ",") != "data=3,data=2,data=1" {
			t.Errorf("HZ=%d: dings %q, want data=3,2,1", k.HZ(), got)
		}
	}
	demotest.Rmmod(t, k1, ld1, timersimple.Name)
	demotest.Rmmod(t, k2, ld2, timersimple.Name)
}

func TestParameters(t *testing.T) {
	var got []string
	for _, p := range timersimple.Info.Params() {
		got = append(got, fmt.Sprintf("%s=%s %s %04o", p.Name, p.Default, p.Type, p.Perm))
	}
	if want := "exp_ms=420 ulong 0444|debug=Y bool 0444"; strings.Join(got, "|") != want {
		t.Errorf("Params = %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestTraceReportMatchesGolden records every tracepoint of a timer_simple
// run in virtual time and compares `trace-cmd report`'s text with the
// golden file. Two runs in fresh kernels give the same bytes: the report
// depends on nothing but the virtual run (pointer tokens are numbered by
// first appearance, not taken from addresses).
func TestTraceReportMatchesGolden(t *testing.T) {
	report := func() string {
		k, ld := demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true, TraceEvents: "all"}, timersimple.Info)
		run(t, k, ld, 2*time.Second)
		var b strings.Builder
		if err := k.Tracer().Report(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	first, second := report(), report()
	if first != second {
		t.Fatalf("two virtual runs report differently:\n--- first:\n%s\n--- second:\n%s", first, second)
	}
	golden.Check(t, "testdata/trace_hz250.golden", first)
}
