package console_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/console"
	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules"
	"github.com/kdefer/kdefer/printk"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// fakeRun is the run a bare kernel's shell acts on: it records what the
// commands ask of it.
type fakeRun struct {
	k       *kernel.Kernel
	stopped []error
	started [][]string
}

func (f *fakeRun) Module() string   { return "testmod" }
func (f *fakeRun) Stop(cause error) { f.stopped = append(f.stopped, cause) }
func (f *fakeRun) StartApp(argv []string, exited func(*kernel.Task, int)) (*kernel.Task, error) {
	if argv[0] != "userapp_sed1" {
		return nil, runner.ErrUnknownApp
	}
	f.started = append(f.started, argv)
	t, err := f.k.Spawn(argv[0], func(*kernel.Ctx) int { return 3 })
	if err != nil {
		return nil, err
	}
	f.k.OnTaskExit(func(x *kernel.Task) {
		if x == t {
			exited(t, t.ExitCode())
		}
	})
	return t, nil
}

// machine is a virtual kernel with testmod loaded and one task in each of
// the states ps shows, and a shell on it.
type machine struct {
	k        *kernel.Kernel
	run      *fakeRun
	sh       *console.Shell
	out, err bytes.Buffer

	kt, app *kernel.Task // a kthread that allows SIGINT and SIGQUIT, a user task
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	m := &machine{k: ktest.Virtual(t, 2, 0)}
	k := m.k
	ld := module.Loader(k, modules.Registry())
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "testmod"); err != nil {
			t.Fatal(err)
		}
	})
	kthread := func(comm string, cpu int, fn func(c *kernel.Ctx) int) *kernel.Task {
		tk, err := k.CreateTask(kernel.TaskOpts{Comm: comm, Kthread: true, CPU: cpu}, fn)
		if err != nil {
			t.Fatal(err)
		}
		k.WakeUpProcess(tk)
		return tk
	}
	// kt1's thread: sleeps until SIGINT or SIGQUIT.
	m.kt = kthread("mykt", 1, func(c *kernel.Ctx) int {
		kernel.AllowSignal(c, kernel.SIGINT)
		kernel.AllowSignal(c, kernel.SIGQUIT)
		for {
			kernel.SetCurrentState(c, kernel.TaskInterruptible)
			if c.SignalPending() || c.KthreadShouldStop() {
				break
			}
			kernel.Schedule(c)
		}
		kernel.SetCurrentState(c, kernel.TaskRunning)
		kernel.Printk(c, printk.LevelInfo, "mykt: signalled, exiting\n")
		return 0
	})
	kthread("kt_msleep", 0, func(c *kernel.Ctx) int { // D
		for !c.KthreadShouldStop() {
			delay.Msleep(c, 1000)
		}
		return 0
	})
	kthread("kt_idle", 0, func(c *kernel.Ctx) int { // I
		for !c.KthreadShouldStop() {
			kernel.SetCurrentState(c, kernel.TaskIdle)
			kernel.Schedule(c)
		}
		return 0
	})
	var err error
	m.app, err = k.Spawn("app", func(c *kernel.Ctx) int { // S, until a signal
		for !c.SignalPending() {
			kernel.SetCurrentState(c, kernel.TaskInterruptible)
			kernel.Schedule(c)
		}
		kernel.Printk(c, printk.LevelInfo, "app: got a signal\n")
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	ktest.Run(t, k, 10*time.Millisecond)
	m.run = &fakeRun{k: k}
	m.sh = console.New(k, m.run, console.Options{Out: &m.out, Err: &m.err})
	return m
}

// exec runs one line (as the driver, between two runs of the kernel),
// lets the kernel run a step, and returns the reply and the error lines.
func (m *machine) exec(t *testing.T, line string) (out, errs string, quit bool) {
	t.Helper()
	m.out.Reset()
	m.err.Reset()
	quit = m.sh.Exec(line).Quit
	ktest.Run(t, m.k, time.Millisecond)
	return m.out.String(), m.err.String(), quit
}

// noChange runs a malformed line: one error line, no reply, nothing
// changed (the task list and the log stay as they were).
func (m *machine) noChange(t *testing.T, line, wantErr string) {
	t.Helper()
	before, logBefore := console.PS(m.k), m.k.Log().NextSeq()
	out, errs, quit := m.exec(t, line)
	if out != "" || quit || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, wantErr) {
		t.Errorf("%q: out %q, errors %q, quit %v; want one error line with %q", line, out, errs, quit, wantErr)
	}
	if after := console.PS(m.k); after != before || m.k.Log().NextSeq() != logBefore {
		t.Errorf("%q changed the kernel:\n%s\n---\n%s", line, before, after)
	}
	if len(m.run.stopped) > 0 || len(m.run.started) > 0 {
		t.Errorf("%q: stopped %v, started %v", line, m.run.stopped, m.run.started)
	}
}

