package kt_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/kt"
	"github.com/kdefer/kdefer/procfs"
)

// oopses collects a kernel's Oopses (OnOops), so that none goes to stderr.
type oopses struct {
	mu   sync.Mutex
	list []*kernel.Oops
}

func (o *oopses) add(x *kernel.Oops) { o.mu.Lock(); o.list = append(o.list, x); o.mu.Unlock() }

func (o *oopses) get() []*kernel.Oops {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*kernel.Oops(nil), o.list...)
}

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader, *oopses) {
	o := &oopses{}
	k, ld := demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true, OnOops: o.add}, kt.Kt1, kt.Kt2)
	return k, ld, o
}

// load inserts name and returns its thread, asleep.
func load(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, name string) *kernel.Task {
	t.Helper()
	demotest.Insmod(t, k, ld, name)
	demotest.RunFor(t, k, 100*time.Millisecond)
	th := demotest.FindTask(k, kt.ThreadComm)
	if th == nil {
		t.Fatalf("no [%s] after insmod %s", kt.ThreadComm, name)
	}
	return th
}

func kill(t *testing.T, k *kernel.Kernel, th *kernel.Task, sig kernel.Signal) {
	t.Helper()
	demotest.Run(t, k, "kill", func(c *kernel.Ctx) int { k.SendSignal(th, sig); return 0 })
	demotest.RunFor(t, k, 100*time.Millisecond)
}

