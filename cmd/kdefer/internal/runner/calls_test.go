package runner_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
)

// held starts a virtual run of mod with its clock held.
func held(t *testing.T, mod string, log *logBuf, forD time.Duration) *runner.Runner {
	t.Helper()
	cfg := virtual(mod, log)
	cfg.NoTimestamps = false
	cfg.For = forD
	cfg.HoldClock = true
	cfg.Stdout = log
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// now returns the kernel's clock, read on the driver.
func now(t *testing.T, r *runner.Runner) int64 {
	t.Helper()
	var ns int64
	if err := r.Do(func(k *kernel.Kernel) { ns = k.Now() }); err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestHeldClockWaitsForReleaseWhileDoRuns(t *testing.T) {
	var log logBuf
	r := held(t, "timer_simple", &log, 2*time.Second)
	first := now(t, r)
	for range 3 {
		if ns := now(t, r); ns != first {
			t.Fatalf("the held clock moved from %d to %d ns", first, ns)
		}
	}
	if strings.Contains(log.String(), "timed out") {
		t.Fatalf("a timer fired while the clock was held:\n%s", log.String())
	}
	r.ReleaseClock()
	r.ReleaseClock() // only the first counts
	res, err := r.Wait()
	if err != nil || res.Stopped != nil {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if out := log.String(); !strings.Contains(out, "timed out... data=1") || !strings.Contains(out, "[    2.000000] timer_simple:timer_simple_exit(): removed") {
		t.Errorf("the run did not go on after the release:\n%s", out)
	}
}

func TestDoFailsOutsideTheModulesTime(t *testing.T) {
	var log logBuf
	r, err := runner.New(virtual("testmod", &log))
	if err != nil {
		t.Fatal(err)
	}
	called := false
	if err := r.Do(func(*kernel.Kernel) { called = true }); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("Do before Start: %v", err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Do(func(*kernel.Kernel) { called = true }); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("Do after Wait: %v", err)
	}
	if _, err := r.StartApp([]string{"userapp_sed1", "/dev/x", "m"}, nil); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("StartApp after Wait: %v", err)
	}
	if called {
		t.Error("fn ran outside the module's time")
	}
	if n, err := r.Writer(&log).Write([]byte("late\n")); n != 0 || !errors.Is(err, runner.ErrNotRunning) || strings.Contains(log.String(), "late") {
		t.Errorf("Write after the run: %d, %v", n, err)
	}
}

func TestStopReleasesAHeldClock(t *testing.T) {
	var log logBuf
	r := held(t, "sed1", &log, 0)
	started := make(chan *kernel.Task, 1)
	if err := r.Do(func(*kernel.Kernel) {
		tk, err := r.StartApp([]string{"userapp_sed1", "/dev/sed1_drv", "hi"}, nil)
		if err != nil {
			t.Error(err)
		}
		started <- tk
	}); err != nil {
		t.Fatal(err)
	}
	app := <-started
	r.Stop(errors.New("done"))
	res, err := r.Wait()
	if err != nil || res.Stopped == nil {
		t.Fatalf("res %+v, err %v", res, err)
	}
	// The program waited for the held clock inside its one-second
	// sleep; the stop's SIGTERM ended it, and the module unloaded.
	if !app.HasExited() || app.ExitCode() != 128+int(kernel.SIGTERM) {
		t.Errorf("program: exited %v, status %d", app.HasExited(), app.ExitCode())
	}
	if out := log.String(); !strings.Contains(out, "misc sed1_drv: unloading") {
		t.Errorf("log:\n%s", out)
	}
}

func TestStartAppRunsAProgramAndReportsItsExit(t *testing.T) {
	var log logBuf
	r := held(t, "sed1", &log, 5*time.Second)
	var mu sync.Mutex
	var status = -1
	var pid int
	if err := r.Do(func(*kernel.Kernel) {
		tk, err := r.StartApp([]string{"./userapp_sed1", "/dev/sed1_drv", "hello"}, func(t *kernel.Task, st int) {
			mu.Lock()
			status = st
			mu.Unlock()
			r.Writer(&log).Write([]byte("exited\n"))
		})
		if err != nil {
			t.Error(err)
			return
		}
		pid = tk.PID()
	}); err != nil {
		t.Fatal(err)
	}
	r.ReleaseClock()
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := log.String()
	if status != 0 || pid == 0 || !strings.Contains(out, "msg after decrypt: hello\n") || !strings.Contains(out, "exited\n") {
		t.Fatalf("status %d, pid %d:\n%s", status, pid, out)
	}
	if strings.Index(out, "exited\n") > strings.Index(out, "unloading") {
		t.Errorf("the program's end was reported after the unload:\n%s", out)
	}
}

func TestStartAppRefusesUnknownAndEmptyPrograms(t *testing.T) {
	var log logBuf
	r := held(t, "sed1", &log, 0)
	defer func() { r.Stop(nil); r.Wait() }()
	if err := r.Do(func(*kernel.Kernel) {
		if _, err := r.StartApp([]string{"nosuch"}, nil); !errors.Is(err, runner.ErrUnknownApp) {
			t.Errorf("unknown program: %v", err)
		}
		if _, err := r.StartApp(nil, nil); !errors.Is(err, runner.ErrConfig) {
			t.Errorf("empty argv: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

func TestAdvanceMovesAHeldClockAndHoldsItAgain(t *testing.T) {
	var log logBuf
	r := held(t, "timer_simple", &log, 2*time.Second)
	if err := r.Advance(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ns := now(t, r); ns != int64(500*time.Millisecond) {
		t.Fatalf("clock at %d ns after Advance(500ms)", ns)
	}
	out := log.String()
	if !strings.Contains(out, "[    0.448000] timer_simple:ding(): timed out... data=3") || strings.Contains(out, "data=2") {
		t.Fatalf("log at 500 ms:\n%s", out)
	}
	if err := r.Advance(time.Second); err != nil {
		t.Fatal(err)
	}
	if ns := now(t, r); ns != int64(1500*time.Millisecond) {
		t.Fatalf("clock at %d ns after another Advance(1s)", ns)
	}
	if err := r.Advance(-time.Second); !errors.Is(err, runner.ErrConfig) {
		t.Errorf("Advance(-1s): %v", err)
	}
	r.ReleaseClock()
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "[    2.000000] timer_simple:timer_simple_exit(): removed") {
		t.Errorf("log:\n%s", out)
	}
}

func TestAdvancePastTheModulesTimeEndsWithTheRun(t *testing.T) {
	var log logBuf
	r := held(t, "timer_simple", &log, time.Second)
	if err := r.Advance(5 * time.Second); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("Advance past For: %v", err)
	}
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "[    1.000000] timer_simple:timer_simple_exit(): removed") {
		t.Errorf("log:\n%s", out)
	}
}

func TestAdvanceInRealTimeWaits(t *testing.T) {
	var log logBuf
	cfg := runner.Config{Module: "testmod", CPUs: 1, Log: &log}
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(time.Millisecond); err != nil {
		t.Error(err)
	}
	r.Stop(nil)
	if err := r.Advance(time.Hour); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("Advance after Stop: %v", err)
	}
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Unload takes the module out and the kernel runs on: the run ends when
// its time is up, without a second rmmod; BeforeUnload runs once, before
// the exit; a held clock is held again where the exit returned.
func TestUnloadKeepsTheKernelRunningUntilTheRunsEnd(t *testing.T) {
	var log logBuf
	cfg := virtual("timer_simple", &log)
	cfg.NoTimestamps = false
	cfg.For = 2 * time.Second
	cfg.HoldClock = true
	befores := 0
	cfg.BeforeUnload = func(k *kernel.Kernel, out io.Writer) { befores++; io.WriteString(out, "before unload\n") }
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Unload(); err != nil {
		t.Fatal(err)
	}
	if s := r.State(); s != runner.StateUnloaded {
		t.Errorf("state after Unload: %v", s)
	}
	if ns := now(t, r); ns != 0 {
		t.Errorf("the held clock moved to %d ns during the unload", ns)
	}
	if err := r.Unload(); !errors.Is(err, runner.ErrUnload) || err.Error() != "rmmod: ERROR: Module timer_simple is not currently loaded" {
		t.Errorf("second Unload: %v", err)
	}
	if err := r.Advance(time.Second); err != nil { // the kernel runs on
		t.Fatal(err)
	}
	r.ReleaseClock()
	res, err := r.Wait()
	if err != nil || res.Stopped != nil {
		t.Fatalf("res %+v, err %v", res, err)
	}
	out := log.String()
	if want := "before unload\n[    0.000000] timer_simple:timer_simple_exit(): removed\n"; !strings.HasSuffix(out, want) || befores != 1 || strings.Contains(out, "timed out") {
		t.Errorf("BeforeUnload called %d times; log:\n%s", befores, out)
	}
}

// A module in use does not unload: Unload fails with kmod's line, the
// module stays, and the end of the run unloads it.
func TestUnloadOfAModuleInUseFailsAndTheEndUnloadsIt(t *testing.T) {
	var log logBuf
	r := held(t, "sed1", &log, 3*time.Second)
	if err := r.Do(func(*kernel.Kernel) {
		if _, err := r.StartApp([]string{"userapp_sed1", "/dev/sed1_drv", "hi"}, nil); err != nil {
			t.Error(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(500 * time.Millisecond); err != nil { // the program holds the device open
		t.Fatal(err)
	}
	if err := r.Unload(); !errors.Is(err, runner.ErrUnload) || err.Error() != "rmmod: ERROR: Module sed1_drv is in use" {
		t.Errorf("Unload while in use: %v", err)
	}
	if s := r.State(); s != runner.StateLoaded {
		t.Errorf("state after a failed Unload: %v", s)
	}
	r.ReleaseClock()
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); strings.Count(out, "misc sed1_drv: unloading") != 1 {
		t.Errorf("log:\n%s", out)
	}
}

func TestUnloadOutsideTheRunsTimeIsErrNotRunning(t *testing.T) {
	var log logBuf
	r, err := runner.New(virtual("testmod", &log))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Unload(); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("Unload before Start: %v", err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Unload(); !errors.Is(err, runner.ErrNotRunning) {
		t.Errorf("Unload after Wait: %v", err)
	}
	if n := strings.Count(log.String(), "testmod:Exit(): unloaded"); n != 1 {
		t.Errorf("unloaded %d times", n)
	}
}

// Unload racing with the end of the run (Stop) in real time: the module
// is unloaded exactly once, and neither side fails or hangs. A -race
// test; it asserts nothing about timing.
func TestUnloadRacingTheRunsEndUnloadsOnce(t *testing.T) {
	for i := range 20 {
		var log logBuf
		r, err := runner.New(runner.Config{Module: "testmod", CPUs: 2, Log: &log, NoTimestamps: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		unloaded := make(chan error, 1)
		go func() { unloaded <- r.Unload() }()
		if i%2 == 0 {
			r.Stop(nil)
		} else {
			go r.Stop(nil)
		}
		uerr := <-unloaded
		if uerr != nil && !errors.Is(uerr, runner.ErrNotRunning) && !errors.Is(uerr, runner.ErrUnload) {
			t.Errorf("Unload: %v", uerr)
		}
		if _, err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(log.String(), "testmod:Exit(): unloaded"); n != 1 {
			t.Fatalf("run %d: unloaded %d times (Unload: %v):\n%s", i, n, uerr, log.String())
		}
	}
}
