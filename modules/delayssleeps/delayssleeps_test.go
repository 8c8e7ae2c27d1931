package delayssleeps_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/delayssleeps"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/printk"
)

func boot(t *testing.T, hz jiffies.HZ) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: hz, Quiet: true}, delayssleeps.Info)
}

func run(t *testing.T, k *kernel.Kernel, ld *module.ModLoader) []printk.Record {
	t.Helper()
	seq := k.Log().NextSeq()
	demotest.Insmod(t, k, ld, delayssleeps.Name)
	demotest.RunFor(t, k, 100*time.Millisecond)
	demotest.Rmmod(t, k, ld, delayssleeps.Name)
	return demotest.Records(k, seq)
}

func TestLogMatchesGolden(t *testing.T) {
	for _, hz := range []jiffies.HZ{250, 1000} {
		t.Run(fmt.Sprintf("HZ=%d", hz), func(t *testing.T) {
			k, ld := boot(t, hz)
			seq := k.Log().NextSeq()
			run(t, k, ld)
			golden.Check(t, fmt.Sprintf("testdata/hz%d.golden", hz), demotest.Dmesg(k, seq))
		})
	}
}

var actualLine = regexp.MustCompile(`^(.+)-> actual: ([ \d]{10}\d) ns = ([ \d]{6}\d) us = ([ \d]{3}\d) ms$`)

// model returns the bounds of the time a labelled call takes in virtual
// time on k, when it starts at monotonic time t1.
type model func(k *kernel.Kernel, t1 int64) (lo, hi int64)

func exact(ns int64) model { return func(*kernel.Kernel, int64) (int64, int64) { return ns, ns } }

func hrRange(minUs, maxUs int64) model {
	return func(*kernel.Kernel, int64) (int64, int64) { return minUs * 1000, maxUs * 1000 }
}

// msleep: msecs_to_jiffies(ms) jiffies of schedule_timeout, whose timer
// fires when the wheel says.
func msleep(ms uint32) model {
	return func(k *kernel.Kernel, t1 int64) (int64, int64) {
		j1 := k.InitialJiffies() + uint64(t1/k.TickNsec())
		fire := demotest.WheelFireAt(k.HZ(), j1, j1+k.HZ().MsecsToJiffies(ms))
		d := k.JiffiesToNs(fire) - t1
		return d, d
	}
}

// fsleep as of v6.13.
func fsleep(us int64) model {
	return func(k *kernel.Kernel, t1 int64) (int64, int64) {
		switch {
		case us <= 10:
			return exact(us*1000)(k, t1)
		case us < k.TickNsec()<<2/1000:
			return hrRange(us, us+us>>2)(k, t1)
		}
		return msleep(uint32((us+999)/1000))(k, t1)
	}
}

var models = []struct {
	label string
	m     model
	min   int64 // the time asked for, ns
}{
	{"ndelay() for         10 ns", exact(10), 10},
	{"udelay() for     10,000 ns", exact(10000), 10000},
	{"mdelay() for 10,000,000 ns", exact(10000000), 10000000},
	{"usleep_range(10,10) for 10,000 ns", hrRange(10, 10), 10000},
	{"msleep(10) for      10,000,000 ns", msleep(10), 10000000},
	{"msleep_interruptible(10)         ", msleep(10), 10000000},
	{"ssleep(1)                        ", msleep(1000), 1000000000},
	{"fsleep() for          1 us        ", fsleep(1), 1000},
	{"fsleep() for         10 us        ", fsleep(10), 10000},
	{"fsleep() for       1000 us (1 ms) ", fsleep(1000), 1000000},
	{"fsleep() for      10000 us (10 ms)", fsleep(10000), 10000000},
	{"fsleep() for    100 ms            ", fsleep(100000), 100000000},
	{"fsleep() for   1000 ms (1 s)      ", fsleep(1000000), 1000000000},
}

func TestSectionsAndLabels(t *testing.T) {
	k, ld := boot(t, 250)
	var lines []string
	for _, r := range run(t, k, ld) {
		if m := actualLine.FindStringSubmatch(r.Text); m != nil {
			lines = append(lines, m[1]+"->")
			continue
		}
		lines = append(lines, r.Text)
	}
	want := []string{
		"delays_sleeps: loading out-of-tree module taints kernel.",
		"delays_sleeps: inserted",
		"",
		"1. *delay() functions (atomic, in a delay loop):",
		models[0].label + "->", models[1].label + "->", models[2].label + "->",
		"",
		"2. *sleep() functions (process ctx, sleeps/schedule()'s out):",
		models[3].label + "->", models[4].label + "->", models[5].label + "->", models[6].label + "->",
		"",
		"3. Use the flexible sleep wrapper fsleep(usecs):",
		models[7].label + "->", models[8].label + "->", models[9].label + "->",
		models[10].label + "->", models[11].label + "->", models[12].label + "->",
		"delays_sleeps: demo complete",
		"delays_sleeps: removed",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestActualTimesFollowTheKernel checks every measured time against the
// kernel's rounding, at each HZ and starting off a jiffy boundary.
func TestActualTimesFollowTheKernel(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		for _, offset := range []int64{0, 1, 3} {
			t.Run(fmt.Sprintf("HZ=%d,offset=%d/4", hz, offset), func(t *testing.T) {
				k, ld := boot(t, hz)
				if offset > 0 {
					demotest.RunFor(t, k, time.Duration(k.TickNsec()*offset/4))
				}
				i := 0
				for _, r := range run(t, k, ld) {
					m := actualLine.FindStringSubmatch(r.Text)
					if m == nil {
						continue
					}
					if i >= len(models) || m[1] != models[i].label {
						t.Fatalf("unexpected line %q", r.Text)
					}
					ns, _ := strconv.ParseInt(strings.TrimSpace(m[2]), 10, 64)
					us, _ := strconv.ParseInt(strings.TrimSpace(m[3]), 10, 64)
					ms, _ := strconv.ParseInt(strings.TrimSpace(m[4]), 10, 64)
					if us != ns/1000 || ms != ns/1000000 {
						t.Errorf("%q: units disagree", r.Text)
					}
					if ns < models[i].min {
						t.Errorf("%q: shorter than asked (%d ns)", r.Text, models[i].min)
					}
					lo, hi := models[i].m(k, r.TimeNs-ns)
					if ns < lo || ns > hi {
						t.Errorf("%q: want %d..%d ns", r.Text, lo, hi)
					}
					i++
				}
				if i != len(models) {
					t.Errorf("%d actual lines, want %d", i, len(models))
				}
			})
		}
	}
}

// At HZ=250 msleep(10) is 3 jiffies, fired on the 4th jiffy boundary:
// more than 8 ms, at most 16 ms.
func TestMsleep10AtHZ250(t *testing.T) {
	k, ld := boot(t, 250)
	for _, r := range run(t, k, ld) {
		if m := actualLine.FindStringSubmatch(r.Text); m != nil && strings.HasPrefix(m[1], "msleep") {
			ns, _ := strconv.ParseInt(strings.TrimSpace(m[2]), 10, 64)
			if ns < 10000000 || ns > 16000000 {
				t.Errorf("%q: want 10..16 ms", r.Text)
			}
		}
	}
}

func TestNoParameters(t *testing.T) {
	if p := delayssleeps.Info.Params(); len(p) != 0 {
		t.Errorf("Params = %v", p)
	}
}
