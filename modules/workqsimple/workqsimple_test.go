package workqsimple_test

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
	"github.com/kdefer/kdefer/modules/workqsimple"
	"github.com/kdefer/kdefer/printk"
)

// printCtx is seed-demos §1.2's PRINT_CTX regex.
var printCtx = regexp.MustCompile(`^(?:\S+:\S+\(\): )?(\d{3})\) ([\[ ])([^\]]{1,15}?)([\] ]):(\d+)   \|  ([d.])([N.])([Hhs.])([01])   /\* (\w+)\(\) \*/$`)

func boot(t *testing.T, hz jiffies.HZ) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: hz, Quiet: true}, workqsimple.Info)
}

// run loads workq_simple with args, runs the kernel for d and unloads it,
// returning the records logged.
func run(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, d time.Duration, args ...string) []printk.Record {
	t.Helper()
	seq := k.Log().NextSeq()
	demotest.Insmod(t, k, ld, workqsimple.Name, args...)
	demotest.RunFor(t, k, d)
	demotest.Rmmod(t, k, ld, workqsimple.Name)
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

// TestTimerInSoftirqWorkInAKworker: ding() counts 3, 2, 1 in softirq
// context (a kernel thread's context, ..s1); each expiry's work runs in a
// kworker in process context (...0) and sees 2, 1, 0, with a delta after
// it.
func TestTimerInSoftirqWorkInAKworker(t *testing.T) {
	k, ld := boot(t, 250)
	var lines []string
	for _, r := range run(t, k, ld, 3*time.Second) {
		lines = append(lines, r.Text)
	}
	const (
		dingCtx = "<ding ctx>"
		workCtx = "<work ctx>"
		delta   = "<delta>"
	)
	want := []string{
		"workq_simple: loading out-of-tree module taints kernel.",
		"workq_simple:workq_simple_init(): Work queue initialized, timer set to expire in 420 ms",
	}
	for data := workqsimple.InitialValue; data > 0; data-- {
		want = append(want,
			fmt.Sprintf("workq_simple:ding(): timed out... data=%d", data), dingCtx,
			fmt.Sprintf("workq_simple:work_func(): In our workq function: data=%d", data-1), workCtx, delta)
	}
	want = append(want, "workq_simple:workq_simple_exit(): removed")
	if len(lines) != len(want) {
		t.Fatalf("log = %q, want %d lines like %q", lines, len(want), want)
	}
	for i, w := range want {
		switch w {
		case dingCtx, workCtx:
			m := printCtx.FindStringSubmatch(lines[i])
			if m == nil {
				t.Errorf("line %d = %q, want a PRINT_CTX line", i, lines[i])
				continue
			}
			if w == dingCtx && (!strings.HasPrefix(lines[i], "workq_simple:ding(): ") || m[2] != "[" ||
				m[6]+m[7]+m[8]+m[9] != "..s1" || m[10] != "ding") {
				t.Errorf("line %d = %q, want [kthread] ..s1 /* ding() */", i, lines[i])
			}
			if w == workCtx && (!strings.HasPrefix(lines[i], "workq_simple:work_func(): ") ||
				!strings.HasPrefix(m[3], "kworker/") || m[2] != "[" || m[6]+m[7]+m[8]+m[9] != "...0" || m[10] != "work_func") {
				t.Errorf("line %d = %q, want [kworker/N:M] ...0 /* work_func() */", i, lines[i])
			}
		case delta:
			if lines[i] != "workq_simple:work_func(): delta: 30000 ns (= 30 us = 0 ms)" {
				t.Errorf("line %d = %q, want the nominal wakeup delta", i, lines[i])
			}
		default:
			if lines[i] != w {
				t.Errorf("line %d = %q, want %q", i, lines[i], w)
			}
		}
	}
}

// TestUnloadMidCountdownStopsTimerAndWork: unloaded after two expiries,
// the module has run ding() and its work twice, and nothing of it runs
// afterwards: exit stops the timer before it cancels the work.
func TestUnloadMidCountdownStopsTimerAndWork(t *testing.T) {
	k, ld := boot(t, 250)
	recs := run(t, k, ld, time.Second)
	seq := k.Log().NextSeq()
	demotest.RunFor(t, k, 2*time.Second)
	var dings, works int
	for _, r := range recs {
		switch {
		case strings.Contains(r.Text, "timed out..."):
			dings++
		case strings.Contains(r.Text, "In our workq function"):
			works++
		}
	}
	if dings != 2 || works != 2 {
		t.Errorf("%d dings and %d works in 1 s, want 2 and 2", dings, works)
	}
	if after := demotest.Lines(k, seq); len(after) != 0 {
		t.Errorf("log after rmmod = %q, want nothing", after)
	}
}

func TestDebugOffHidesDebugOutput(t *testing.T) {
	k, ld := boot(t, 250)
	var lines []string
	for _, r := range run(t, k, ld, 2*time.Second, "debug=0") {
		lines = append(lines, r.Text)
	}
	for _, l := range lines {
		if strings.Contains(l, "timed out") || printCtx.MatchString(l) {
			t.Errorf("debug output with debug=0: %q", l)
		}
	}
	if !demotest.Has(lines, "workq_simple:work_func(): In our workq function: data=0") {
		t.Errorf("log = %q, want the pr_info lines", lines)
	}
}

func TestParameters(t *testing.T) {
	var got []string
	for _, p := range workqsimple.Info.Params() {
		got = append(got, fmt.Sprintf("%s=%s %s %04o", p.Name, p.Default, p.Type, p.Perm))
	}
	if want := "exp_ms=420 ulong 0444|debug=Y bool 0444"; strings.Join(got, "|") != want {
		t.Errorf("Params = %q, want %q", strings.Join(got, "|"), want)
	}
}
