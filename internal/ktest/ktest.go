// Package ktest holds the helpers kdefer's tests share: booting a kernel
// that is shut down when the test ends, running code as a user task, and
// reading the log back.
package ktest

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// Boot boots a kernel for t (quiet; 2 CPUs unless cfg says otherwise) and
// shuts it down when the test ends, failing the test if that leaves tasks
// behind.
func Boot(t testing.TB, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	k, err := kernel.Boot(cfg)
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return k
}

// Virtual boots a quiet virtual-time kernel with cpus CPUs at hz (0: the
// defaults) for t.
func Virtual(t testing.TB, cpus int, hz int) *kernel.Kernel {
	t.Helper()
	return Boot(t, kernel.Config{Virtual: true, CPUs: cpus, HZ: hzOf(hz), Quiet: true})
}

// InTask runs fn as a user task named "test" and waits for it (driving a
// virtual kernel meanwhile).
func InTask(t testing.TB, k *kernel.Kernel, fn func(c *kernel.Ctx)) {
	t.Helper()
	if _, err := k.RunTask(context.Background(), "test", func(c *kernel.Ctx) int { fn(c); return 0 }); err != nil {
		t.Fatalf("RunTask: %v", err)
	}
}

// Run runs k for d (see kernel.Run), failing t on error.
func Run(t testing.TB, k *kernel.Kernel, d time.Duration) {
	t.Helper()
	if err := k.Run(context.Background(), d); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Lines returns the text of every log record, without timestamps.
func Lines(k *kernel.Kernel) []string {
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Text)
	}
	return out
}

// Text returns the log as text, one record a line, without timestamps.
func Text(k *kernel.Kernel) string {
	lines := Lines(k)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// Dmesg returns the log as dmesg prints it, timestamps included.
func Dmesg(k *kernel.Kernel) string {
	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(printk.FormatDmesg(r))
		b.WriteByte('\n')
	}
	return b.String()
}

// Shutdown shuts k down, failing t if tasks are left behind (for kernels a
// test boots itself rather than with Boot).
func Shutdown(t testing.TB, k *kernel.Kernel) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// RunAs runs fn in a new user task named comm and drives the (virtual)
// kernel until it is idle; the task must have finished by then. fn may
// call t.Errorf (not t.Fatal).
func RunAs(t testing.TB, k *kernel.Kernel, comm string, fn func(c *kernel.Ctx)) {
	t.Helper()
	tk, err := k.Spawn(comm, func(c *kernel.Ctx) int { fn(c); return 0 })
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if err := k.RunUntilIdle(context.Background()); err != nil {
		t.Fatalf("RunUntilIdle: %v", err)
	}
	select {
	case <-tk.Exited():
	default:
		t.Fatalf("task %s did not finish", comm)
	}
}

// Contains reports whether a log record contains s.
func Contains(k *kernel.Kernel, s string) bool {
	for _, l := range Lines(k) {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// OnCPU starts fn as a user task named comm bound to cpu.
func OnCPU(t testing.TB, k *kernel.Kernel, comm string, cpu int, fn func(c *kernel.Ctx)) *kernel.Task {
	t.Helper()
	tk, err := k.CreateTask(kernel.TaskOpts{Comm: comm, CPU: cpu}, func(c *kernel.Ctx) int { fn(c); return 0 })
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(tk)
	return tk
}

// Eventually polls cond until it holds, failing t after 10 s of real time.
// It is for real-time tests that wait for another goroutine, without
// asserting how long that takes.
func Eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// PingPong returns the functions of two tasks that hand a turn back and
// forth, rounds times each: set_current_state, test the turn, sleep with
// sleep (kernel.Schedule, kernel.ScheduleNoSpin) until the other passes it,
// then pass it and wake_up_process the other. tasks must hold both tasks
// before either runs (create them with kernel.CreateTask, then wake them).
func PingPong(k *kernel.Kernel, rounds int, sleep func(*kernel.Ctx), tasks *[2]*kernel.Task) [2]func(*kernel.Ctx) int {
	var turn atomic.Int32 // 0: the first task's turn, 1: the second's
	player := func(me int32) func(c *kernel.Ctx) int {
		return func(c *kernel.Ctx) int {
			for range rounds {
				for {
					kernel.SetCurrentState(c, kernel.TaskUninterruptible)
					if turn.Load() == me {
						break
					}
					sleep(c)
				}
				kernel.SetCurrentState(c, kernel.TaskRunning)
				turn.Store(1 - me)
				k.WakeUpProcess(tasks[1-me])
			}
			return 0
		}
	}
	return [2]func(*kernel.Ctx) int{player(0), player(1)}
}
