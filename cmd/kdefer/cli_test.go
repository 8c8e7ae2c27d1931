package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
)

// trigger is a stdout that calls act (once) when a write contains on: an
// interrupt at a point of the run the test chooses, not at a time.
type trigger struct {
	mu  sync.Mutex
	buf bytes.Buffer
	on  string
	act func()
}

func (w *trigger) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	act := w.act
	if act != nil && bytes.Contains(p, []byte(w.on)) {
		w.act = nil
	} else {
		act = nil
	}
	w.mu.Unlock()
	if act != nil {
		act()
	}
	return len(p), nil
}

func (w *trigger) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// interruptOn runs kdefer with args; when stdout shows on, it is
// interrupted as by sig.
func interruptOn(t *testing.T, on string, sig kernel.Signal, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	out := &trigger{on: on, act: func() { cancel(&runner.Interrupted{Sig: sig}) }}
	var errb bytes.Buffer
	code := run(ctx, args, out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrorIsOneLineAndAHint(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		line, hint string
	}{
		{[]string{"run"}, "kdefer run: missing MODULE", "see 'kdefer help run'"},
		{[]string{"run", "testmod", "--bogus"}, "kdefer run: unknown flag: --bogus", "see 'kdefer help run'"},
		{[]string{"run", "--bogus=1", "testmod"}, "kdefer run: unknown flag: --bogus", "see 'kdefer help run'"},
		{[]string{"run", "testmod", "-bogus"}, "kdefer run: unknown shorthand flag: 'b' in -bogus", "see 'kdefer help run'"},
		{[]string{"run", "testmod", "--for"}, "kdefer run: flag needs an argument: --for", "see 'kdefer help run'"},
		{[]string{"run", "testmod", "=1"}, `kdefer run: bad module parameter "=1": want name=value`, "see 'kdefer help run'"},
		{[]string{"run", "nosuch"}, `kdefer run: no module "nosuch"`, "see 'kdefer modules'"},
		{[]string{"run", "sed1", "--exec", "nosuch /dev/x"}, `kdefer run: --exec: no program "nosuch"`, "see 'kdefer modules'"},
		{[]string{"modules", "extra"}, `kdefer modules: takes no arguments (got "extra")`, "see 'kdefer help modules'"},
		{[]string{"version", "a", "b"}, `kdefer version: takes no arguments (got "a b")`, "see 'kdefer help version'"},
		{[]string{"frobnicate"}, `kdefer: unknown command "frobnicate"`, "see 'kdefer help'"},
		{[]string{"rnu"}, `kdefer: unknown command "rnu" (did you mean "run"?)`, "see 'kdefer help'"},
		{[]string{"help", "frobnicate"}, `kdefer help: unknown command "frobnicate"`, "see 'kdefer help'"},
		{[]string{"--bogus"}, "kdefer: unknown flag: --bogus", "see 'kdefer help'"},
	} {
		out, errs, code := kdefer(t, tc.args...)
		if code != 2 || out != "" || errs != tc.line+"\n"+tc.hint+"\n" {
			t.Errorf("kdefer %q: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and:\n%s\n%s", tc.args, code, out, errs, tc.line, tc.hint)
		}
	}
}

func TestFlagValueErrorsShareOneStyle(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		value string
		want  string
	}{
		{"--hz", "0", "want 100, 250, 300 or 1000"},
		{"--hz", "7", "want 100, 250, 300 or 1000"},
		{"--hz", "-250", "want 100, 250, 300 or 1000"},
		{"--hz", "abc", "want 100, 250, 300 or 1000"},
		{"--cpus", "0", "want 1..64"},
		{"--cpus", "65", "want 1..64"},
		{"--for", "10", "want a duration with a unit: ns, us, ms, s, m or h, as in 500ms, 2s or 1m30s (0 for no limit)"},
		{"--for", "2 s", "want a duration with a unit: ns, us, ms, s, m or h, as in 500ms, 2s or 1m30s (0 for no limit)"},
		{"--for", "-1s", "want a duration that is not negative"},
		{"--exec", "", `empty command: want "APP [ARGS]", as 'kdefer modules' lists them`},
		{"--exec", "  ", `empty command: want "APP [ARGS]", as 'kdefer modules' lists them`},
		{"--exec", "''", `empty command: want "APP [ARGS]", as 'kdefer modules' lists them`},
		{"--exec", "userapp_sed1 'x", "unterminated '"},
	} {
		_, errs, code := kdefer(t, "run", "sed1", tc.flag, tc.value, "--virtual")
		want := "kdefer run: invalid argument \"" + tc.value + "\" for \"" + tc.flag + "\" flag: " + tc.want + "\nsee 'kdefer help run'\n"
		if code != 2 || errs != want {
			t.Errorf("%s %q: exit %d, stderr:\n%s\nwant:\n%s", tc.flag, tc.value, code, errs, want)
		}
	}
}

