package main

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
)

// The console sessions of the kernel-thread demos: each script is what the
// books type at a shell while the module is loaded, run in virtual time so
// that the output is the same on every run.

// kthreadSimpleScript: ps finds [llkd/kt_simple] (pid 6), kill -9 does
// nothing (SIGKILL is not allowed), kill -INT wakes it and it exits; the
// end of input lets the run go on to its rmmod.
const kthreadSimpleScript = `ps
kill -9 6
sleep 0.5
ps
kill -INT 6
sleep 0.5
ps
`

func TestConsoleKillIntEndsKthreadSimple(t *testing.T) {
	out, errs, code := kdeferWithInput(t, kthreadSimpleScript, "run", "kthread_simple", "--virtual", "--cpus", "2", "--for", "2s", "--no-timestamps")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/console_kthread_simple.golden", out)
}

// kt1Script is seed 002's shell session with kt1: ps shows [mykt] (pid 6)
// asleep, a child of kthreadd; its /proc/6/status; kill -9 does nothing;
// kill -2 (SIGINT) ends it, and its /proc directory goes with it.
const kt1Script = `ps
cat /proc/6/status
kill -9 6
sleep 1
ps
kill -2 6
sleep 1
ps
cat /proc/6/status
`

func TestConsoleKt1KillNineDoesNothingKillTwoEndsIt(t *testing.T) {
	out, errs, code := kdeferWithInput(t, kt1Script, "run", "kt1", "--virtual", "--cpus", "2", "--for", "3s", "--no-timestamps")
	if code != 0 || errs != "cat: /proc/6/status: No such file or directory\n" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/console_kt1.golden", out)
}

// kt1UnloadRaceScript is the book's warning made visible (issue 12): kt1
// is unloaded while its thread [mykt] (pid 6) sleeps; the kernel runs on,
// the orphan is still there, and SIGINT wakes it into the module's freed
// code: the page fault and the Oops. quit then ends the run (kt1 is not
// unloaded twice).
const kt1UnloadRaceScript = `ps
rmmod
lsmod
ps
kill -INT 6
ps
quit
`

func TestConsoleKt1UnloadRaceOopsesTheOrphanedThread(t *testing.T) {
	out, errs, code := kdeferWithInput(t, kt1UnloadRaceScript, "run", "kt1", "--virtual", "--cpus", "2", "--no-timestamps")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/console_kt1_unload_race.golden", withoutGoStack(out))
	for _, want := range []string{
		"hello_exit:217 : Module kt unloaded.\nModule                  Size  Used by\n    PID    PPID STAT PSR CMD\n",
		"      6       2 S      1 [mykt]\nBUG: unable to handle page fault for address: ffffffffc0a3e07c\n",
		"Oops: task mykt/6 panicked: kt1: mykt+0x7c/0x140 ran after module kt1 was unloaded",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Count(out, "Module kt unloaded.") != 1 || strings.Count(out, "[mykt]") != 2 {
		t.Errorf("kt1 unloaded %d times, [mykt] listed %d times (want 1, 2)", strings.Count(out, "Module kt unloaded."), strings.Count(out, "[mykt]"))
	}
}

// withoutGoStack cuts the Go frames of an Oops's call trace (the lines
// between <TASK> and </TASK> name kdefer's own source lines, which change
// with kdefer, not with the demo) down to one " ...".
func withoutGoStack(s string) string {
	var out []string
	skip := false
	for _, l := range strings.SplitAfter(s, "\n") {
		switch strings.TrimSpace(l) {
		case "<TASK>":
			out = append(out, l, " ...\n")
			skip = true
			continue
		case "</TASK>":
			skip = false
		}
		if !skip {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestModulesListsTheKthreadTaskletAndUmhDemos(t *testing.T) {
	out, _, code := kdefer(t, "modules")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"kthread_simple ", "6_kthread ", "tasklet_driver ", "kt1 ", "kt2 ", "umh_demo ",
		"sed2_drv ", "    alias: sed2\n", "    make_it_fail:int (default \"0\", perm 0660)",
		"    app: userapp_sed2 DEVICE MESSAGE [CHOICE...]",
		"    wait:int (default \"2\", perm 0444)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("modules output lacks %q:\n%s", want, out)
		}
	}
}
