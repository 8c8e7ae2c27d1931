package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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
)

const topLong = `Runs "kdefer run MODULE …" (everything after "run" is run's arguments and
flags, see 'kdefer help run') and shows it live, full screen, as top does:
the softirqs each CPU runs per second by vector, the timer wheel (timers
armed, expired and cancelled, pending timers per wheel level and how late
each level's timers ran), the tasks with their states, and the latest log
lines (which go to the screen instead of standard output).

Keys: q or Ctrl-C quits (the module is unloaded, the terminal restored);
p or space pauses the view (the module keeps running); s cycles the task
order (pid, state, cpu, name); / types a filter on the task names (Enter
ends it, Esc clears it). When the module's time is up the view stays,
marked [run over], until q.

In virtual time the kernel runs as fast as the host allows: rates are per
second of kernel time, and a virtual run of --for 10s is over at once; use
real time (no --virtual) to watch a module live.`

func newTopCmd(e *env) *cobra.Command {
	interval := 500 * time.Millisecond
	c := &cobra.Command{
		Use:   "top [--interval D] -- run MODULE [args] [run flags]",
		Short: "Watch a running module live: softirq rates, the timer wheel, tasks, the log",
		Long:  topLong,
		Example: `  kdefer top -- run 1-2-timer periodic=Y
  kdefer top --interval 1s -- run timer_simple --for 30s`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 || args[0] != "run" {
				return usage(c, errors.New(`want "-- run MODULE [args]" after the flags`))
			}
			if len(args) < 2 {
				return usage(c, errors.New("missing MODULE after run"))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if interval < 10*time.Millisecond {
				return usage(c, fmt.Errorf("--interval %v: want at least 10ms", interval))
			}
			return runTop(c, e, args[1:], interval)
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().DurationVar(&interval, "interval", interval, "refresh every `DURATION` of real time")
	return c
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
			opts := []tea.ProgramOption{tea.WithContext(c.Context())}
			if e.stdin != nil {
				opts = append(opts, tea.WithInput(e.stdin))
			}
			if f, ok := e.stdout.w.(*os.File); ok {
				opts = append(opts, tea.WithOutput(f))
			} else {
				opts = append(opts, tea.WithOutput(e.stdout))
			}
			prog = tea.NewProgram(m, opts...)
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
