package console_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/console"
	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/internal/golden"
)

// syncBuf is kdefer's terminal in these tests: the log, the programs'
// output and the console's replies and errors, in the order written.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// session runs module mod in virtual time with its clock held, serves the
// script to it, and returns everything written and the run's result.
func session(t *testing.T, mod string, forD time.Duration, script string, opts console.ServeOptions) (string, runner.Result) {
	t.Helper()
	var term syncBuf
	r, err := runner.New(runner.Config{Module: mod, Virtual: true, CPUs: 2, For: forD, HoldClock: true,
		Log: &term, Stdout: &term, Stderr: &term})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- console.Serve(r, strings.NewReader(script), &term, &term, opts) }()
	res, err := r.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	return term.String(), res
}

// sed1Script pokes sed1 and its program: half a second in, the program is
// in its one-second sleep between encrypting and decrypting; SIGINT ends
// it there.
const sed1Script = `# a scripted session
ps
lsmod
exec userapp_sed1 /dev/sed1_drv hello
sleep 0.5
ps
cat /proc/6/status
kill -INT 6
ps
frobnicate
cat /sys/module/sed1_drv/parameters/make_it_fail /proc/nosuch
sleep 1
cat /proc/softirqs
`

func TestScriptedSessionIsReproducibleInVirtualTime(t *testing.T) {
	out, res := session(t, "sed1", 3*time.Second, sed1Script, console.ServeOptions{})
	if res.Stopped != nil {
		t.Errorf("stopped: %v", res.Stopped)
	}
	golden.Check(t, "testdata/sed1_session.golden", out)
	if again, _ := session(t, "sed1", 3*time.Second, sed1Script, console.ServeOptions{}); again != out {
		t.Errorf("a second run differs:\n%s", again)
	}
}

func TestQuitEndsTheRunAndNothingAfterItRuns(t *testing.T) {
	for _, cmd := range []string{"quit", "exit"} {
		out, res := session(t, "timer_simple", 0, "lsmod\n"+cmd+"\nps\n", console.ServeOptions{})
		if !errors.Is(res.Stopped, console.ErrQuit) {
			t.Errorf("%s: stopped by %v", cmd, res.Stopped)
		}
		if strings.Contains(out, "PID") || strings.Contains(out, "timed out") || !strings.HasSuffix(out, "timer_simple:timer_simple_exit(): removed\n") {
			t.Errorf("%s:\n%s", cmd, out)
		}
	}
}

// rmmod unloads the module and the session goes on: the kernel runs
// without it, time passes, and the run ends when its time is up.
func TestRmmodUnloadsAndTheKernelRunsOnWithoutTheModule(t *testing.T) {
	script := "rmmod\nlsmod\nsleep 1\nrmmod timer-simple\nps\n"
	out, res := session(t, "timer_simple", 2*time.Second, script, console.ServeOptions{})
	if res.Stopped != nil {
		t.Errorf("stopped: %v", res.Stopped)
	}
	removed := "[    0.000000] timer_simple:timer_simple_exit(): removed\n"
	want := removed + "Module                  Size  Used by\n" + // lsmod: nothing loaded
		"rmmod: ERROR: Module timer-simple is not currently loaded\n" + // a second of kernel time later
		"    PID    PPID STAT PSR CMD\n"
	if !strings.Contains(out, want) || strings.Count(out, "removed") != 1 || strings.Contains(out, "timed out") {
		t.Errorf("want\n%s\nin\n%s", want, out)
	}
}

// rmmod of a module whose device a program holds open fails with kmod's
// line, as in the kernel; the module stays, and the end of the run
// unloads it once the program is gone.
func TestRmmodOfAModuleInUseFailsAndTheRunGoesOn(t *testing.T) {
	script := "exec userapp_sed1 /dev/sed1_drv hello\nsleep 0.5\nrmmod\nlsmod\n"
	out, res := session(t, "sed1", 3*time.Second, script, console.ServeOptions{})
	if res.Stopped != nil {
		t.Errorf("stopped: %v", res.Stopped)
	}
	want := "rmmod: ERROR: Module sed1_drv is in use\nModule                  Size  Used by\nsed1_drv                   0  1\n"
	if !strings.Contains(out, want) || strings.Count(out, "misc sed1_drv: unloading") != 1 || !strings.HasSuffix(out, "misc sed1_drv: unloading\n") {
		t.Errorf("want\n%s\nin\n%s", want, out)
	}
}

