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
