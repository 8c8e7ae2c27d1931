package lab345deferred_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/lab345deferred"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/procfs"
)

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true}, lab345deferred.Info)
}

// test runs the lab's test program with args and returns its status and
// output.
func test(t *testing.T, k *kernel.Kernel, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{lab345deferred.AppName}, args...)
	code := demotest.Run(t, k, lab345deferred.AppName, func(c *kernel.Ctx) int { return lab345deferred.Test(c, argv, &out, &errb) })
	return code, out.String(), errb.String()
}

func TestIoctlNumbers(t *testing.T) {
	for _, tc := range []struct {
		cmd  uint32
		want uint32
		name string
	}{
		{lab345deferred.CmdTimerSet, 0x40086B01, "Set timer"},
		{lab345deferred.CmdTimerCancel, 0x00006B02, "Cancel timer"},
		{lab345deferred.CmdTimerAlloc, 0x40086B03, "Allocate memory"},
		{lab345deferred.CmdTimerMon, 0x00006B04, "Monitor pid"},
		{0x1234, 0x1234, "Unknown command"},
	} {
		if tc.cmd != tc.want || lab345deferred.IoctlCommandToString(tc.cmd) != tc.name {
			t.Errorf("%#x (want %#x) is %q, want %q", tc.cmd, tc.want, lab345deferred.IoctlCommandToString(tc.cmd), tc.name)
		}
	}
}

// TestSetTimerReportsTheIdleTask (exercise 3): "test s 3" arms a one-shot
// timer; three seconds later its handler reports the task it interrupted,
// the idle task (swapper/1 here, the CPU the test program ran on) with pid
// 0, as the lab says it will.
func TestSetTimerReportsTheIdleTask(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, lab345deferred.Name)
	code, out, errs := test(t, k, "s", "3")
	demotest.RunFor(t, k, 4*time.Second)
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
	if code != 0 || out != "mknod /dev/deferred c 42 0\nSet timer to 3 seconds\n" || errs != "" {
		t.Errorf("test s 3: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	golden.Check(t, "testdata/set.golden", demotest.Dmesg(k, 0))
}

// TestCancelStopsTheTimer: "test c" a second after "test s 3": the handler
// never runs.
func TestCancelStopsTheTimer(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, lab345deferred.Name)
	test(t, k, "s", "3")
	demotest.RunFor(t, k, time.Second)
	if code, out, _ := test(t, k, "c"); code != 0 || out != "Cancel timer\n" {
		t.Errorf("test c: %d %q", code, out)
	}
	demotest.RunFor(t, k, 5*time.Second)
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
	lines := demotest.Lines(k, 0)
	if count(lines, "[timer_handler] pid = 0, comm = swapper/1") != 0 {
		t.Errorf("the cancelled timer fired: %q", lines)
	}
	if !demotest.Has(lines, "[deferred_ioctl] Command: Cancel timer") {
		t.Errorf("log: %q", lines)
	}
}

// TestAllocSleepsInAKworker (exercise 5): "test a 2": two seconds later the
// timer schedules the work; a kworker sleeps five seconds in
// TASK_INTERRUPTIBLE (ps shows it S, named kworker/0:0+events) and yawns
// from process context.
func TestAllocSleepsInAKworker(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, lab345deferred.Name)
	test(t, k, "a", "2")
	demotest.RunFor(t, k, 4*time.Second)
	var sleeper string
	for _, tk := range k.Tasks() {
		if name := procfs.TaskName(tk); strings.HasSuffix(name, "+events") {
			sleeper = fmt.Sprintf("%s %c", name, tk.State().Letter())
		}
	}
	if !strings.HasPrefix(sleeper, "kworker/") || !strings.HasSuffix(sleeper, ":0+events S") {
		t.Errorf("during the sleep: %q, want kworker/N:0+events S", sleeper)
	}
	demotest.RunFor(t, k, 4*time.Second)
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
	golden.Check(t, "testdata/alloc.golden", demotest.Dmesg(k, 0))
	var timerAt, yawnAt int64
	for _, r := range demotest.Records(k, 0) {
		switch {
		case strings.HasPrefix(r.Text, "[timer_handler] pid = 0, comm = swapper/"):
			timerAt = r.TimeNs
		case r.Text == "Yawn! I've been sleeping for 5 seconds.":
			yawnAt = r.TimeNs
			if tk := k.FindTask(r.PID); tk == nil || !strings.HasPrefix(tk.Comm(), "kworker/") {
				t.Errorf("yawned on pid %d, not a kworker", r.PID)
			}
		}
	}
	// 5*HZ = 1250 jiffies: level 2 of the wheel, 64-jiffy (256 ms) buckets
	if d := time.Duration(yawnAt - timerAt); d < 5*time.Second || d > 5*time.Second+256*time.Millisecond {
		t.Errorf("yawn %v after the timer, want 5 s and at most a level-2 bucket", d)
	}
}