func TestPsListsEveryTaskWithItsStateAndCPU(t *testing.T) {
	m := newMachine(t)
	out, errs, _ := m.exec(t, "ps")
	if errs != "" {
		t.Fatal(errs)
	}
	golden.Check(t, "testdata/ps.golden", out)
	if again, _, _ := m.exec(t, "ps -e"); again != out {
		t.Errorf("ps -e differs from ps:\n%s", again)
	}
}

func TestKillDeliversByNameAndNumberUnderTheKernelsRules(t *testing.T) {
	m := newMachine(t)
	pid := itoa(m.kt.PID())
	// SIGKILL and SIGTERM are not allowed: the kernel thread ignores them.
	for _, line := range []string{"kill -9 " + pid, "kill " + pid, "kill -s KILL " + pid, "kill -0 " + pid} {
		if out, errs, _ := m.exec(t, line); out != "" || errs != "" {
			t.Errorf("%q: out %q, errors %q", line, out, errs)
		}
		if m.kt.HasExited() || m.kt.State() != kernel.TaskInterruptible {
			t.Fatalf("%q woke the kernel thread: %v", line, m.kt.State())
		}
	}
	// kill -2 (SIGINT, allowed) ends it.
	if _, errs, _ := m.exec(t, "kill -2 "+pid); errs != "" || !m.kt.HasExited() {
		t.Fatalf("kill -2: errors %q, exited %v", errs, m.kt.HasExited())
	}
	// The user task has a handler for everything: the default SIGTERM
	// interrupts its sleep.
	if _, errs, _ := m.exec(t, "kill "+itoa(m.app.PID())); errs != "" || !m.app.HasExited() {
		t.Fatalf("kill: errors %q, exited %v", errs, m.app.HasExited())
	}
	if !ktest.Contains(m.k, "mykt: signalled, exiting") || !ktest.Contains(m.k, "app: got a signal") {
		t.Errorf("log:\n%s", ktest.Dmesg(m.k))
	}
	// Gone: reported, one line per pid.
	if _, errs, _ := m.exec(t, "kill -INT "+pid+" 999"); errs != "kill: ("+pid+") - No such process\nkill: (999) - No such process\n" {
		t.Errorf("errors %q", errs)
	}
	// init ignores every signal.
	if _, errs, _ := m.exec(t, "kill -KILL 1"); errs != "" || m.k.InitTask().State() != kernel.TaskInterruptible {
		t.Errorf("kill -KILL 1: %q, init %v", errs, m.k.InitTask().State())
	}
}

func TestKillSignalSpellings(t *testing.T) {
	for _, spec := range []string{"-2", "-INT", "-SIGINT", "-sigint", "-Int", "-s INT", "-s 2", "--signal SIGINT"} {
		m := newMachine(t)
		if _, errs, _ := m.exec(t, "kill "+spec+" "+itoa(m.kt.PID())); errs != "" || !m.kt.HasExited() {
			t.Errorf("kill %s: errors %q, kthread exited %v", spec, errs, m.kt.HasExited())
		}
	}
	m := newMachine(t)
	if _, errs, _ := m.exec(t, "kill -QUIT -- "+itoa(m.kt.PID())); errs != "" || !m.kt.HasExited() {
		t.Errorf("kill -QUIT --: errors %q", errs)
	}
	out, _, _ := m.exec(t, "kill -l")
	if !strings.HasPrefix(out, "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM ") || !strings.HasSuffix(out, " PWR SYS\n") {
		t.Errorf("kill -l: %q", out)
	}
	for sig, name := range map[kernel.Signal]string{2: "SIGINT", 29: "SIGPOLL", 34: "SIGRTMIN", 36: "SIGRTMIN+2", 64: "SIGRTMAX", 0: "0"} {
		if got := console.SignalName(sig); got != name {
			t.Errorf("SignalName(%d) = %q, want %q", sig, got, name)
		}
	}
}