// TestForZeroMeansNoLimitInBothTimeModes: --for 0 keeps the module until
// the run is interrupted; in virtual time a kernel with nothing left to
// do ends it too (its clock can never move again), not at the 10 s that
// a virtual run without --for lasts.
func TestForZeroMeansNoLimitInBothTimeModes(t *testing.T) {
	out, errs, code := kdefer(t, "run", "timer_simple", "--virtual", "--for", "0", "--cpus", "2")
	if code != 0 || errs != "" || !strings.HasSuffix(out, "[    1.344000] timer_simple:timer_simple_exit(): removed\n") {
		t.Errorf("virtual: exit %d, stderr %q, want the unload after the last ding:\n%s", code, errs, out)
	}
	// A periodic timer never idles: only the interrupt ends the run.
	out, errs, code = interruptOn(t, "nseconds = 20", kernel.SIGINT, "run", "1-2-timer", "--virtual", "--for", "0", "--cpus", "2", "--no-timestamps")
	if code != 130 || errs != "" || !strings.HasSuffix(out, "[timer_handler] nseconds = 20\n[timer_exit] Exit module\n") {
		t.Errorf("virtual periodic: exit %d, stderr %q:\n%s", code, errs, out)
	}
	// Real time: until interrupted (here once init has said it is loaded).
	out, errs, code = interruptOn(t, "testmod:Init(): loaded", kernel.SIGINT, "run", "testmod", "--for", "0", "--cpus", "2", "--no-timestamps")
	if code != 130 || errs != "" || !strings.HasSuffix(out, "testmod:Exit(): unloaded\n") {
		t.Errorf("real: exit %d, stderr %q:\n%s", code, errs, out)
	}
}

