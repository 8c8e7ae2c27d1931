package gotrace_test

import (
	"bytes"
	"runtime/pprof"
	rtrace "runtime/trace"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/trace/gotrace"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func ding(*kernel.Ctx, *timer.Timer) {}

func TestRegionsAndTasksShowInTheExecutionTrace(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	detach := gotrace.Attach(k.Tracer(), gotrace.Options{Regions: true})
	defer detach()
	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Skipf("execution tracer busy: %v", err)
	}
	var tm timer.Timer
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		timer.Setup(c, &tm, ding, 0)
		timer.Mod(c, &tm, c.Jiffies()+3)
	})
	ktest.Run(t, k, 100_000_000)
	rtrace.Stop()
	for _, want := range []string{"softirq TIMER", "timer ding", "mod_timer ding"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("execution trace lacks %q", want)
		}
	}
}

func TestNothingIsAttachedUntilAttachAndAfterDetach(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	if k.Tracer().On(trace.SoftirqEntry) {
		t.Fatal("on before Attach")
	}
	detach := gotrace.Attach(k.Tracer(), gotrace.Options{Regions: true, Labels: true})
	if !k.Tracer().On(trace.SoftirqEntry) || !k.Tracer().On(trace.SchedSwitch) {
		t.Error("probes not attached")
	}
	detach()
	for _, e := range trace.Events() {
		if k.Tracer().On(e) {
			t.Errorf("%v still on after detach", e)
		}
	}
}

func TestTaskGoroutinesCarryPprofLabels(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	detach := gotrace.Attach(k.Tracer(), gotrace.Options{Labels: true})
	defer detach()
	var dump bytes.Buffer
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		pprof.Lookup("goroutine").WriteTo(&dump, 1)
	})
	if !strings.Contains(dump.String(), `"comm":"test"`) {
		t.Errorf("the task's goroutine is not labelled:\n%s", dump.String())
	}
}