func TestMalformedCommandsChangeNothing(t *testing.T) {
	m := newMachine(t)
	pid := itoa(m.kt.PID())
	for _, tc := range []struct{ line, err string }{
		{"frobnicate", "kdefer: frobnicate: command not found"},
		{"ps 'unterminated", "kdefer: syntax error: unterminated '"},
		{"ps aux", `ps: unsupported option "aux"`},
		{"kill", "kill: usage: kill [-SIGNAL | -s SIGNAL] PID... | -l"},
		{"kill -INT", "kill: usage:"},
		{"kill -FOO " + pid, "kill: FOO: invalid signal specification"},
		{"kill -65 " + pid, "kill: 65: invalid signal specification"},
		{"kill -s", "kill: -s: a signal name or number is required"},
		{"kill -INT " + pid + " abc", "kill: abc: arguments must be process IDs"},
		{"kill -INT 0", "kill: 0: process groups are not supported"},
		{"kill -INT -- -" + pid, "process groups are not supported"},
		{"kill -l 2", "kill: usage: kill -l"},
		{"dmesg -C", `dmesg: unsupported option "-C"`},
		{"cat", "cat: usage: cat FILE..."},
		{"ls /proc /sys", "ls: usage: ls [DIR]"},
		{"lsmod -v", "lsmod: usage: lsmod"},
		{"exec", "exec: usage: exec APP [ARG...]"},
		{"exec nosuch arg", "exec: nosuch: no such program"},
		{"rmmod sed1_drv", "rmmod: ERROR: Module sed1_drv is not currently loaded"},
		{"rmmod -f testmod", "rmmod: usage: rmmod [MODULE]"},
		{"rmmod testmod testmod", "rmmod: usage"},
		{"quit now", "quit: takes no arguments"},
		{"help nosuch", `help: no command "nosuch"`},
		{"sleep", "sleep: usage: sleep DURATION"},
		{"sleep 1 2", "sleep: usage"},
		{"sleep x", "sleep: invalid time interval 'x'"},
		{"sleep 0", "sleep: '0': want more than 0"},
		{"sleep -1", "sleep: '-1': want more than 0"},
		{"sleep 2d", "sleep: '2d': want more than 0 and at most 24h0m0s"},
		{"sleep 1e300", "at most 24h0m0s"},
	} {
		m.noChange(t, tc.line, tc.err)
	}
	if m.kt.HasExited() {
		t.Fatal("a malformed kill signalled the kernel thread")
	}
	// Blank lines and comments do nothing, silently.
	for _, line := range []string{"", "   ", "# kill -INT " + pid, "\t"} {
		if out, errs, quit := m.exec(t, line); out != "" || errs != "" || quit {
			t.Errorf("%q: %q %q %v", line, out, errs, quit)
		}
	}
}

func TestDmesgPrintsTheLogWithOrWithoutTimestamps(t *testing.T) {
	m := newMachine(t)
	m.exec(t, "kill -INT "+itoa(m.kt.PID()))
	out, _, _ := m.exec(t, "dmesg")
	if want := "[    0.010000] mykt: signalled, exiting\n"; !strings.HasSuffix(out, want) || !strings.HasPrefix(out, "[    0.000000] testmod: loading out-of-tree module taints kernel.\n") {
		t.Errorf("dmesg:\n%s", out)
	}
	plain, _, _ := m.exec(t, "dmesg -t")
	if !strings.HasSuffix(plain, "\nmykt: signalled, exiting\n") || strings.Contains(plain, "[") {
		t.Errorf("dmesg -t:\n%s", plain)
	}
}