func TestEndOfInputLetsTheHeldClockRun(t *testing.T) {
	out, res := session(t, "timer_simple", 2*time.Second, "lsmod\n", console.ServeOptions{})
	if res.Stopped != nil {
		t.Errorf("stopped: %v", res.Stopped)
	}
	lsmod := strings.Index(out, "Module                  Size  Used by\n")
	ding := strings.Index(out, "timed out... data=3")
	if lsmod < 0 || ding < lsmod || !strings.HasSuffix(out, "[    2.000000] timer_simple:timer_simple_exit(): removed\n") {
		t.Errorf("lsmod at %d, first ding at %d:\n%s", lsmod, ding, out)
	}
}

func TestPromptAndOverlongLines(t *testing.T) {
	long := strings.Repeat("x", console.MaxLine+1)
	out, _ := session(t, "testmod", time.Second, "lsmod\n"+long+"\nlsmod", console.ServeOptions{Prompt: "kdefer> "})
	want := "kdefer> Module                  Size  Used by\ntestmod                    0  0\n" +
		"kdefer> kdefer: line too long (more than 4096 bytes): ignored\n" +
		"kdefer> Module                  Size  Used by\ntestmod                    0  0\n" +
		"kdefer> \n" // the end of input
	if !strings.Contains(out, want) {
		t.Errorf("want\n%s\nin\n%s", want, out)
	}
}

// TestServeReturnsOnceTheRunHasEnded: input that comes after the run is
// not run; Serve returns at the next line (or at the end of input).
func TestServeReturnsOnceTheRunHasEnded(t *testing.T) {
	var term syncBuf
	r, err := runner.New(runner.Config{Module: "timer_simple", Virtual: true, CPUs: 1, For: time.Second, Log: &term, Stdout: &term})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	served := make(chan error, 1)
	go func() { served <- console.Serve(r, pr, &term, &term, console.ServeOptions{}) }()
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	before := term.String()
	io.WriteString(pw, "lsmod\nlsmod\n")
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if term.String() != before {
		t.Errorf("a command ran after the run:\n%s", strings.TrimPrefix(term.String(), before))
	}
}

func TestReadErrorEndsServeAndReleasesTheClock(t *testing.T) {
	var term syncBuf
	r, err := runner.New(runner.Config{Module: "timer_simple", Virtual: true, CPUs: 1, For: time.Second, HoldClock: true, Log: &term})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("broken input")
	if err := console.Serve(r, io.MultiReader(strings.NewReader("lsmod\n"), errReader{broken}), &term, &term, console.ServeOptions{}); !errors.Is(err, broken) {
		t.Errorf("Serve: %v", err)
	}
	if _, err := r.Wait(); err != nil { // the clock was let go: the run ends
		t.Fatal(err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestConsoleInRealTimeIsRaceFree runs every command against a real-time
// kernel that is busy meanwhile (a timer module and a program): a -race
// test, asserting nothing about timing.
func TestConsoleInRealTimeIsRaceFree(t *testing.T) {
	var term syncBuf
	r, err := runner.New(runner.Config{Module: "sed1", CPUs: 2, Log: &term, Stdout: &term, Stderr: &term})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	script := "exec userapp_sed1 /dev/sed1_drv hello\nps\nps -e\ndmesg\ndmesg -t\nlsmod\nls /proc\nls /proc/6\n" +
		"cat /proc/softirqs /proc/interrupts /proc/timer_list /proc/timer_wheel /proc/modules /proc/devices /proc/misc\n" +
		"cat /proc/1/status /proc/6/status /proc/6/comm /sys/module/sed1_drv/parameters/make_it_fail\n" +
		"sleep 0.001\nkill -INT 6\nkill -0 3\nhelp\nbogus\nquit\n"
	if err := console.Serve(r, strings.NewReader(script), &term, &term, console.ServeOptions{Prompt: "> "}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Stopped, console.ErrQuit) || !strings.Contains(term.String(), "    PID    PPID STAT PSR CMD\n") {
		t.Errorf("stopped by %v:\n%s", res.Stopped, term.String())
	}
}
