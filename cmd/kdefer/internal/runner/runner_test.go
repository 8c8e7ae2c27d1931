package runner_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// logBuf is a Log writer that can act when a line appears: the hook runs
// inside the kernel's log path, at a deterministic point of a virtual run.
type logBuf struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	on     string
	act    func()
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writes++
	l.buf.Write(p)
	act := l.act
	hit := act != nil && l.on != "" && bytes.Contains(p, []byte(l.on))
	if hit {
		l.act = nil
	}
	l.mu.Unlock()
	if hit {
		act()
	}
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func virtual(mod string, log io.Writer) runner.Config {
	return runner.Config{Module: mod, Virtual: true, CPUs: 2, Log: log, NoTimestamps: true}
}

func TestRunLoadsStreamsAndUnloadsInOrder(t *testing.T) {
	var log logBuf
	cfg := virtual("timer_simple", &log)
	cfg.For = 2 * time.Second
	cfg.NoTimestamps = false
	var during runner.State
	var r *runner.Runner
	cfg.BeforeUnload = func(k *kernel.Kernel, out io.Writer) { during = r.State() }
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.State() != runner.StateNew || r.Kernel() != nil {
		t.Fatalf("new runner: state %v, kernel %v", r.State(), r.Kernel())
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := r.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Module != "timer_simple" || res.Stopped != nil || res.AppStatus != 0 || during != runner.StateLoaded {
		t.Errorf("result %+v, state before unload %v", res, during)
	}
	if r.State() != runner.StateDone || r.Kernel() == nil {
		t.Errorf("after Wait: state %v, kernel %v", r.State(), r.Kernel())
	}
	out := log.String()
	for _, want := range []string{
		"[    0.000000] timer_simple:timer_simple_init(): timer set to expire in 420 ms\n",
		"[    1.344000] timer_simple:ding(): timed out... data=1\n",
		"[    2.000000] timer_simple:timer_simple_exit(): removed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestStateMovesThroughEveryStepOfTheLifeCycle(t *testing.T) {
	var seen []runner.State
	var r *runner.Runner
	note := func() {
		if s := r.State(); len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
	}
	cfg := virtual("testmod", writerFunc(func(p []byte) (int, error) { note(); return len(p), nil }))
	cfg.BeforeUnload = func(*kernel.Kernel, io.Writer) { note() }
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, r.State())
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	note()
	// Booting: the banner; loading: init's lines; loaded: BeforeUnload;
	// unloading: exit's lines; done after Wait.
	want := []runner.State{runner.StateNew, runner.StateBooting, runner.StateLoading, runner.StateLoaded, runner.StateUnloading, runner.StateDone}
	if len(seen) != len(want) {
		t.Fatalf("states seen %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("states seen %v, want %v", seen, want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStopUnloadsAPeriodicModuleAndIsTheResultsCause(t *testing.T) {
	log := &logBuf{on: "nseconds = 3"}
	cfg := virtual("1-2-timer", log)
	cfg.For = 0 // no limit: the periodic timer would run forever
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("enough")
	log.act = func() { r.Stop(cause) }
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != cause {
		t.Errorf("Stopped = %v, want %v", res.Stopped, cause)
	}
	if out := log.String(); !strings.HasSuffix(out, "[timer_handler] nseconds = 3\n[timer_exit] Exit module\n") {
		t.Errorf("log:\n%s", out)
	}
}

func TestStartContextCancelStopsTheRun(t *testing.T) {
	log := &logBuf{on: "nseconds = 2"}
	cfg := virtual("1-2-timer", log)
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	in := &runner.Interrupted{Sig: kernel.SIGHUP}
	log.act = func() { cancel(in) }
	res, err := r.Run(ctx)
	if err != nil || res.Stopped != in {
		t.Fatalf("Stopped %v, err %v; want %v", res.Stopped, err, in)
	}
	if in.Error() != "interrupted by SIGHUP" {
		t.Errorf("Interrupted.Error() = %q", in.Error())
	}
}

func TestForZeroInVirtualTimeEndsWhenNothingIsLeftToDo(t *testing.T) {
	var log logBuf
	cfg := virtual("timer_simple", &log)
	cfg.NoTimestamps = false
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err != nil || res.Stopped != nil {
		t.Fatalf("res %+v, err %v", res, err)
	}
	// The third ding does not re-arm: the unload follows it at once.
	if out := log.String(); !strings.Contains(out, "[    1.344000] timer_simple:timer_simple_exit(): removed\n") {
		t.Errorf("log:\n%s", out)
	}
}

func TestStopBeforeStartLetsInitFinishThenUnloads(t *testing.T) {
	var log logBuf
	r, err := runner.New(virtual("delays_sleeps", &log))
	if err != nil {
		t.Fatal(err)
	}
	r.Stop(nil)
	res, err := r.Run(context.Background())
	if err != nil || !errors.Is(res.Stopped, runner.ErrStopped) {
		t.Fatalf("res %+v, err %v", res, err)
	}
	out := log.String()
	for _, want := range []string{"delays_sleeps: demo complete\n", "delays_sleeps: removed\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadFailureIsErrLoadWithKmodsLine(t *testing.T) {
	var log logBuf
	cfg := virtual("testmod", &log)
	cfg.Params = []string{"count=abc"}
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(context.Background())
	if !errors.Is(err, runner.ErrLoad) || err.Error() != "insmod: ERROR: could not insert module testmod: Invalid parameters" {
		t.Fatalf("Start: %v", err)
	}
	if _, werr := r.Wait(); werr == nil || werr.Error() != err.Error() {
		t.Errorf("Wait: %v, want Start's error", werr)
	}
	if r.State() != runner.StateDone {
		t.Errorf("state %v", r.State())
	}
	if !strings.Contains(log.String(), "testmod: `abc' invalid for parameter `count'") {
		t.Errorf("log:\n%s", log.String())
	}
}

// failAfter fails every write after the first n.
type failAfter struct {
	mu     sync.Mutex
	n      int
	writes int
	after  int // writes attempted after the first failure
}

var errDiskFull = errors.New("no space left on device")

func (f *failAfter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.writes > f.n+1 {
		f.after++
	}
	if f.writes > f.n {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestOutputErrorStopsTheRunUnloadsAndIsReported(t *testing.T) {
	for _, n := range []int{0, 6} {
		w := &failAfter{n: n}
		cfg := virtual("1-2-timer", w)
		cfg.For = 0 // would run forever but for the error
		r, err := runner.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(context.Background())
		if !errors.Is(err, runner.ErrOutput) || !errors.Is(err, errDiskFull) {
			t.Errorf("n=%d: err %v, want ErrOutput wrapping the write error", n, err)
		}
		if !errors.Is(res.Stopped, runner.ErrOutput) || r.State() != runner.StateDone {
			t.Errorf("n=%d: Stopped %v, state %v", n, res.Stopped, r.State())
		}
		if w.after != 0 {
			t.Errorf("n=%d: %d writes after the first failure", n, w.after)
		}
	}
}

func TestProgramOutputErrorIsAnOutputError(t *testing.T) {
	var log logBuf
	cfg := virtual("sed1", &log)
	cfg.Exec = []string{"userapp_sed1", "/dev/sed1_drv", "hello"}
	cfg.Stdout = &failAfter{n: 1}
	var unloading bool
	cfg.BeforeUnload = func(*kernel.Kernel, io.Writer) { unloading = true }
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if !errors.Is(err, runner.ErrOutput) || errors.Is(err, runner.ErrUnload) || !errors.Is(res.Stopped, runner.ErrOutput) {
		t.Errorf("err %v, Stopped %v; want ErrOutput and a clean unload", err, res.Stopped)
	}
	if !unloading || r.State() != runner.StateDone {
		t.Errorf("state %v, reached the unload: %v", r.State(), unloading)
	}
	// Log and Stdout are one stream to the runner: nothing more is written
	// to either after the error.
	if strings.Contains(log.String(), "unloading") {
		t.Errorf("log written after the output error:\n%s", log.String())
	}
}

// TestInterruptGivesTheProgramTheSameSignal runs in real time: in virtual
// time the driver notices a stop only after the next event, which here is
// the program's own wake-up, so the signal would come after its sleep.
// The stop is requested on the program's own output, right before its one
// second sleep; nothing is timed.
//
// The driver gives its encrypt operation a deadline of one jiffy (the
// demo's TIMER_EXPIRE_MS of 1 ms), and on a loaded machine a real-time
// run can miss it: the program then prints "*** Operation Timed Out ***"
// and exits 1 before it reaches the sleep, as the demo does on a slow
// kernel. That attempt tells nothing about signals, so it is run again
// (about 1 run in 2,000 under two CPU burners and -race).
func TestInterruptGivesTheProgramTheSameSignal(t *testing.T) {
	for _, sig := range []kernel.Signal{kernel.SIGINT, kernel.SIGTERM, kernel.SIGHUP} {
		const attempts = 10
		var (
			log    *logBuf
			stdout *logBuf
			res    runner.Result
		)
		for try := 1; ; try++ {
			log = &logBuf{}
			cfg := runner.Config{Module: "sed1", CPUs: 2, Log: log, NoTimestamps: true}
			cfg.Exec = []string{"userapp_sed1", "/dev/sed1_drv", "hello"}
			var r *runner.Runner
			stdout = &logBuf{on: "msg after encrypt", act: func() { r.Stop(&runner.Interrupted{Sig: sig}) }}
			cfg.Stdout = stdout
			stderr := &logBuf{}
			cfg.Stderr = stderr
			var err error
			r, err = runner.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err = r.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr.String(), "*** Operation Timed Out ***") {
				break
			}
			if try == attempts {
				t.Fatalf("%s: the driver's one-jiffy deadline was missed %d times in a row:\n%s", runner.SignalName(sig), attempts, log.String())
			}
			t.Logf("%s: attempt %d missed the driver's deadline; running it again", runner.SignalName(sig), try)
		}
		var in *runner.Interrupted
		if res.AppStatus != 128+int(sig) || !errors.As(res.Stopped, &in) || in.Sig != sig {
			t.Errorf("%s: result %+v", runner.SignalName(sig), res)
		}
		if strings.Contains(stdout.String(), "msg after decrypt") || !strings.Contains(log.String(), "misc sed1_drv: unloading") {
			t.Errorf("%s: program not interrupted or module not unloaded:\n%s\n%s", runner.SignalName(sig), stdout.String(), log.String())
		}
	}
}

func TestExecWithForKeepsTheModuleUntilBothHavePassed(t *testing.T) {
	var log logBuf
	cfg := virtual("sed1", &log)
	cfg.NoTimestamps = false
	cfg.Exec = []string{"userapp_sed1", "/dev/sed1_drv", "hi"}
	cfg.For = 3 * time.Second
	r, err := runner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "[    3.000000] misc sed1_drv: unloading\n") {
		t.Errorf("want the unload at 3 s:\n%s", log.String())
	}
}

func TestNewRefusesWhatCouldNotRun(t *testing.T) {
	for _, tc := range []struct {
		cfg  runner.Config
		want error
	}{
		{runner.Config{Module: "nosuch"}, runner.ErrUnknownModule},
		{runner.Config{Module: "sed1", Exec: []string{"nosuch"}}, runner.ErrUnknownApp},
		{runner.Config{Module: "sed1", Exec: []string{}}, runner.ErrConfig},
		{runner.Config{Module: "sed1", Exec: []string{""}}, runner.ErrConfig},
		{runner.Config{Module: "testmod", HZ: 7}, runner.ErrConfig},
		{runner.Config{Module: "testmod", CPUs: -1}, runner.ErrConfig},
		{runner.Config{Module: "testmod", CPUs: kernel.NRCPUs + 1}, runner.ErrConfig},
		{runner.Config{Module: "testmod", For: -time.Second}, runner.ErrConfig},
	} {
		if _, err := runner.New(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("New(%+v) = %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestStartTwiceAndWaitBeforeStartAreErrors(t *testing.T) {
	r, err := runner.New(virtual("testmod", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(); !errors.Is(err, runner.ErrNotStarted) {
		t.Errorf("Wait before Start: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); !errors.Is(err, runner.ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	if _, err := r.Run(context.Background()); !errors.Is(err, runner.ErrStarted) {
		t.Errorf("Run after Start: %v", err)
	}
	if _, err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	select {
	case <-r.Done():
	default:
		t.Error("Done not closed after Wait")
	}
}

// TestRealTimeStopFromAnotherGoroutine is a race test: it asserts no
// timing, only that a real-time run with no limit ends on Stop.
func TestRealTimeStopFromAnotherGoroutine(t *testing.T) {
	var log logBuf
	r, err := runner.New(runner.Config{Module: "testmod", CPUs: 2, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.State() != runner.StateLoaded {
		t.Errorf("state after Start: %v", r.State())
	}
	go r.Stop(nil)
	res, err := r.Wait()
	if err != nil || !errors.Is(res.Stopped, runner.ErrStopped) {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if !strings.Contains(log.String(), "testmod:Exit(): unloaded") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestStateNames(t *testing.T) {
	for s, want := range map[runner.State]string{
		runner.StateNew: "new", runner.StateBooting: "booting", runner.StateLoading: "loading",
		runner.StateLoaded: "loaded", runner.StateUnloading: "unloading", runner.StateUnloaded: "unloaded",
		runner.StateDone: "done", runner.State(42): "State(42)",
	} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int32(s), s.String(), want)
		}
	}
}
