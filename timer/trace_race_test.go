package timer_test

import (
	"io"
	"sync"
	"testing"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/trace"
)

// TestTracingRealTimeTimersWhileReadingLosesNothingUncounted: tasks on two
// CPUs arm, re-arm, delete and expire timers and hrtimers in real time
// with every event on and small rings, while a reader drains the rings and
// prints reports. Each CPU's records come out in time order, and every
// record written is read, still in its ring, or counted lost. No timing is
// asserted.
func TestTracingRealTimeTimersWhileReadingLosesNothingUncounted(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Quiet: true, TraceEvents: "all", TraceBufferRecords: 256})
	tr := k.Tracer()
	const rounds = 2000
	var tasks []*kernel.Task
	for cpu := range 2 {
		tasks = append(tasks, ktest.OnCPU(t, k, "arm", cpu, func(c *kernel.Ctx) {
			var tm timer.Timer
			var hr hrtimer.HRTimer
			timer.Setup(c, &tm, func(*kernel.Ctx, *timer.Timer) {}, 0)
			hrtimer.Setup(&hr, func(*kernel.Ctx, *hrtimer.HRTimer) hrtimer.HRTimerRestart { return hrtimer.NoRestart },
				hrtimer.ClockMonotonic, hrtimer.ModeRel|hrtimer.ModeSoft)
			for i := range rounds {
				timer.Mod(c, &tm, c.Jiffies()+uint64(i%3))
				hrtimer.Start(c, &hr, int64(i%5)*1000, hrtimer.ModeRel|hrtimer.ModeSoft)
				if i%7 == 0 {
					timer.Delete(&tm)
					hrtimer.TryToCancel(&hr)
				}
			}
			timer.DeleteSync(c, &tm)
			hrtimer.Cancel(c, &hr)
		}))
	}
	var read, lost [2]uint64
	var lastTS [2]int64
	var lastSeq [2]uint64
	drain := func() {
		buf := make([]trace.Record, 64)
		for cpu := range 2 {
			for {
				n, l := tr.Read(cpu, buf)
				lost[cpu] += l
				for _, r := range buf[:n] {
					if int(r.CPU) != cpu || r.TS < lastTS[cpu] || r.Seq <= lastSeq[cpu] {
						t.Errorf("cpu %d: record (cpu %d ts %d seq %d) after ts %d seq %d", cpu, r.CPU, r.TS, r.Seq, lastTS[cpu], lastSeq[cpu])
					}
					lastTS[cpu], lastSeq[cpu] = r.TS, r.Seq
				}
				read[cpu] += uint64(n)
				if n < len(buf) {
					break
				}
			}
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			drain()
			if err := tr.Report(io.Discard); err != nil {
				t.Error(err)
			}
		}
	})
	for _, tk := range tasks {
		<-tk.Exited()
	}
	close(done)
	wg.Wait()
	tr.Disable("all")
	drain()
	for cpu, st := range tr.Stats() {
		if read[cpu]+lost[cpu]+st.Entries != st.Written {
			t.Errorf("cpu %d: read %d + lost %d + left %d != written %d", cpu, read[cpu], lost[cpu], st.Entries, st.Written)
		}
	}
}
