//go:build unix

package umh_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/umh"
)

const erestartsys = -int(kernel.ERESTARTSYS)

// helper returns the path of the helper program (this test binary), the
// start of the argv that selects mode, and the kernel's run_cmd()
// environment.
func helper(t *testing.T, mode string) (exe string, argv, envp []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// GORACE: a -race build of the helper would sleep a second at exit.
	return exe, []string{exe, helperArg, mode}, []string{"HOME=/", "PATH=/sbin:/bin:/usr/sbin:/usr/bin", "GORACE=atexit_sleep_ms=0"}
}

// call runs call_usermodehelper in a user task of k and returns its value.
func call(t *testing.T, k *kernel.Kernel, path string, argv, envp []string, wait int) int {
	t.Helper()
	ret := 0
	ktest.InTask(t, k, func(c *kernel.Ctx) { ret = umh.CallUsermodehelper(c, path, argv, envp, wait) })
	return ret
}

// reaped waits until k's helpers are reaped, and checks that pid, if not
// 0, is gone (no zombie left).
func reaped(t *testing.T, k *kernel.Kernel, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := umh.WaitReaped(ctx, k); err != nil {
		t.Fatalf("WaitReaped: %v", err)
	}
	if pid != 0 {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("helper pid %d is still there (kill 0: %v): a zombie", pid, err)
		}
	}
}

// blocker makes the fifos of a "block" helper and returns its argv and a
// function that reads the helper's pid (waiting until it runs) and one that
// lets it exit.
func blocker(t *testing.T, prefix []string) (argv []string, pid func() int, release func()) {
	t.Helper()
	dir := t.TempDir()
	pidFifo, goFifo := filepath.Join(dir, "pid"), filepath.Join(dir, "go")
	for _, f := range []string{pidFifo, goFifo} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	pid = func() int {
		b, err := os.ReadFile(pidFifo)
		if err != nil {
			t.Errorf("read pid: %v", err)
			return 0
		}
		n, _ := strconv.Atoi(string(b))
		return n
	}
	release = func() {
		if err := os.WriteFile(goFifo, []byte("go"), 0); err != nil {
			t.Errorf("release: %v", err)
		}
	}
	return append(prefix, pidFifo, goFifo), pid, release
}

// TestWaitProcReturnsTheWaitStatusAsTheKernelEncodesIt: exit code in bits
// 8-15 (256 for exit 1), 0 for success.
func TestWaitProcReturnsTheWaitStatusAsTheKernelEncodesIt(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	exe, args, envp := helper(t, "exit")
	for _, tc := range []struct {
		code string
		want int
	}{{"0", 0}, {"1", 256}, {"3", 768}, {"255", 65280}} {
		if got := call(t, k, exe, append(args, tc.code), envp, umh.WaitProc); got != tc.want {
			t.Errorf("exit %s: call_usermodehelper(UMH_WAIT_PROC) = %d, want %d", tc.code, got, tc.want)
		}
	}
	reaped(t, k, 0)
}

// TestWaitProcTakesNoVirtualTime: the clock waits for the host process.
func TestWaitProcTakesNoVirtualTime(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "exit")
	var before, after uint64
	var state kernel.TaskState
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		before = c.Jiffies()
		umh.CallUsermodehelper(c, exe, append(args, "0"), envp, umh.WaitProc)
		after = c.Jiffies()
		state = c.Current().State()
	})
	if after != before || state != kernel.TaskRunning {
		t.Fatalf("jiffies moved by %d during the helper (state %v after)", after-before, state)
	}
}