// TestAllocIODirectIsASleepInAtomicContext (exercise 4): with
// alloc_io_direct=1 the timer callback calls alloc_io() itself: the kernel
// reports the sleeping call from softirq context (kdefer's warning about
// set_current_state first), schedule_timeout does not sleep, and the yawn
// comes at once, from the idle task.
func TestAllocIODirectIsASleepInAtomicContext(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, lab345deferred.Name, "alloc_io_direct=1")
	test(t, k, "a", "1")
	demotest.RunFor(t, k, 2*time.Second)
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
	recs := demotest.Records(k, 0)
	var at int64 = -1
	var bug, warn bool
	for _, r := range recs {
		switch {
		case strings.HasPrefix(r.Text, "[timer_handler] pid = 0, comm = swapper/"):
			at = r.TimeNs
		case strings.HasPrefix(r.Text, "BUG: sleeping function called from invalid context at "):
			bug = r.TimeNs == at && r.Level == printk.LevelErr
		case strings.Contains(r.Text, "set_current_state() called from softirq context"):
			warn = r.TimeNs == at
		case r.Text == "Yawn! I've been sleeping for 5 seconds.":
			if r.TimeNs != at || r.PID != 0 {
				t.Errorf("yawned at %d ns on pid %d, want at once (%d) on the idle task", r.TimeNs, r.PID, at)
			}
		}
	}
	if !bug || !warn {
		t.Fatalf("no sleeping-in-atomic report (bug %v, warning %v):\n%s", bug, warn, demotest.Dmesg(k, 0))
	}
	if !strings.Contains(demotest.Dmesg(k, 0), "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 0, name: swapper/") {
		t.Errorf("the report does not name the idle task in atomic context:\n%s", demotest.Dmesg(k, 0))
	}
}

// TestMonitorReportsTheDeathOfAHostProcess (exercise 7): "test p PID" with
// the pid of a real process of the host; the timer checks it every second
// and, once the process has been killed, reports "task sleep (PID) is
// dead" and drops it; the timer goes on ticking while the type is MON.
func TestMonitorReportsTheDeathOfAHostProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the host's processes are read from Linux's /proc")
	}
	path, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) on this host")
	}
	cmd := exec.Command(path, "600")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start sleep(1):", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	k, ld := boot(t)
	demotest.Insmod(t, k, ld, lab345deferred.Name)
	if code, out, errs := test(t, k, "p", pid); code != 0 || !strings.HasSuffix(out, "Monitor PID "+pid+".\n") || errs != "" {
		t.Fatalf("test p %s: exit %d, stdout %q, stderr %q", pid, code, out, errs)
	}
	demotest.RunFor(t, k, 2500*time.Millisecond)
	if l := demotest.Lines(k, 0); demotest.Has(l, "task sleep ("+pid+") is dead") {
		t.Fatalf("reported dead while alive: %q", l)
	}
	cmd.Process.Kill()
	cmd.Wait() // reaped: gone from /proc
	demotest.RunFor(t, k, 2*time.Second)
	if code, _, _ := test(t, k, "s", "100"); code != 0 { // ends the monitoring
		t.Fatal("test s failed")
	}
	demotest.RunFor(t, k, time.Second)
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
	log := strings.ReplaceAll(demotest.Dmesg(k, 0), "("+pid+")", "(PID)")
	golden.Check(t, "testdata/monitor.golden", log)
	if n := strings.Count(log, "task sleep (PID) is dead"); n != 1 {
		t.Errorf("%d death reports, want 1:\n%s", n, log)
	}
}

// TestMonitorOfNoProcessFailsWithESRCH: a pid with no process: the ioctl
// fails with ESRCH and the program reports it as perror does.
func TestMonitorOfNoProcessFailsWithESRCH(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the host's processes are read from Linux's /proc")
	}
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, lab345deferred.Name)
	code, out, errs := test(t, k, "p", "2147483647")
	if code != 1 || !strings.HasSuffix(out, "Monitor PID 2147483647.\n") || errs != "ioctl monitor pid error: No such process\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
}

// TestUsageAndBadOptions: no argument prints the usage (stdout, exit 1),
// an unknown option is perror's "Wrong parameter: Success", and without
// the driver the open fails.
func TestUsageAndBadOptions(t *testing.T) {
	k, ld := boot(t)
	if code, out, _ := test(t, k); code != 1 || !strings.HasPrefix(out, "Usage: test <options>\n options:\n\ts <seconds>") {
		t.Errorf("no args: %d %q", code, out)
	}
	if code, _, errs := test(t, k, "s"); code != 1 || errs != "/dev/deferred: No such device or address\n" {
		t.Errorf("no driver: %d %q", code, errs)
	}
	demotest.Insmod(t, k, ld, lab345deferred.Name)
	if code, _, errs := test(t, k, "x"); code != 1 || errs != "Wrong parameter: Success\n" {
		t.Errorf("test x: %d %q", code, errs)
	}
	if code, out, _ := test(t, k, "a"); code != 1 || !strings.HasPrefix(out, "Usage: test") {
		t.Errorf("test a: %d %q", code, out)
	}
	demotest.RunFor(t, k, time.Millisecond)
	demotest.Rmmod(t, k, ld, lab345deferred.Name)
	// Each invocation opened and released the device.
	lines := demotest.Lines(k, 0)
	if o, r := count(lines, "[deferred_open] Device opened"), count(lines, "[deferred_release] Device released"); o != 2 || r != 2 {
		t.Errorf("%d opens, %d releases, want 2 and 2: %q", o, r, lines)
	}
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}