func TestCatShowsEveryView(t *testing.T) {
	m := newMachine(t)
	for _, file := range []string{"/proc/softirqs", "/proc/interrupts", "/proc/timer_list", "/proc/timer_wheel", "/proc/workqueues", "/proc/modules", "/proc/devices", "/proc/misc"} {
		out, errs, _ := m.exec(t, "cat "+file)
		if errs != "" || out == "" {
			t.Errorf("cat %s: out %q, errors %q", file, out, errs)
		}
	}
	out, _, _ := m.exec(t, "cat /proc/softirqs proc/interrupts /proc/modules")
	if !strings.Contains(out, "     TIMER:") || !strings.Contains(out, "LOC:") || !strings.HasSuffix(out, "testmod 0 0 - Live 0x0000000000000000 (O)\n") {
		t.Errorf("cat of three files:\n%s", out)
	}
	status, _, _ := m.exec(t, "cat /proc/"+itoa(m.kt.PID())+"/status")
	golden.Check(t, "testdata/status_mykt.golden", status)
	if out, _, _ := m.exec(t, "cat /proc/"+itoa(m.kt.PID())+"/comm"); out != "mykt\n" {
		t.Errorf("comm: %q", out)
	}
	if out, errs, _ := m.exec(t, "cat /sys/module/testmod/parameters/count /sys/module/testmod/parameters/name"); out != "3\nkdefer\n" || errs != "" {
		t.Errorf("parameters: %q %q", out, errs)
	}
	// The readable files are printed and the others reported, as cat does.
	out, errs, _ := m.exec(t, "cat /proc/nosuch /proc/modules /proc /proc/999/status /sys/module/testmod/parameters/fail_init")
	if out != "testmod 0 0 - Live 0x0000000000000000 (O)\n" || errs != "cat: /proc/nosuch: No such file or directory\n"+
		"cat: /proc: Is a directory\ncat: /proc/999/status: No such file or directory\n"+
		"cat: /sys/module/testmod/parameters/fail_init: No such file or directory\n" {
		t.Errorf("out %q\nerrors %q", out, errs)
	}
}

func TestCatAndLsShowExtraFiles(t *testing.T) {
	k := ktest.Virtual(t, 1, 0)
	var out bytes.Buffer
	sh := console.New(k, &fakeRun{k: k}, console.Options{Out: &out, Files: map[string]func(*kernel.Kernel) string{
		"/proc/kdefer/workqueues": func(*kernel.Kernel) string { return "pool 0\n" },
	}})
	sh.Exec("cat /proc/kdefer/workqueues")
	sh.Exec("ls /proc/kdefer")
	if out.String() != "pool 0\nworkqueues\n" {
		t.Errorf("%q", out.String())
	}
}

func TestLsListsTheFiles(t *testing.T) {
	m := newMachine(t)
	for line, want := range map[string]string{
		"ls":                                 "proc\nsys\n",
		"ls /sys/module":                     "testmod\n",
		"ls /sys/module/testmod":             "parameters\n",
		"ls /sys/module/testmod/parameters":  "count\ndelay_ms\nname\nverbose\n",
		"ls /proc/" + itoa(m.kt.PID()):       "comm\nstatus\n",
		"ls /proc/softirqs":                  "/proc/softirqs\n",
		"ls /sys/module/testmod/parameters/": "count\ndelay_ms\nname\nverbose\n",
	} {
		if out, errs, _ := m.exec(t, line); out != want || errs != "" {
			t.Errorf("%s: %q, errors %q; want %q", line, out, errs, want)
		}
	}
	out, _, _ := m.exec(t, "ls /proc")
	if !strings.HasPrefix(out, "1\n2\n3\n4\n") || !strings.HasSuffix(out, "devices\ninterrupts\nloadavg\nmisc\nmodules\nsoftirqs\ntimer_list\ntimer_wheel\nworkqueues\n") {
		t.Errorf("ls /proc:\n%s", out)
	}
	if _, errs, _ := m.exec(t, "ls /nosuch"); errs != "ls: cannot access '/nosuch': No such file or directory\n" {
		t.Errorf("%q", errs)
	}
}