// TestMissingProgramGivesENOENTExceptForNoWait: UMH_NO_WAIT gets no error
// back.
func TestMissingProgramGivesENOENTExceptForNoWait(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	missing := filepath.Join(t.TempDir(), "no-such-helper")
	for _, tc := range []struct {
		name string
		wait int
		want int
	}{
		{"UMH_NO_WAIT", umh.NoWait, 0},
		{"UMH_WAIT_EXEC", umh.WaitExec, -int(kernel.ENOENT)},
		{"UMH_WAIT_PROC", umh.WaitProc, -int(kernel.ENOENT)},
		{"UMH_WAIT_PROC|UMH_KILLABLE", umh.WaitProc | umh.Killable, -int(kernel.ENOENT)},
	} {
		if got := call(t, k, missing, []string{missing}, nil, tc.wait); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	ktest.Run(t, k, 0)
	reaped(t, k, 0)
}

// TestNonExecutableProgramGivesEACCES.
func TestNonExecutableProgramGivesEACCES(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	f := filepath.Join(t.TempDir(), "notexec")
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := call(t, k, f, []string{f}, nil, umh.WaitExec); got != -int(kernel.EACCES) {
		t.Fatalf("UMH_WAIT_EXEC of a file without x permission = %d, want %d (-EACCES)", got, -int(kernel.EACCES))
	}
}

// TestTheHelperGetsExactlyArgvAndEnvp: nothing of the host's environment
// leaks in; the working directory is /.
func TestTheHelperGetsExactlyArgvAndEnvp(t *testing.T) {
	t.Setenv("KDEFER_UMH_LEAK", "must-not-be-seen")
	k := ktest.Virtual(t, 1, 1000)
	exe, _, envp := helper(t, "env")
	out := filepath.Join(t.TempDir(), "env.txt")
	argv := []string{"my-helper-argv0", helperArg, "env", out}
	if got := call(t, k, exe, argv, envp, umh.WaitProc); got != 0 {
		t.Fatalf("call_usermodehelper = %d, want 0", got)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `argv=["my-helper-argv0" "umh-helper" "env" "` + out + `"]` + "\ncwd=/\n"
	for _, e := range envp {
		want += "env=" + e + "\n"
	}
	if string(b) != want {
		t.Fatalf("the helper saw:\n%s\nwant:\n%s", b, want)
	}
}

// TestANilEnvpGivesTheHelperAnEmptyEnvironment: os/exec would pass the
// host's environment for a nil Env.
func TestANilEnvpGivesTheHelperAnEmptyEnvironment(t *testing.T) {
	t.Setenv("KDEFER_UMH_LEAK", "must-not-be-seen")
	k := ktest.Virtual(t, 1, 1000)
	exe, args, _ := helper(t, "env")
	out := filepath.Join(t.TempDir(), "env.txt")
	if got := call(t, k, exe, append(args, out), nil, umh.WaitProc); got != 0 {
		t.Fatalf("call_usermodehelper = %d, want 0", got)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "env=") {
		t.Fatalf("the helper had an environment:\n%s", b)
	}
}

// TestWaitExecReturnsOnceTheProgramRunsNotWhenItEnds.
func TestWaitExecReturnsOnceTheProgramRunsNotWhenItEnds(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "block")
	argv, pid, release := blocker(t, args)
	pidc := make(chan int, 1)
	go func() { pidc <- pid() }()
	ret := call(t, k, exe, argv, envp, umh.WaitExec)
	p := <-pidc
	if ret != 0 || umh.Running(k) != 1 {
		t.Fatalf("UMH_WAIT_EXEC = %d with %d helpers running, want 0 with the helper still running", ret, umh.Running(k))
	}
	release()
	reaped(t, k, p)
}

// TestNoWaitReturnsAtOnceAndTheHelperStillRuns.
func TestNoWaitReturnsAtOnceAndTheHelperStillRuns(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "env")
	out := filepath.Join(t.TempDir(), "env.txt")
	if got := call(t, k, exe, append(args, out), envp, umh.NoWait); got != 0 {
		t.Fatalf("UMH_NO_WAIT = %d, want 0", got)
	}
	ktest.Run(t, k, 0) // let khelper start it
	reaped(t, k, 0)
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the UMH_NO_WAIT helper did not run: %v", err)
	}
}

// TestAHelperKilledMidRunReturnsItsSignalAndIsReaped: the wait status of
// a process killed by SIGKILL is 9.
func TestAHelperKilledMidRunReturnsItsSignalAndIsReaped(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "block")
	argv, pid, _ := blocker(t, args)
	pidc := make(chan int, 1)
	go func() {
		p := pid()
		_ = syscall.Kill(p, syscall.SIGKILL)
		pidc <- p
	}()
	ret := call(t, k, exe, argv, envp, umh.WaitProc)
	p := <-pidc
	if ret != int(syscall.SIGKILL) {
		t.Fatalf("UMH_WAIT_PROC of a helper killed by SIGKILL = %d, want %d", ret, syscall.SIGKILL)
	}
	if err := syscall.Kill(p, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the killed helper %d was not reaped when call_usermodehelper returned (kill 0: %v)", p, err)
	}
	// And a helper that kills itself.
	exe, args, envp = helper(t, "killself")
	if ret := call(t, k, exe, args, envp, umh.WaitProc); ret != int(syscall.SIGKILL) {
		t.Fatalf("UMH_WAIT_PROC of a helper that killed itself = %d, want %d", ret, syscall.SIGKILL)
	}
	reaped(t, k, 0)
}

