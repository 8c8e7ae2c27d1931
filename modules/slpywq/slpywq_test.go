package slpywq_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/slpywq"
)

const dev = "/dev/workq_splydrv"

// printCtx is seed-demos §1.2's PRINT_CTX regex.
var printCtx = regexp.MustCompile(`^(?:\S+:\S+\(\): )?(\d{3})\) ([\[ ])([^\]]{1,15}?)([\] ]):(\d+)   \|  ([d.])([N.])([Hhs.])([01])   /\* (\w+)\(\) \*/$`)

// frame matches a Go stack frame line of dump_stack.
var frame = regexp.MustCompile(`^ \S+ \(\S+:\d+\)$`)

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true}, slpywq.Info)
}

// sleepy runs the user program with args and returns its status and output.
func sleepy(t *testing.T, k *kernel.Kernel, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{slpywq.AppName}, args...)
	code := demotest.Run(t, k, slpywq.AppName, func(c *kernel.Ctx) int { return slpywq.Sleepy(c, argv, &out, &errb) })
	return code, out.String(), errb.String()
}

// dmesg is the log from seq with the Go stack frames of dump_stack folded
// into one line (they name kdefer's and Go's own source lines).
func dmesg(k *kernel.Kernel, seq uint64) string {
	var b strings.Builder
	inStack := false
	for _, l := range strings.SplitAfter(demotest.Dmesg(k, seq), "\n") {
		text := l
		if i := strings.Index(l, "] "); strings.HasPrefix(l, "[") && i > 0 {
			text = l[i+2:]
		}
		if frame.MatchString(strings.TrimSuffix(text, "\n")) {
			if !inStack {
				b.WriteString(l[:len(l)-len(text)] + " … (Go stack frames)\n")
			}
			inStack = true
			continue
		}
		inStack = false
		b.WriteString(l)
	}
	return b.String()
}

// TestSessionMatchesGolden: load, two readers sleep, a write wakes both
// and schedules the work, which arms the 7 s timer; 20 s later the timer
// has fired twice; unload. The log and the program's output.
func TestSessionMatchesGolden(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, slpywq.Name)
	code, out, errs := sleepy(t, k, dev)
	demotest.RunFor(t, k, 20*time.Second)
	demotest.Rmmod(t, k, ld, slpywq.Name)
	golden.Check(t, "testdata/session.golden", dmesg(k, 0))
	wantOut := "mknod /dev/workq_splydrv c 254 0\n" +
		"cat[7]: reading /dev/workq_splydrv\n" +
		"cat[8]: reading /dev/workq_splydrv\n" +
		"echo[9]: wrote 6 bytes to /dev/workq_splydrv\n" +
		"cat[8]: read returned 0 (end of file)\n" +
		"cat[7]: read returned 0 (end of file)\n"
	if code != 0 || out != wantOut || errs != "" {
		t.Errorf("sleepy: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, wantOut, errs)
	}
}

// TestContextsAndTheSevenSecondTimer: the work runs in a kworker in
// process context and arms the timer; whee() runs in timer softirq context
// every 7 s (7*HZ jiffies: 1750 at HZ=250, which the wheel's level 2
// rounds up to a multiple of 64) and never after the unload.
func TestContextsAndTheSevenSecondTimer(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, slpywq.Name)
	sleepy(t, k, dev)
	demotest.RunFor(t, k, 30*time.Second)
	demotest.Rmmod(t, k, ld, slpywq.Name)
	seq := k.Log().NextSeq()
	demotest.RunFor(t, k, 10*time.Second)
	var whees []int64
	var workCtx, wheeCtx []string
	recs := demotest.Records(k, 0)
	for _, r := range recs {
		switch m := printCtx.FindStringSubmatch(r.Text); {
		case strings.HasPrefix(r.Text, "Timed out. jiffies="):
			whees = append(whees, r.TimeNs)
		case m != nil && m[10] == "wq_func":
			workCtx = append(workCtx, m[2]+m[3]+m[4]+" "+m[6]+m[7]+m[8]+m[9])
		case m != nil && m[10] == "whee":
			wheeCtx = append(wheeCtx, m[6]+m[7]+m[8]+m[9])
		}
	}
	if len(workCtx) != 1 || !strings.HasPrefix(workCtx[0], "[kworker/") || !strings.HasSuffix(workCtx[0], "] ...0") {
		t.Errorf("wq_func's contexts %q, want one [kworker/N:M] ...0", workCtx)
	}
	if len(whees) != 4 || len(wheeCtx) != 4 {
		t.Fatalf("whee fired %d times (%d context lines) in 30 s, want 4", len(whees), len(wheeCtx))
	}
	for i, ctx := range wheeCtx {
		if ctx != "..s1" {
			t.Errorf("whee %d in context %s, want ..s1", i, ctx)
		}
	}
	for i := 1; i < len(whees); i++ {
		// 1750 jiffies, rounded up to the next multiple of 64 after
		// the expiry (from the base clock of the callback, jiffies+1)
		if d := whees[i] - whees[i-1]; d < 7*int64(time.Second) || d > 7*int64(time.Second)+64*4*int64(time.Millisecond) {
			t.Errorf("whee %d came %v after the previous, want 7 s plus at most a level-2 bucket", i, time.Duration(d))
		}
	}
	if after := demotest.Lines(k, seq); len(after) != 0 {
		t.Errorf("log after rmmod: %q", after)
	}
}