func TestLsmodListsTheModule(t *testing.T) {
	m := newMachine(t)
	out, _, _ := m.exec(t, "lsmod")
	golden.Check(t, "testdata/lsmod.golden", out)
}

func TestExecStartsTheProgramAndReportsItsEnd(t *testing.T) {
	m := newMachine(t)
	m.out.Reset()
	m.sh.Exec("exec userapp_sed1 /dev/sed1_drv 'two words'")
	started := m.out.String()
	ktest.Run(t, m.k, time.Millisecond)
	if len(m.run.started) != 1 || strings.Join(m.run.started[0], "|") != "userapp_sed1|/dev/sed1_drv|two words" {
		t.Fatalf("started %q", m.run.started)
	}
	if want := "[10] userapp_sed1 /dev/sed1_drv two words started\n[10] userapp_sed1 exited with status 3\n"; m.out.String() != want {
		t.Errorf("reply %q (at once: %q), want %q", m.out.String(), started, want)
	}
}

func TestQuitEndsTheRun(t *testing.T) {
	for _, line := range []string{"quit", "exit"} {
		m := newMachine(t)
		if out, errs, quit := m.exec(t, line); !quit || out != "" || errs != "" || len(m.run.stopped) != 1 || !errors.Is(m.run.stopped[0], console.ErrQuit) {
			t.Errorf("%q: quit %v, out %q, errors %q, stopped %v", line, quit, out, errs, m.run.stopped)
		}
	}
}

// rmmod does not end the run: it asks the session to unload the module
// (which runner.Runner.Unload does, outside the kernel's driver) and the
// session goes on.
func TestRmmodAsksTheSessionToUnloadAndGoOn(t *testing.T) {
	for _, line := range []string{"rmmod", "rmmod testmod", "rmmod testmod"} {
		m := newMachine(t)
		m.out.Reset()
		m.err.Reset()
		act := m.sh.Exec(line)
		if act != (console.Action{Unload: true}) || m.out.String() != "" || m.err.String() != "" || len(m.run.stopped) != 0 {
			t.Errorf("%q: action %+v, out %q, errors %q, stopped %v", line, act, m.out.String(), m.err.String(), m.run.stopped)
		}
	}
}

func TestRmmodOfAnUnloadedModuleSaysItIsNotLoaded(t *testing.T) {
	m := newMachine(t)
	ld := module.Loader(m.k, nil)
	ktest.InTask(t, m.k, func(c *kernel.Ctx) {
		if err := ld.Rmmod(c, "testmod"); err != nil {
			t.Fatal(err)
		}
	})
	m.noChange(t, "rmmod", "rmmod: ERROR: Module testmod is not currently loaded")
	m.noChange(t, "rmmod testmod", "rmmod: ERROR: Module testmod is not currently loaded")
}

func TestHelpListsEveryCommand(t *testing.T) {
	m := newMachine(t)
	out, _, _ := m.exec(t, "help")
	for _, name := range []string{"ps", "kill", "dmesg", "cat", "ls", "lsmod", "exec", "rmmod", "quit", "help"} {
		if !strings.Contains(out, "\n  "+name) {
			t.Errorf("help lacks %s:\n%s", name, out)
		}
	}
	if out != console.Help() {
		t.Error("help differs from Help()")
	}
	if out, _, _ := m.exec(t, "help exit"); out != "quit\n  unload the module if it is still loaded, and end the run\n" {
		t.Errorf("help exit: %q", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSleepAsksTheSessionToLetTimePass(t *testing.T) {
	k := ktest.Virtual(t, 1, 0)
	sh := console.New(k, &fakeRun{k: k}, console.Options{})
	for arg, want := range map[string]time.Duration{
		"2": 2 * time.Second, "0.5": 500 * time.Millisecond, "3s": 3 * time.Second, "1.5m": 90 * time.Second,
		"1h": time.Hour, "1d": 24 * time.Hour, "500ms": 500 * time.Millisecond, "1m30s": 90 * time.Second, "250us": 250 * time.Microsecond,
	} {
		if got := sh.Exec("sleep " + arg); got != (console.Action{Sleep: want}) {
			t.Errorf("sleep %s: %+v, want %v", arg, got, want)
		}
	}
}