func TestVirtualRunWithoutForLastsTenSeconds(t *testing.T) {
	out, _, code := kdefer(t, "run", "1-2-timer", "--virtual", "--cpus", "2")
	if code != 0 || !strings.HasSuffix(out, "[   10.000000] [timer_exit] Exit module\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestEveryStopSignalUnloadsAndExitsWith128PlusSignal: SIGINT, SIGTERM and
// SIGHUP end a run alike, with or without --exec.
func TestEveryStopSignalUnloadsAndExitsWith128PlusSignal(t *testing.T) {
	for _, sig := range []kernel.Signal{kernel.SIGINT, kernel.SIGTERM, kernel.SIGHUP} {
		out, errs, code := interruptOn(t, "nseconds = 2", sig, "run", "1-2-timer", "--virtual", "--for", "1h", "--cpus", "2", "--no-timestamps")
		if code != 128+int(sig) || errs != "" || !strings.HasSuffix(out, "[timer_exit] Exit module\n") {
			t.Errorf("%s without --exec: exit %d, stderr %q:\n%s", runner.SignalName(sig), code, errs, out)
		}
		out, errs, code = interruptOn(t, "msg after encrypt", sig, "run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--virtual", "--cpus", "2", "--no-timestamps")
		if code != 128+int(sig) || errs != "" || !strings.HasSuffix(out, "misc sed1_drv: unloading\n") {
			t.Errorf("%s with --exec: exit %d, stderr %q:\n%s", runner.SignalName(sig), code, errs, out)
		}
		// After the program has exited, while --for keeps the module.
		out, errs, code = interruptOn(t, "msg after decrypt", sig, "run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--for", "1h", "--virtual", "--cpus", "2", "--no-timestamps")
		if code != 128+int(sig) || errs != "" || !strings.HasSuffix(out, "misc sed1_drv: unloading\n") {
			t.Errorf("%s with --exec, program done: exit %d, stderr %q:\n%s", runner.SignalName(sig), code, errs, out)
		}
	}
}

func TestFirstSignalStopsTheRunWithTheSignalAsCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	rl := &relay{cancel: cancel, stderr: &bytes.Buffer{}, exit: func(int) { t.Error("exit at the first signal") }}
	done := make(chan struct{})
	go func() { rl.watch(sigs); close(done) }()
	sigs <- syscall.SIGTERM
	<-ctx.Done()
	close(sigs)
	<-done
	var in *runner.Interrupted
	if !errors.As(context.Cause(ctx), &in) || in.Sig != kernel.SIGTERM {
		t.Errorf("cause %v, want SIGTERM", context.Cause(ctx))
	}
}

// TestSecondSignalSaysWhetherTheModuleWasUnloaded: the second signal
// quits at once, with 128+signal, and tells the truth about the module.
func TestSecondSignalSaysWhetherTheModuleWasUnloaded(t *testing.T) {
	second := func(r *runner.Runner, sig syscall.Signal) (string, int) {
		var errb bytes.Buffer
		codes := make(chan int, 1)
		_, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		rl := &relay{cancel: cancel, stderr: &errb, exit: func(c int) { codes <- c }}
		rl.setActive(r)
		sigs := make(chan os.Signal, 2)
		sigs <- syscall.SIGINT
		sigs <- sig
		rl.watch(sigs) // returns after exit
		return errb.String(), <-codes
	}
	msg, code := second(nil, syscall.SIGINT)
	if msg != "kdefer: second SIGINT: quitting\n" || code != 130 {
		t.Errorf("no run: %q, exit %d", msg, code)
	}

	// Loaded: a real-time run with no limit, stopped afterwards.
	r, err := runner.New(runner.Config{Module: "testmod", CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	msg, code = second(r, syscall.SIGTERM)
	if msg != "kdefer: second SIGTERM: quitting without unloading testmod\n" || code != 143 {
		t.Errorf("loaded: %q, exit %d", msg, code)
	}
	r.Stop(nil)
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	msg, code = second(r, syscall.SIGHUP)
	if msg != "kdefer: second SIGHUP: quitting; testmod is not loaded\n" || code != 129 {
		t.Errorf("unloaded: %q, exit %d", msg, code)
	}

	// While init runs and while the exit function runs: the log is
	// written from inside them, and the second signal is handled there.
	msgs := map[string]string{}
	codes := map[string]int{}
	r, err = runner.New(runner.Config{Module: "delays_sleeps", CPUs: 2, Virtual: true,
		Log: writerFunc(func(p []byte) (int, error) {
			for _, on := range []string{"delays_sleeps: inserted", "delays_sleeps: removed"} {
				if _, done := msgs[on]; !done && bytes.Contains(p, []byte(on)) {
					msgs[on], codes[on] = second(r, syscall.SIGINT)
				}
			}
			return len(p), nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for on, want := range map[string]string{
		"delays_sleeps: inserted": "kdefer: second SIGINT: quitting without unloading delays_sleeps (its init had not returned)\n",
		"delays_sleeps: removed":  "kdefer: second SIGINT: quitting while delays_sleeps's exit function runs\n",
	} {
		if msgs[on] != want || codes[on] != 130 {
			t.Errorf("at %q: %q, exit %d; want %q", on, msgs[on], codes[on], want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// errFull fails every write, as /dev/full does.
type errFull struct{}

func (errFull) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

func TestLostOutputIsAnErrorExit(t *testing.T) {
	for _, args := range [][]string{
		{"run", "timer_simple", "--virtual", "--cpus", "2"},
		{"run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--virtual", "--cpus", "2"},
		{"run", "testmod", "--virtual", "--for", "0", "--proc"},
		{"modules"},
		{"version"},
		{"--version"},
		{"help", "run"},
		{"run", "--help"},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), args, errFull{}, &errb)
		if code != 1 || errb.String() != "kdefer: cannot write output: no space left on device\n" {
			t.Errorf("kdefer %q >/dev/full: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// TestLostOutputStopsTheRun: a real-time run with no limit would go on
// forever; the first failed write ends it, with the module unloaded.
func TestLostOutputStopsTheRun(t *testing.T) {
	var errb bytes.Buffer
	var writes int
	out := writerFunc(func(p []byte) (int, error) {
		writes++
		if writes > 5 {
			return 0, syscall.EBADF
		}
		return len(p), nil
	})
	code := run(context.Background(), []string{"run", "1-2-timer", "--for", "0", "--cpus", "2"}, out, &errb)
	if code != 1 || errb.String() != "kdefer: cannot write output: bad file descriptor\n" || writes != 6 {
		t.Errorf("exit %d, %d writes, stderr %q", code, writes, errb.String())
	}
}

func TestModulesShowsEachDefaultOnce(t *testing.T) {
	out, _, code := kdefer(t, "modules")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "(default ") {
			continue
		}
		n++
		if c := strings.Count(strings.ToLower(l), "default"); c != 1 {
			t.Errorf("%d defaults in %q", c, l)
		}
	}
	if n < 5 {
		t.Errorf("only %d parameter lines:\n%s", n, out)
	}
	for _, want := range []string{
		`    periodic:bool (default "Y", perm 0444) re-arm the timer every TIMER_TIMEOUT seconds (exercise 2; N: exercise 1, fire once)` + "\n",
		`    exp_ms:ulong (default "420", perm 0444) timer period in ms` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("modules lacks %q:\n%s", want, out)
		}
	}
}

func TestWithoutDefaultKeepsADifferingDefault(t *testing.T) {
	for _, tc := range []struct{ desc, def, want string }{
		{"period (default=420)", "420", "period"},
		{"flag (default: Y)", "Y", "flag"},
		{"flag (default=y)", "Y", "flag"},
		{"period (default=100)", "420", "period (default=100)"},
		{"no default here", "1", "no default here"},
		{"", "", ""},
	} {
		if got := withoutDefault(tc.desc, tc.def); got != tc.want {
			t.Errorf("withoutDefault(%q, %q) = %q, want %q", tc.desc, tc.def, got, tc.want)
		}
	}
}

func TestVersionCommandAndFlagAgree(t *testing.T) {
	a, _, ca := kdefer(t, "version")
	b, _, cb := kdefer(t, "--version")
	if ca != 0 || cb != 0 || a != b || !regexp.MustCompile(`^kdefer \d+\.\d+\.\d+ \(go.* .*/.*\)\n$`).MatchString(a) {
		t.Errorf("version %q (%d), --version %q (%d)", a, ca, b, cb)
	}
}

// TestEveryFlagSaysSomethingUseful: each flag's help is a phrase of its
// own, not empty and not just its name.
func TestEveryFlagSaysSomethingUseful(t *testing.T) {
	e := &env{stdout: &checkedWriter{w: &bytes.Buffer{}}, stderr: &bytes.Buffer{}}
	root := newRootCmd(e)
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	n := 0
	for _, c := range append(root.Commands(), root) {
		c.InitDefaultHelpFlag()
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			n++
			if len(f.Usage) < 12 || strings.TrimSpace(strings.Trim(f.Usage, "`")) == f.Name {
				t.Errorf("kdefer %s --%s: help %q", c.Name(), f.Name, f.Usage)
			}
		})
		if c.Short == "" {
			t.Errorf("kdefer %s has no short help", c.Name())
		}
	}
	if n < 10 {
		t.Errorf("only %d flags seen", n)
	}
}
