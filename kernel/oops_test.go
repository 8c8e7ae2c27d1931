package kernel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// lockedBuffer is a bytes.Buffer safe for the kernel's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type node struct{ next *node }

// oopsInSoftirq makes a HI softirq handler dereference nil once, raised
// from a task, and returns once the task is gone.
func oopsInSoftirq(t *testing.T, k *kernel.Kernel) {
	t.Helper()
	k.OpenSoftirq(kernel.HISoftirq, func(c *kernel.Ctx) {
		var n *node
		_ = n.next // nil dereference
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.HISoftirq)
		kernel.LocalBHEnable(c)
	})
}

// TestOopsGoesToStderrWithoutALogSink: with the library's plain
// configuration (no Log, LogWriter or OnOops) an Oops is not only in the
// ring buffer: it is printed to stderr, stack included.
func TestOopsGoesToStderrWithoutALogSink(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true})
	var stderr lockedBuffer
	kernel.SetOopsStderr(k, &stderr)
	oopsInSoftirq(t, k)
	out := stderr.String()
	if !strings.Contains(out, "] Oops: handler panicked: runtime error: invalid memory address or nil pointer dereference\n") ||
		!strings.Contains(out, "Call Trace:") || !strings.Contains(out, "oops_test.go") {
		t.Errorf("stderr = %q", out)
	}
}

// TestOopsStaysInTheLogWithALogSink: with a sink configured the Oops goes
// there and nowhere else.
func TestOopsStaysInTheLogWithALogSink(t *testing.T) {
	var logged lockedBuffer
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, LogWriter: &logged})
	var stderr lockedBuffer
	kernel.SetOopsStderr(k, &stderr)
	oopsInSoftirq(t, k)
	if stderr.String() != "" {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
	if !strings.Contains(logged.String(), "Oops: handler panicked") {
		t.Errorf("log sink = %q", logged.String())
	}
}

var errSentinel = errors.New("sentinel")

// TestRunTaskOfAPanickingTaskReturnsTheOops: RunTask returns -EFAULT and an
// error that is an Oops (errors.Is ErrOops) wrapping the panic value, so
// that errors.Is and errors.As see through it, in both time modes.
func TestRunTaskOfAPanickingTaskReturnsTheOops(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		k := ktest.Boot(t, kernel.Config{CPUs: 1, Quiet: true, Virtual: virtual, OnOops: func(*kernel.Oops) {}})
		code, err := k.RunTask(context.Background(), "crash", func(*kernel.Ctx) int {
			panic(fmt.Errorf("driver: %w", errSentinel))
		})
		if code != -int(kernel.EFAULT) || !errors.Is(err, kernel.ErrOops) || !errors.Is(err, errSentinel) {
			t.Errorf("virtual=%t: RunTask = %d, %v; want -EFAULT and an Oops wrapping the sentinel", virtual, code, err)
		}
		var o *kernel.Oops
		if !errors.As(err, &o) || o.Context != "task" || !strings.HasPrefix(o.Task, "crash/") {
			t.Errorf("virtual=%t: Oops = %+v", virtual, o)
		}
		if err == nil || !strings.HasPrefix(err.Error(), "kernel: Oops: task crash/") {
			t.Errorf("virtual=%t: message = %q", virtual, err)
		}
		code, err = k.RunTask(context.Background(), "nilderef", func(*kernel.Ctx) int {
			var n *node
			return len(fmt.Sprint(n.next))
		})
		var re runtime.Error
		if code != -int(kernel.EFAULT) || !errors.As(err, &re) {
			t.Errorf("virtual=%t: nil dereference: RunTask = %d, %v; want a runtime.Error", virtual, code, err)
		}
		if code, err := k.RunTask(context.Background(), "fine", func(*kernel.Ctx) int { return 3 }); code != 3 || err != nil {
			t.Errorf("virtual=%t: a task after the Oopses: %d, %v", virtual, code, err)
		}
	}
}

// TestOnOopsHookSeesHandlerOopses: the hook gets every Oops with its panic
// value, context and report; nothing goes to stderr then.
func TestOnOopsHookSeesHandlerOopses(t *testing.T) {
	var got []*kernel.Oops
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, OnOops: func(o *kernel.Oops) { got = append(got, o) }})
	var stderr lockedBuffer
	kernel.SetOopsStderr(k, &stderr)
	oopsInSoftirq(t, k)
	if len(got) != 1 {
		t.Fatalf("hook called %d times, want 1", len(got))
	}
	o := got[0]
	var re runtime.Error
	if o.Context != "softirq" || o.CPU != 0 || !errors.As(o, &re) || !strings.HasPrefix(o.Report, "Oops: handler panicked: runtime error") {
		t.Errorf("Oops = %+v", o)
	}
	if stderr.String() != "" {
		t.Errorf("stderr = %q, want nothing (the hook is the sink)", stderr.String())
	}
}

// TestPanicOnOopsPanicsWithTheOops: panic_on_oops for tests: in virtual
// time the driver (Run, RunTask) panics with the *Oops after logging it.
func TestPanicOnOopsPanicsWithTheOops(t *testing.T) {
	var logged []string
	k := boot(t, kernel.Config{CPUs: 1, Quiet: true, PanicOnOops: true, Log: func(r printk.Record) { logged = append(logged, r.Text) }})
	defer func() {
		o, ok := recover().(*kernel.Oops)
		if !ok || !errors.Is(o, errSentinel) {
			t.Fatalf("recovered %v, want the *kernel.Oops", o)
		}
		if !has(logged, "Oops: task crash/") {
			t.Errorf("the Oops was not logged before the panic: %q", logged)
		}
	}()
	k.RunTask(context.Background(), "crash", func(*kernel.Ctx) int { panic(errSentinel) })
	t.Fatal("RunTask returned")
}
