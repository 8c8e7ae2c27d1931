package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/console"
	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/cmd/kdefer/internal/top"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
	"github.com/kdefer/kdefer/trace"
)

const topLong = `Runs "kdefer run MODULE …" (everything after "run" is run's arguments and
flags, see 'kdefer help run') and shows it live, full screen, as top does:
the softirqs each CPU runs per second by vector, the timer wheel (timers
armed, expired and cancelled, pending timers per wheel level and how late
each level's timers ran), the work items (queued, done, running, in flight,
and how long they waited to start) and the worker pools that have workers
(POOL as the kworkers' names spell it: 0 for kworker/0:M, 0H, u8; WORKERS,
BUSY, IDLE, RUNNING = nr_running, PENDING = items on the pool's worklist),
the tasks with their states, and the latest log lines (which go to the
screen instead of standard output).

Keys: q or Ctrl-C quits (the module is unloaded, the terminal restored);
p or space pauses the view (the module keeps running); s cycles the task
order (pid, state, cpu, name); / types a filter on the task names (Enter
ends it, Esc clears it). When the module's time is up the view stays,
marked [run over], until q.

In virtual time the kernel runs as fast as the host allows: rates are per
second of kernel time, and a virtual run of --for 10s is over at once; use
real time (no --virtual) to watch a module live.

With a FILE instead ('kdefer trace record' wrote it), top replays the
recording: the same panes computed from its records, one frame every --step
of the recording's time (rates per second of that time), the worker pools
and the tasks as far as the workqueue and scheduler records tell (a pool's
workers are the kworkers the records name; RUNNING is - without sched_switch
records; kernel threads are bracketed only where a kthread event names
them), and the latest records, as 'kdefer trace report' prints them, where
the live view has the log. It plays one frame every
--interval (default: --step, within 50ms..1s) from the start and stops at the
end. Keys: space or p plays and pauses; → or l and ← or h step a frame
(pausing); ] and [ move 10 frames; g and G (Home, End) go to the start and
the end; : or j jumps to a time (1.5, 1500ms, 50%, then Enter); + and -
change the speed; s, / and q as above.

-b (batch, as top -b) prints frames as text instead, for scripts: the first
-n frames (default all), each with every task and the latest --events
records, cut to -w columns, a blank line between frames.`

// topFlags are top's flags.
type topFlags struct {
	interval time.Duration
	// A replay's.
	step          time.Duration
	batch         bool
	n, width, evs int
}

// replayFlags are the flags that only a replay (top FILE) takes.
var replayFlags = []string{"step", "batch", "iterations", "width", "events"}

func newTopCmd(e *env) *cobra.Command {
	o := &topFlags{interval: 500 * time.Millisecond, step: 100 * time.Millisecond, width: 80, evs: 10}
	c := &cobra.Command{
		Use:   "top [--interval D] (-- run MODULE [args] [run flags] | [-b [-n N]] [--step D] FILE)",
		Short: "Watch a running module live, or replay a recording: softirq rates, the timer wheel, worker pools, tasks, the log",
		Long:  topLong,
		Example: `  kdefer top -- run 1-2-timer periodic=Y
  kdefer top --interval 1s -- run timer_simple --for 30s
  kdefer trace record -- run timer_simple --virtual --for 2s && kdefer top trace.kdt
  kdefer top -b -n 3 --step 500ms trace.kdt`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] != "run" && c.ArgsLenAtDash() != 0 {
				return nil // a FILE (and maybe flags after it: RunE parses them)
			}
			if len(args) == 0 || args[0] != "run" {
				return usage(c, errors.New(`want "-- run MODULE [args]" after the flags, or a trace FILE`))
			}
			if len(args) < 2 {
				return usage(c, errors.New("missing MODULE after run"))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] != "run" && c.ArgsLenAtDash() != 0 {
				return o.replay(c, e, args)
			}
			for _, f := range replayFlags {
				if c.Flags().Changed(f) {
					return usage(c, fmt.Errorf("--%s is for replaying a FILE, not for a live run", f))
				}
			}
			if o.interval < 10*time.Millisecond {
				return usage(c, fmt.Errorf("--interval %v: want at least 10ms", o.interval))
			}
			return runTop(c, e, args[1:], o.interval)
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.DurationVar(&o.interval, "interval", o.interval, "refresh every `DURATION` of real time (a replay: show the next frame)")
	f.DurationVar(&o.step, "step", o.step, "a replay's frames are `DURATION` of the recording's time apart")
	f.BoolVarP(&o.batch, "batch", "b", false, "print a replay's frames as text (top -b), for scripts")
	f.IntVarP(&o.n, "iterations", "n", 0, "with -b: print the first `N` frames (0: all)")
	f.IntVarP(&o.width, "width", "w", o.width, "with -b: cut lines to `COLUMNS`")
	f.IntVar(&o.evs, "events", o.evs, "with -b: the latest `N` records of each frame")
	return c
}

