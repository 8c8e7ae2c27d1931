package kernel_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// Real-time stress tests of races a concurrency audit found. They assert
// no timing; they fail (or -race reports) when the race is back.

func bootReal(t *testing.T, cpus int) *kernel.Kernel {
	t.Helper()
	return ktest.Boot(t, kernel.Config{CPUs: cpus, HZ: 1000, Quiet: true})
}

// TestSignalSentDuringFlushSignalsLeavesPendingAndContextInStep: a signal
// sent while the task flushes its signals is either flushed or left both
// pending and visible as the cancellation of the task's context.
func TestSignalSentDuringFlushSignalsLeavesPendingAndContextInStep(t *testing.T) {
	k := bootReal(t, 2)
	const n = 2000
	step, done := make(chan struct{}), make(chan struct{})
	var mismatches int
	tk, err := k.CreateTask(kernel.TaskOpts{Comm: "sig", CPU: 0}, func(c *kernel.Ctx) int {
		for range n {
			k.SendSignal(c.Current(), kernel.SIGUSR2)
			<-step
			kernel.FlushSignals(c) // races with the SIGUSR1 below
			done <- struct{}{}
			<-step
			if c.SignalPending() != (c.Err() != nil) {
				mismatches++
			}
			kernel.FlushSignals(c)
			if c.Err() != nil || c.SignalPending() {
				mismatches++
				return 1
			}
		}
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(tk)
	for range n {
		select {
		case step <- struct{}{}:
		case <-tk.Exited():
			t.Fatalf("task gave up: the flushed context stayed cancelled")
		}
		k.SendSignal(tk, kernel.SIGUSR1)
		<-done
		step <- struct{}{}
	}
	<-tk.Exited()
	if mismatches != 0 {
		t.Errorf("signal_pending and the context disagreed %d times in %d rounds", mismatches, n)
	}
}

// TestShutdownWhileTasksSpawnTasksIsClean: tasks creating tasks while the
// kernel shuts down neither race (-race) nor keep Shutdown waiting.
func TestShutdownWhileTasksSpawnTasksIsClean(t *testing.T) {
	for round := range 5 {
		k, err := kernel.Boot(kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{}, 2)
		for range 2 {
			if _, err := k.Spawn("spawner", func(c *kernel.Ctx) int {
				started <- struct{}{}
				for i := 0; ; i++ {
					var err error
					if i%2 == 0 {
						_, err = k.Spawn("child", func(*kernel.Ctx) int { return 0 })
					} else {
						var ch *kernel.Task
						if ch, err = k.CreateTask(kernel.TaskOpts{Comm: "kchild", Kthread: true, CPU: -1}, func(*kernel.Ctx) int { return 0 }); err == nil {
							k.WakeUpProcess(ch)
						}
					}
					if err != nil {
						return 0
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		<-started
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("round %d: Shutdown: %v", round, err)
		}
		cancel()
	}
}

// TestShutdownAgainWaitsForTheFirstOne: a second Shutdown (a retry after a
// timeout, or a concurrent one) returns once the kernel has stopped, not
// at once.
func TestShutdownAgainWaitsForTheFirstOne(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	release, started := make(chan struct{}), make(chan struct{})
	tk, err := k.Spawn("slow", func(*kernel.Ctx) int { close(started); <-release; return 0 })
	if err != nil {
		t.Fatal(err)
	}
	// A task that has not started yet would exit at once without running
	// (Shutdown skips it), and the kernel could then halt before the
	// second call: wait until it really runs.
	<-started
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := k.Shutdown(expired); err == nil {
		t.Fatal("Shutdown with a done context returned nil while a task runs")
	}
	if err := k.Shutdown(expired); err == nil {
		t.Fatal("second Shutdown returned nil while the task still runs")
	}
	close(release)
	<-tk.Exited()
	if err := k.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after the task exited: %v", err)
	}
}

// TestShutdownAfterHaltReturnsNilEvenWithADoneContext: once the kernel has
// halted, a later Shutdown reports success even when its own context is
// already done (both are ready; the halt wins).
func TestShutdownAfterHaltReturnsNilEvenWithADoneContext(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 200 {
		if err := k.Shutdown(expired); err != nil {
			t.Fatalf("call %d after the halt: %v", i, err)
		}
	}
}

// TestShutdownTimeoutNamesACPUStuckInAHandler: when what keeps Shutdown
// waiting is not a task but a CPU stuck in an interrupt handler (a clock
// event blocked on a Go channel), the error names that CPU's idle task
// instead of an empty list.
func TestShutdownTimeoutNamesACPUStuckInAHandler(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 1, HZ: 1000, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &stuckTick{release: make(chan struct{}), entered: make(chan struct{})}
	k.RegisterClockEvents(h)
	<-h.entered
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	err = k.Shutdown(expired)
	close(h.release)
	if err == nil {
		t.Fatal("Shutdown returned nil while an interrupt handler is stuck")
	}
	if !strings.Contains(err.Error(), "swapper/0/0") {
		t.Errorf("error does not name the stuck CPU's idle task: %v", err)
	}
	if err := k.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after the handler returned: %v", err)
	}
}

// stuckTick is a clock event due at once whose first interrupt blocks
// until released.
type stuckTick struct {
	once             sync.Once
	release, entered chan struct{}
	fired            atomic.Bool
}

func (s *stuckTick) NextEvent(int) int64 {
	if s.fired.Load() {
		return kernel.NoEvent
	}
	return 0
}

func (s *stuckTick) Tick(*kernel.Ctx) {
	s.fired.Store(true)
	s.once.Do(func() { close(s.entered); <-s.release })
}