// dmesg is the log with the Go stack of an Oops cut out: the lines
// between " <TASK>" and " </TASK>" name kdefer's own source lines, which
// change with kdefer, not with the demo.
func dmesg(k *kernel.Kernel) string {
	var out []string
	skip := false
	for _, l := range strings.SplitAfter(demotest.Dmesg(k, 0), "\n") {
		text := l
		if i := strings.Index(l, "] "); i >= 0 {
			text = l[i+2:]
		}
		switch {
		case strings.TrimSpace(text) == "<TASK>":
			out = append(out, l, strings.Replace(l, text, " ...\n", 1))
			skip = true
			continue
		case strings.TrimSpace(text) == "</TASK>":
			skip = false
		case skip:
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// The seed's session: ps shows [mykt] sleeping, a child of kthreadd; kill
// -9 has no effect; kill -2 ends the thread; rmmod after that is clean.
func TestKt1KillNineDoesNothingKillTwoEndsIt(t *testing.T) {
	k, ld, o := boot(t)
	th := load(t, k, ld, kt.Kt1Name)
	if th.State() != kernel.TaskInterruptible || th.Parent() != k.Kthreadd() || !th.IsKthread() {
		t.Errorf("[mykt]: state %c, parent %v, kthread %v; want S, kthreadd, true", th.State().Letter(), th.Parent(), th.IsKthread())
	}
	kill(t, k, th, kernel.SIGKILL)
	if th.HasExited() || th.State() != kernel.TaskInterruptible {
		t.Errorf("kill -9 changed the thread: state %c", th.State().Letter())
	}
	kill(t, k, th, kernel.SIGINT)
	if !th.HasExited() || th.ExitCode() != 0 {
		t.Errorf("kill -2: exited %v with %d, want exited with 0", th.HasExited(), th.ExitCode())
	}
	demotest.Rmmod(t, k, ld, kt.Kt1Name)
	golden.Check(t, "testdata/kt1_kill.golden", dmesg(k))
	if len(o.get()) != 0 {
		t.Errorf("Oops: %v", o.get())
	}
}

func TestKt1ProcStatusOfTheKernelThread(t *testing.T) {
	k, ld, _ := boot(t)
	th := load(t, k, ld, kt.Kt1Name)
	st := procfs.TaskStatus(th)
	golden.Check(t, "testdata/kt1_status.golden", st)
	for _, w := range []string{"Name:\tmykt\n", "State:\tS (sleeping)\n", "PPid:\t2\n", "Kthread:\t1\n", "Threads:\t1\n", "voluntary_ctxt_switches:\t1\n"} {
		if !strings.Contains(st, w) {
			t.Errorf("/proc/%d/status lacks %q:\n%s", th.PID(), w, st)
		}
	}
	kill(t, k, th, kernel.SIGINT)
	demotest.Rmmod(t, k, ld, kt.Kt1Name)
}

// The book's warning made visible: kt1 unloaded while its thread sleeps,
// then the thread signalled — it runs again in the freed code and Oopses.
func TestKt1UnloadRaceOopsesWhenTheOrphanRunsAgain(t *testing.T) {
	k, ld, o := boot(t)
	th := load(t, k, ld, kt.Kt1Name)
	demotest.Rmmod(t, k, ld, kt.Kt1Name)
	if th.HasExited() || demotest.FindTask(k, kt.ThreadComm) != th {
		t.Fatalf("the thread did not outlive rmmod kt1")
	}
	if ld.Find(kt.Kt1Name) != nil {
		t.Fatalf("kt1 still loaded")
	}
	kill(t, k, th, kernel.SIGINT)
	golden.Check(t, "testdata/kt1_unload_race.golden", dmesg(k))

	if !th.HasExited() || th.ExitCode() != -int(kernel.EFAULT) {
		t.Errorf("orphan: exited %v with %d, want exited with -EFAULT", th.HasExited(), th.ExitCode())
	}
	oo := o.get()
	if len(oo) != 1 || th.Oops() != oo[0] {
		t.Fatalf("%d Oopses (task's %v), want the thread's one", len(oo), th.Oops())
	}
	var ue *kt.UnloadedCodeError
	if !errors.Is(oo[0], kernel.ErrOops) || !errors.Is(oo[0], kt.ErrUnloadedCode) || !errors.As(oo[0], &ue) || ue.Module != "kt1" || ue.Func != "mykt" {
		t.Errorf("Oops %v: want ErrOops and an UnloadedCodeError of kt1's mykt", oo[0])
	}
	if want := fmt.Sprintf("mykt/%d", th.PID()); oo[0].Task != want || oo[0].Context != "task" {
		t.Errorf("Oops in %s (%s), want %s (task)", oo[0].Task, oo[0].Context, want)
	}
	if k.Tainted()&kernel.TaintDie == 0 {
		t.Errorf("kernel not tainted D after the Oops")
	}
}

// A plain wake-up of the orphan (no signal) runs freed code just the same.
func TestKt1OrphanOopsesOnAnyWakeup(t *testing.T) {
	k, ld, o := boot(t)
	th := load(t, k, ld, kt.Kt1Name)
	demotest.Rmmod(t, k, ld, kt.Kt1Name)
	demotest.Run(t, k, "wake", func(c *kernel.Ctx) int { k.WakeUpProcess(th); return 0 })
	demotest.RunFor(t, k, 100*time.Millisecond)
	if len(o.get()) != 1 || !th.HasExited() {
		t.Errorf("%d Oopses, exited %v; want 1, true", len(o.get()), th.HasExited())
	}
}

// An orphan that nothing wakes stays asleep, and shutting the kernel down
// ends it quietly.
func TestKt1OrphanLeftAloneIsQuietAtShutdown(t *testing.T) {
	k, ld, o := boot(t)
	th := load(t, k, ld, kt.Kt1Name)
	demotest.Rmmod(t, k, ld, kt.Kt1Name)
	demotest.RunFor(t, k, time.Minute)
	if th.HasExited() || th.State() != kernel.TaskInterruptible {
		t.Errorf("orphan state %c, want S", th.State().Letter())
	}
	demotest.Shutdown(t, k)
	if len(o.get()) != 0 || k.Tainted()&kernel.TaintDie != 0 {
		t.Errorf("Oops at shutdown: %v", o.get())
	}
}

// kt2: the thread is stopped with kthread_stop at unload; nothing of the
// module runs after its exit.
func TestKt2StopsItsThreadAtUnload(t *testing.T) {
	k, ld, o := boot(t)
	th := load(t, k, ld, kt.Kt2Name)
	kill(t, k, th, kernel.SIGKILL) // ignored, as in kt1
	demotest.Rmmod(t, k, ld, kt.Kt2Name)
	golden.Check(t, "testdata/kt2_unload.golden", dmesg(k))
	if !th.HasExited() || th.ExitCode() != 0 {
		t.Errorf("after rmmod kt2: exited %v with %d, want exited with 0", th.HasExited(), th.ExitCode())
	}
	if demotest.FindTask(k, kt.ThreadComm) != nil || len(o.get()) != 0 || k.Warnings() != 0 {
		t.Errorf("after rmmod kt2: [mykt] left, or %d Oopses, %d warnings", len(o.get()), k.Warnings())
	}
}

// kt2 killed by SIGINT first: the reference it holds keeps kthread_stop
// safe, and it returns the thread's 0 at once.
func TestKt2UnloadAfterSigintIsClean(t *testing.T) {
	k, ld, o := boot(t)
	th := load(t, k, ld, kt.Kt2Name)
	kill(t, k, th, kernel.SIGINT)
	if !th.HasExited() {
		t.Fatalf("kill -2 did not end kt2's thread")
	}
	seq := k.Log().NextSeq()
	demotest.Rmmod(t, k, ld, kt.Kt2Name)
	got := demotest.Lines(k, seq)
	if len(got) != 3 || !strings.HasSuffix(got[1], " : kthread_stop() returned 0.") || !strings.HasSuffix(got[2], " : Module kt2 unloaded.") {
		t.Errorf("rmmod kt2 logged %q", got)
	}
	if len(o.get()) != 0 || k.Warnings() != 0 {
		t.Errorf("%d Oopses, %d warnings", len(o.get()), k.Warnings())
	}
}

func TestMsgLinesNameFunctionAndLine(t *testing.T) {
	k, ld, _ := boot(t)
	th := load(t, k, ld, kt.Kt1Name)
	for _, l := range demotest.Lines(k, 0)[1:] {
		fn, rest, ok := strings.Cut(l, ":")
		if !ok || (fn != "hello_init" && fn != "mykt") || !strings.Contains(rest, " : ") {
			t.Errorf("line %q is not MSG's func:line : text", l)
		}
	}
	kill(t, k, th, kernel.SIGINT)
	demotest.Rmmod(t, k, ld, kt.Kt1Name)
}