// replay is `kdefer top FILE`: args is the FILE and any flags written
// after it.
func (o *topFlags) replay(c *cobra.Command, e *env, args []string) error {
	file := args[0]
	if len(args) > 1 {
		if err := c.Flags().Parse(args[1:]); err != nil {
			return usage(c, err)
		}
		if rest := c.Flags().Args(); len(rest) > 0 {
			return usage(c, fmt.Errorf("one FILE (got %q and %q)", file, strings.Join(rest, " ")))
		}
	}
	switch {
	case o.step <= 0:
		return usage(c, fmt.Errorf("--step %v: want a positive duration", o.step))
	case o.n < 0 || o.evs < 0:
		return usage(c, errors.New("-n and --events want 0 or more"))
	case o.width < 20:
		return usage(c, fmt.Errorf("-w %d: want at least 20 columns", o.width))
	case c.Flags().Changed("interval") && o.interval < 10*time.Millisecond:
		return usage(c, fmt.Errorf("--interval %v: want at least 10ms", o.interval))
	case !o.batch && (c.Flags().Changed("iterations") || c.Flags().Changed("width") || c.Flags().Changed("events")):
		return usage(c, errors.New("-n, -w and --events go with -b"))
	}
	f, err := readTraceFile(e, file)
	if err != nil {
		return fmt.Errorf("top: %w", err)
	}
	rp, err := top.NewReplay(f, o.step)
	switch {
	case errors.Is(err, top.ErrStep):
		return usage(c, fmt.Errorf("--step %v: %d frames at most (the recording lasts %.3fs)", o.step, top.MaxFrames, float64(lastTS(f))/1e9))
	case err != nil:
		return fmt.Errorf("top: %s: %w", file, err)
	}
	title := filepath.Base(file)
	if len(f.Header.Command) > 0 {
		title += ": kdefer " + strings.Join(f.Header.Command, " ")
	}
	if o.batch {
		return top.Batch(e.stdout, rp, title, o.n, o.width, o.evs)
	}
	interval := o.interval
	if !c.Flags().Changed("interval") {
		interval = min(max(o.step, 50*time.Millisecond), time.Second)
	}
	if c.Context().Err() != nil {
		return signalStatus(c.Context())
	}
	prog := tea.NewProgram(top.Play(rp, interval, title), teaOptions(c, e)...)
	_, err = prog.Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case c.Context().Err() != nil:
		return signalStatus(c.Context())
	}
	return fmt.Errorf("top: %w (without a terminal, -b prints the frames as text)", err)
}

// signalStatus is the exit status of a command that a signal to kdefer
// ended (its context done, the signal its cause): 128+signal, as a run
// exits; SIGINT for a cause that names none.
func signalStatus(ctx context.Context) error {
	sig := kernel.SIGINT
	var in *runner.Interrupted
	if errors.As(context.Cause(ctx), &in) {
		sig = in.Sig
	}
	return exitStatus(128 + int(sig))
}

// lastTS is the time of f's last record.
func lastTS(f *trace.File) int64 {
	var ts int64
	for i := range f.Records {
		ts = max(ts, f.Records[i].TS)
	}
	return ts
}

// teaOptions are the program options of top's views: kdefer's context,
// standard input and output.
func teaOptions(c *cobra.Command, e *env) []tea.ProgramOption {
	opts := []tea.ProgramOption{tea.WithContext(c.Context())}
	if e.stdin != nil {
		opts = append(opts, tea.WithInput(e.stdin))
	}
	if f, ok := e.stdout.w.(*os.File); ok {
		opts = append(opts, tea.WithOutput(f))
	} else {
		opts = append(opts, tea.WithOutput(e.stdout))
	}
	return opts
}

// logTail keeps the latest lines written to it.
type logTail struct {
	mu    sync.Mutex
	lines []string
	part  string
	max   int
}

// Write keeps p's complete lines (tabs as spaces), the last max of them.
func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.part + string(p)
	parts := strings.Split(s, "\n")
	l.part = parts[len(parts)-1]
	for _, line := range parts[:len(parts)-1] {
		l.lines = append(l.lines, strings.ReplaceAll(line, "\t", "    "))
	}
	if len(l.lines) > l.max {
		l.lines = append(l.lines[:0:0], l.lines[len(l.lines)-l.max:]...)
	}
	return len(p), nil
}

// Lines returns the kept lines, oldest first.
func (l *logTail) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func runTop(c *cobra.Command, e *env, runArgs []string, interval time.Duration) error {
	tail := &logTail{max: 100}
	var (
		prog     *tea.Program
		progDone = make(chan struct{})
		progErr  error
	)
	hooks := &runHooks{
		config: func(cfg *runner.Config) error {
			cfg.Log, cfg.Stdout, cfg.Stderr = tail, tail, tail
			cfg.HoldClock = false
			cfg.OnBoot = func(k *kernel.Kernel) { stats.Enable(k) }
			return nil
		},
		started: func(r *runner.Runner) {
			src := top.SourceFunc(func() (top.Sample, error) {
				var s top.Sample
				err := r.Do(func(k *kernel.Kernel) { s = top.Collect(k, tail.Lines) })
				return s, err
			})
			m := top.New(src, interval, r.Module())
			prog = tea.NewProgram(m, teaOptions(c, e)...)
			go func() {
				defer close(progDone)
				final, err := prog.Run()
				if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, tea.ErrInterrupted) {
					progErr = err
				}
				if fm, ok := final.(*top.Model); ok && fm.Quitting() || err != nil {
					r.Stop(console.ErrQuit) // q or Ctrl-C: unload and end the run
				}
			}()
		},
		done: func(runner.Result, error) error {
			if prog == nil {
				return nil
			}
			<-progDone // the view stays until q once the run is over
			if progErr != nil {
				return fmt.Errorf("top: %w", progErr)
			}
			// What the log said last, for the terminal the view leaves.
			for _, l := range lastLines(tail.Lines(), 5) {
				fmt.Fprintln(e.stdout, l)
			}
			return nil
		},
	}
	root := &cobra.Command{Use: "kdefer", SilenceErrors: true, SilenceUsage: true}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage(c, err) })
	root.AddCommand(newRunCmdWith(e, hooks))
	root.SetArgs(append([]string{"run", "--console=false"}, runArgs...))
	return root.ExecuteContext(c.Context())
}

func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

var _ io.Writer = (*logTail)(nil)