// TestOneWriteWakesEveryReaderAndDataStaysPresent: three readers sleep
// (ps shows them in S), one write wakes them all at once, and a read after
// that returns at once: data_present is never cleared.
func TestOneWriteWakesEveryReaderAndDataStaysPresent(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, slpywq.Name)
	var readers []*kernel.Task
	sleepers := 0
	demotest.Run(t, k, "setup", func(c *kernel.Ctx) int {
		if err := module.Mknod(c, dev, 254, 0); err != nil {
			t.Error(err)
		}
		return 0
	})
	for range 3 {
		tk, err := k.Spawn("reader", func(c *kernel.Ctx) int {
			fd, err := module.Open(c, dev, module.ORdOnly)
			if err != nil {
				t.Error(err)
				return 1
			}
			defer fd.Close(c)
			var b [8]byte
			n, err := fd.Read(c, b[:])
			if n != 0 || err != nil {
				t.Errorf("read = %d, %v; want 0 (EOF)", n, err)
			}
			return 0
		})
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, tk)
	}
	demotest.RunFor(t, k, 100*time.Millisecond)
	for _, r := range readers {
		if r.State().Letter() == 'S' {
			sleepers++
		}
	}
	if sleepers != 3 {
		t.Fatalf("%d readers asleep, want 3", sleepers)
	}
	seq := k.Log().NextSeq()
	demotest.Run(t, k, "writer", func(c *kernel.Ctx) int {
		fd, err := module.Open(c, dev, module.OWrOnly)
		if err != nil {
			t.Error(err)
			return 1
		}
		defer fd.Close(c)
		if n, err := fd.Write(c, []byte("x")); n != 1 || err != nil {
			t.Errorf("write = %d, %v", n, err)
		}
		return 0
	})
	demotest.RunFor(t, k, 10*time.Millisecond)
	awoken := 0
	for _, l := range demotest.Lines(k, seq) {
		if strings.HasPrefix(l, "workq_splydrv: awoken ") && strings.HasSuffix(l, " (reader), data_present=1") {
			awoken++
		}
	}
	if awoken != 3 {
		t.Fatalf("%d readers awoken by one write, want 3:\n%s", awoken, strings.Join(demotest.Lines(k, seq), "\n"))
	}
	seq = k.Log().NextSeq()
	demotest.Run(t, k, "late", func(c *kernel.Ctx) int {
		fd, _ := module.Open(c, dev, module.ORdOnly)
		defer fd.Close(c)
		var b [8]byte
		fd.Read(c, b[:])
		return 0
	})
	late := demotest.Records(k, seq)
	if len(late) != 2 || !strings.HasSuffix(late[1].Text, " (late), data_present=1") || late[1].TimeNs != late[0].TimeNs {
		t.Errorf("a later read did not return at once: %+v", late)
	}
	demotest.Rmmod(t, k, ld, slpywq.Name)
}

// TestASignalEndsAReadersSleep: a reader signalled while it sleeps gets the
// driver's "wait interrupted by signal" and read(2) fails with EINTR.
func TestASignalEndsAReadersSleep(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, slpywq.Name)
	demotest.Run(t, k, "setup", func(c *kernel.Ctx) int { module.Mknod(c, dev, 254, 0); return 0 })
	var readErr error
	tk, err := k.Spawn("reader", func(c *kernel.Ctx) int {
		fd, err := module.Open(c, dev, module.ORdOnly)
		if err != nil {
			t.Error(err)
			return 1
		}
		defer fd.Close(c)
		var b [8]byte
		_, readErr = fd.Read(c, b[:])
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	demotest.RunFor(t, k, 100*time.Millisecond)
	k.SendSignal(tk, kernel.SIGINT)
	demotest.RunFor(t, k, 100*time.Millisecond)
	if !errors.Is(readErr, kernel.EINTR) {
		t.Errorf("read error %v, want EINTR", readErr)
	}
	if !demotest.Has(demotest.Lines(k, 0), "wait interrupted by signal, ret -ERESTARTSYS to VFS..") {
		t.Errorf("log: %q", demotest.Lines(k, 0))
	}
	demotest.Rmmod(t, k, ld, slpywq.Name)
}

func TestSleepyUsage(t *testing.T) {
	k, _ := boot(t)
	if code, _, errs := sleepy(t, k); code != 1 || errs != "Usage: sleepy DEVICE [READERS]\n" {
		t.Errorf("no args: %d %q", code, errs)
	}
	if code, _, errs := sleepy(t, k, dev); code != 1 || !strings.Contains(errs, "no workq_splydrv in /proc/devices") {
		t.Errorf("module not loaded: %d %q", code, errs)
	}
}
