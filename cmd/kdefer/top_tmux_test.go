package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tmux drives a private tmux server (its own socket) for one test.
type tmux struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the end-to-end test of kdefer top needs it (.ci/run installs it with apt-get)")
	}
	x := &tmux{t: t, sock: fmt.Sprintf("kdefer-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	t.Cleanup(func() { exec.Command("tmux", "-L", x.sock, "kill-server").Run() })
	return x
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.sock}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitFor polls the pane until it shows want; the deadline only bounds a
// hang, nothing waits for a time.
func (x *tmux) waitFor(want string) string {
	x.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		screen := x.run("capture-pane", "-p", "-t", "top")
		if strings.Contains(screen, want) {
			return screen
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("pane never showed %q; it shows:\n%s", want, screen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTopUnderTmux runs kdefer top in a real terminal (tmux, 80×24) on a
// real-time run of timer_simple, presses its keys, quits with q or Ctrl-C
// and checks that the run ended cleanly and the terminal was restored
// (canonical mode, the normal screen).
func TestTopUnderTmux(t *testing.T) {
	bin := buildKdefer(t)
	for _, quit := range []string{"q", "C-c"} {
		t.Run(quit, func(t *testing.T) {
			x := newTmux(t)
			script := bin + " top --interval 50ms -- run timer_simple --cpus 2; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 600"
			x.run("new-session", "-d", "-s", "top", "-x", "80", "-y", "24", script)
			screen := x.waitFor("SOFTIRQ/s")
			if !strings.Contains(screen, "kdefer top - timer_simple") {
				t.Errorf("no title:\n%s", screen)
			}
			x.waitFor("timer_simple_init")
			x.run("send-keys", "-t", "top", "s")
			x.waitFor("by state)")
			x.run("send-keys", "-t", "top", "/", "k", "s", "o", "f", "t", "Enter")
			x.waitFor("(2 tasks, by state  filter: ksoft)")
			x.run("send-keys", "-t", "top", "p")
			x.waitFor("[paused]")
			x.run("send-keys", "-t", "top", quit)
			screen = x.waitFor("EXIT=")
			if !strings.Contains(screen, "EXIT=0") {
				t.Errorf("kdefer top did not exit 0:\n%s", screen)
			}
			screen = x.waitFor("icanon")
			if strings.Contains(screen, "-icanon") || strings.Contains(screen, "SOFTIRQ/s") {
				t.Errorf("terminal not restored (raw mode or the alternate screen left):\n%s", screen)
			}
			if !strings.Contains(screen, "timer_simple_exit(): removed") {
				t.Errorf("the module was not unloaded:\n%s", screen)
			}
		})
	}
}

// TestTopUnderTmuxShowsTheWorkerPools runs kdefer top on a real-time run
// of workq_simple (a timer schedules a work item on events) in tmux at
// 80×24: the workqueue line and CPU 0's pool appear once the item has run;
// q quits cleanly.
func TestTopUnderTmuxShowsTheWorkerPools(t *testing.T) {
	bin := buildKdefer(t)
	x := newTmux(t)
	script := bin + " top --interval 50ms -- run workq_simple --cpus 2; echo EXIT=$?; sleep 600"
	x.run("new-session", "-d", "-s", "top", "-x", "80", "-y", "24", script)
	screen := x.waitFor("POOL    WORKERS  BUSY  IDLE RUNNING PENDING")
	if !strings.Contains(screen, "WORK queued ") || !strings.Contains(screen, "\n0    ") {
		t.Errorf("no workqueue line or CPU 0's pool:\n%s", screen)
	}
	x.run("send-keys", "-t", "top", "q")
	if screen := x.waitFor("EXIT="); !strings.Contains(screen, "EXIT=0") {
		t.Errorf("kdefer top did not exit 0:\n%s", screen)
	}
}

// TestTopReplayUnderTmux replays a recording in a real terminal (tmux,
// 80×24): it plays to the end, steps back, jumps, quits with q, and the
// terminal is restored.
func TestTopReplayUnderTmux(t *testing.T) {
	bin := buildKdefer(t)
	file := recordPeriodicTimer(t)
	x := newTmux(t)
	script := bin + " top --interval 20ms --step 1s " + file + "; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 600"
	x.run("new-session", "-d", "-s", "top", "-x", "80", "-y", "24", script)
	screen := x.waitFor("replay [end]  at 3.000s of 3.000s  frame 3/3")
	if !strings.Contains(screen, "kdefer top - periodic.kdt: kdefer run 1-2-timer") || !strings.Contains(screen, "EVENTS") {
		t.Errorf("no title or events:\n%s", screen)
	}
	x.run("send-keys", "-t", "top", "Left")
	x.waitFor("replay [paused]  at 2.000s of 3.000s  frame 2/3")
	x.run("send-keys", "-t", "top", ":", "1", "s", "Enter")
	x.waitFor("frame 1/3")
	x.run("send-keys", "-t", "top", "q")
	screen = x.waitFor("EXIT=")
	if !strings.Contains(screen, "EXIT=0") {
		t.Errorf("kdefer top FILE did not exit 0:\n%s", screen)
	}
	screen = x.waitFor("icanon")
	if strings.Contains(screen, "-icanon") || strings.Contains(screen, "EVENTS") {
		t.Errorf("terminal not restored (raw mode or the alternate screen left):\n%s", screen)
	}
}

func TestTopUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"top"},
		{"top", "--", "timer_simple"},
		{"top", "--", "run"},
		{"top", "--interval", "1ms", "--", "run", "timer_simple"},
		{"top", "--", "run", "nosuch"},
	} {
		if _, errs, code := kdefer(t, args...); code != 2 {
			t.Errorf("kdefer %q: exit %d, want 2 (stderr %q)", args, code, errs)
		}
	}
}