// TestAKillableCallerKilledMidRunReturnsERESTARTSYSAndTheHelperIsReaped:
// with UMH_KILLABLE a fatal signal ends the caller's wait; the helper runs
// on, as in the kernel, and is reaped when it ends.
func TestAKillableCallerKilledMidRunReturnsERESTARTSYSAndTheHelperIsReaped(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "block")
	argv, pid, release := blocker(t, args)
	var caller atomic.Pointer[kernel.Task]
	var stateAfterKill atomic.Uint32
	pidc := make(chan int, 1)
	go func() {
		p := pid()
		k.Inject(func() {
			t := caller.Load()
			k.SendSignal(t, kernel.SIGKILL)
			stateAfterKill.Store(uint32(t.State()))
		})
		pidc <- p
	}()
	ret := 0
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		caller.Store(c.Current())
		ret = umh.CallUsermodehelper(c, exe, argv, envp, umh.WaitProc|umh.Killable)
	})
	p := <-pidc
	if ret != erestartsys || kernel.TaskState(stateAfterKill.Load()) != kernel.TaskRunning {
		t.Fatalf("killed UMH_KILLABLE caller: %d, state after the kill %v; want %d, TASK_RUNNING", ret, kernel.TaskState(stateAfterKill.Load()), erestartsys)
	}
	if umh.Running(k) != 1 {
		t.Fatalf("%d helpers running, want the helper still running", umh.Running(k))
	}
	release()
	ktest.Run(t, k, 0) // the kernel waits for the held helper
	reaped(t, k, p)
}

// TestAFatalSignalDoesNotEndANonKillableWait: without UMH_KILLABLE the
// caller sleeps in TASK_UNINTERRUPTIBLE until the helper ends.
func TestAFatalSignalDoesNotEndANonKillableWait(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "block")
	argv, pid, release := blocker(t, args)
	var caller atomic.Pointer[kernel.Task]
	var stateAfterKill atomic.Uint32
	go func() {
		pid()
		done := make(chan struct{})
		k.Inject(func() {
			t := caller.Load()
			k.SendSignal(t, kernel.SIGKILL)
			stateAfterKill.Store(uint32(t.State()))
			close(done)
		})
		<-done
		release()
	}()
	ret := -1
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		caller.Store(c.Current())
		ret = umh.CallUsermodehelper(c, exe, argv, envp, umh.WaitProc)
	})
	if ret != 0 || kernel.TaskState(stateAfterKill.Load()) != kernel.TaskUninterruptible {
		t.Fatalf("non-killable caller: %d, state after SIGKILL %v; want 0, TASK_UNINTERRUPTIBLE", ret, kernel.TaskState(stateAfterKill.Load()))
	}
	reaped(t, k, 0)
}

// TestWaitingModesInAtomicContextGetTheMightSleepReport: the helper still
// runs (as UMH_NO_WAIT) and the caller gets -EAGAIN.
func TestWaitingModesInAtomicContextGetTheMightSleepReport(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "env")
	out := filepath.Join(t.TempDir(), "env.txt")
	ret := 0
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.PreemptDisable(c)
		ret = umh.CallUsermodehelper(c, exe, append(args, out), envp, umh.WaitProc)
		kernel.PreemptEnable(c)
	})
	ktest.Run(t, k, 0)
	reaped(t, k, 0)
	if ret != -int(kernel.EAGAIN) {
		t.Errorf("UMH_WAIT_PROC with preemption disabled = %d, want %d", ret, -int(kernel.EAGAIN))
	}
	if !ktest.Contains(k, "BUG: sleeping function called from invalid context at umh/umh_test.go:") {
		t.Errorf("no might_sleep report naming the caller:\n%s", ktest.Text(k))
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("the helper did not run: %v", err)
	}
}

// TestNoWaitFromATimerCallbackIsFine: UMH_NO_WAIT is safe from interrupt
// context.
func TestNoWaitFromATimerCallbackIsFine(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "env")
	out := filepath.Join(t.TempDir(), "env.txt")
	ret := -1
	var tm timer.Timer
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, func(c *kernel.Ctx, _ *timer.Timer) {
			ret = umh.CallUsermodehelper(c, exe, append(args, out), envp, umh.NoWait)
		}, 0)
		timer.Mod(c, &tm, c.Jiffies()+1)
	})
	ktest.Run(t, k, 0)
	reaped(t, k, 0)
	if ret != 0 || k.Warnings() != 0 {
		t.Fatalf("UMH_NO_WAIT from a timer = %d with %d warnings:\n%s", ret, k.Warnings(), ktest.Text(k))
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the helper did not run: %v", err)
	}
}

// TestAnEmptyPathIsANoOp: STATIC_USERMODEHELPER_PATH="" semantics.
func TestAnEmptyPathIsANoOp(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	if got := call(t, k, "", nil, nil, umh.WaitProc); got != 0 || umh.Running(k) != 0 {
		t.Fatalf("empty path: %d, %d running; want 0, 0", got, umh.Running(k))
	}
}

// TestTheHelperIsStartedByTheKhelperKernelThread.
func TestTheHelperIsStartedByTheKhelperKernelThread(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	exe, args, envp := helper(t, "exit")
	call(t, k, exe, append(args, "0"), envp, umh.WaitExec)
	var kh *kernel.Task
	for _, tk := range k.Tasks() {
		if tk.Comm() == "khelper" {
			kh = tk
		}
	}
	if kh == nil || !kh.IsKthread() || kh.Parent().PID() != 2 {
		t.Fatalf("no khelper kernel thread (child of kthreadd) in %v", k.Tasks())
	}
	reaped(t, k, 0)
}

// TestShutdownKillsAndReapsTheHelpersStillRunning.
func TestShutdownKillsAndReapsTheHelpersStillRunning(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	exe, args, envp := helper(t, "block")
	argv, pid, _ := blocker(t, args)
	pidc := make(chan int, 1)
	go func() { pidc <- pid() }()
	if ret := call(t, k, exe, argv, envp, umh.WaitExec); ret != 0 {
		t.Fatalf("UMH_WAIT_EXEC = %d", ret)
	}
	p := <-pidc
	ktest.Shutdown(t, k)
	reaped(t, k, p)
}

// TestRealTimeKernelRunsHelpersInEveryMode: the same calls without
// virtual time (no timing asserted).
func TestRealTimeKernelRunsHelpersInEveryMode(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, Quiet: true})
	exe, args, envp := helper(t, "exit")
	var got []int
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for _, w := range []int{umh.NoWait, umh.WaitExec, umh.WaitProc, umh.WaitProc | umh.Killable} {
			got = append(got, umh.CallUsermodehelper(c, exe, append(args, "2"), envp, w))
		}
	})
	reaped(t, k, 0)
	if fmtInts(got) != "0 0 512 512" {
		t.Fatalf("returns %v, want [0 0 512 512]", got)
	}
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}

// TestShutdownEndsAWaitForARunningHelper: the caller's wait ends, the
// helper is killed and reaped (real time, under -race for the hand-over of
// the helper's status).
func TestShutdownEndsAWaitForARunningHelper(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	exe, args, envp := helper(t, "block")
	argv, pid, _ := blocker(t, args)
	var ret atomic.Int64
	caller, err := k.Spawn("caller", func(c *kernel.Ctx) int {
		ret.Store(int64(umh.CallUsermodehelper(c, exe, argv, envp, umh.WaitProc)))
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	p := pid()
	ktest.Shutdown(t, k)
	<-caller.Exited()
	if r := ret.Load(); r != -int64(kernel.EBUSY) && r != int64(syscall.SIGKILL) {
		t.Fatalf("the caller's wait ended with %d, want -EBUSY (the shutdown) or 9 (the helper killed)", r)
	}
	reaped(t, k, p)
}
