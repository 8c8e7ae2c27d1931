package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/plots"
	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
)

func newPlotCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "plot COMMAND",
		Short: "Draw pictures (PNG, SVG): sleep accuracy, timer lateness, a CPU timeline",
		Long: `Draws with gonum/plot, as PNG or SVG by the output's extension:

  kdefer plot sleeps [-o BASE] [--request D] [--count N]
      how long the kernel's sleep APIs really sleep (real time), next to
      Go's time.Sleep: BASE.png and BASE.svg
  kdefer plot lateness [-o OUT] [FILE]
      timer lateness per timer-wheel level, from a recording
  kdefer plot timeline [-o OUT] [FILE]
      what ran on each CPU (interrupts, softirqs, timer callbacks,
      tasklets), from a recording

FILE is a 'kdefer trace record' file (default ` + defaultTraceFile + `).`,
		Example: `  kdefer plot sleeps -o sleeps
  kdefer trace record -e timer -e irq -- run 1-2-timer --virtual --for 10s
  kdefer plot lateness -o lateness.png
  kdefer plot timeline -o timeline.svg`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usage(c, errors.New("missing COMMAND (sleeps, lateness or timeline)"))
			}
			return usage(c, fmt.Errorf("unknown command %q (want sleeps, lateness or timeline)", args[0]))
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	c.AddCommand(newPlotSleepsCmd(e), newPlotLatenessCmd(e), newPlotTimelineCmd(e))
	return c
}

// checkImageName refuses an output that is neither .png nor .svg.
func checkImageName(c *cobra.Command, name string) error {
	if ext := filepath.Ext(name); ext != ".png" && ext != ".svg" {
		return usage(c, fmt.Errorf("-o %q: want a .png or .svg file name", name))
	}
	return nil
}

func newPlotLatenessCmd(e *env) *cobra.Command {
	out := "lateness.png"
	c := &cobra.Command{
		Use:   "lateness [-o OUT] [FILE]",
		Short: "Histograms of timer lateness per wheel level, from a recording",
		Long: `Draws, for each timer-wheel level whose timers ran in FILE, a histogram of
their lateness: the jiffy a callback ran (timer_expire_entry) minus the
expires it was armed for (its timer_start). Level n's buckets are 8^n
jiffies wide, so its timers run up to that much late, by design (the wheel
trades precision for O(1) arming). Record the timer events for it.`,
		Args: maxOneFile,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkImageName(c, out); err != nil {
				return err
			}
			f, err := readTraceFile(e, fileArg(args))
			if err != nil {
				return fmt.Errorf("plot lateness: %w", err)
			}
			series := plots.Lateness(f)
			if len(series) == 0 {
				return fmt.Errorf("plot lateness: %s: no timer expired in the recording (record the timer events)", fileArg(args))
			}
			ps, err := plots.Histograms(series, "lateness", "lateness (jiffies)")
			if err != nil {
				return fmt.Errorf("plot lateness: %w", err)
			}
			if err := plots.Save(out, ps, 16*vg.Centimeter, 6*vg.Centimeter); err != nil {
				return fmt.Errorf("plot lateness: %w", err)
			}
			fmt.Fprintf(e.stderr, "kdefer: plot: %s\n", out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", out, "write the picture to `OUT` (.png or .svg)")
	return c
}

func newPlotTimelineCmd(e *env) *cobra.Command {
	out := "timeline.png"
	c := &cobra.Command{
		Use:   "timeline [-o OUT] [FILE]",
		Short: "A per-CPU activity strip of a recording",
		Long: `Draws a row per CPU and, along time, a bar for each hard interrupt handler,
softirq, timer or hrtimer callback and tasklet that ran on it in FILE
(nested ones thinner, inside), coloured by kind: the CPU tracks of
'kdefer trace export', as a picture. Record the irq and timer events for
it. In virtual time callbacks take no time: each shows as a thin bar.`,
		Args: maxOneFile,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkImageName(c, out); err != nil {
				return err
			}
			f, err := readTraceFile(e, fileArg(args))
			if err != nil {
				return fmt.Errorf("plot timeline: %w", err)
			}
			title := "kdefer " + strings.Join(f.Header.Command, " ")
			p, err := plots.Timeline(f, title)
			if err != nil {
				return fmt.Errorf("plot timeline: %s: %w", fileArg(args), err)
			}
			if err := plots.Save(out, []*plot.Plot{p}, 20*vg.Centimeter, vg.Length(3+1.5*float64(max(f.Header.CPUs, 1)))*vg.Centimeter); err != nil {
				return fmt.Errorf("plot timeline: %w", err)
			}
			fmt.Fprintf(e.stderr, "kdefer: plot: %s\n", out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", out, "write the picture to `OUT` (.png or .svg)")
	return c
}

// sleepAPI is one way to sleep for d, measured from a task.
type sleepAPI struct {
	name  string
	sleep func(c *kernel.Ctx, d time.Duration)
}

func sleepAPIs(hz jiffies.HZ) []sleepAPI {
	return []sleepAPI{
		{"msleep", func(c *kernel.Ctx, d time.Duration) { delay.Msleep(c, uint32(d.Milliseconds())) }},
		{"msleep_interruptible", func(c *kernel.Ctx, d time.Duration) { delay.MsleepInterruptible(c, uint32(d.Milliseconds())) }},
		{"schedule_timeout_uninterruptible", func(c *kernel.Ctx, d time.Duration) {
			delay.ScheduleTimeoutUninterruptible(c, int64(hz.MsecsToJiffies(uint32(d.Milliseconds()))))
		}},
		{"usleep_range", func(c *kernel.Ctx, d time.Duration) {
			us := uint64(d.Microseconds())
			delay.UsleepRange(c, us, us+us/10)
		}},
		{"fsleep", func(c *kernel.Ctx, d time.Duration) { delay.Fsleep(c, uint64(d.Microseconds())) }},
		{"mdelay (busy)", func(c *kernel.Ctx, d time.Duration) { delay.Mdelay(c, uint64(d.Milliseconds())) }},
		{"time.Sleep (Go)", func(_ *kernel.Ctx, d time.Duration) { time.Sleep(d) }},
	}
}

func newPlotSleepsCmd(e *env) *cobra.Command {
	base := "sleeps"
	request := 10 * time.Millisecond
	count := 50
	hz := hzFlag{jiffies.DefaultHZ}
	c := &cobra.Command{
		Use:   "sleeps [-o BASE] [--request D] [--count N] [--hz HZ]",
		Short: "How long the sleep APIs really sleep, next to time.Sleep",
		Long: `Boots a real-time kernel and, from a task, asks each sleep API for --request
(msleep, msleep_interruptible, schedule_timeout_uninterruptible,
usleep_range(D, D+10%), fsleep, and mdelay, which busy-waits) --count times,
then Go's time.Sleep; it draws a histogram per API of the time each call
really took, in ms, to BASE.png and BASE.svg (or to BASE alone when it ends
in .png or .svg). The jiffy-based sleeps come back up to a jiffy or more
late (msleep(10) at HZ=250 sleeps 3 jiffies plus the one that rounds up);
the hrtimer-based ones (usleep_range, fsleep) within their slack. It takes
about 7 × count × request of real time.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if request < time.Millisecond || request > time.Second || request%time.Millisecond != 0 {
				return usage(c, fmt.Errorf("--request %v: want whole milliseconds, 1ms..1s", request))
			}
			if count < 1 || count > 10000 {
				return usage(c, fmt.Errorf("--count %d: want 1..10000", count))
			}
			outs := []string{base + ".png", base + ".svg"}
			if ext := filepath.Ext(base); ext == ".png" || ext == ".svg" {
				outs = []string{base}
			}
			series, err := measureSleeps(c.Context(), hz.hz, request, count)
			if err != nil {
				return fmt.Errorf("plot sleeps: %w", err)
			}
			ps, err := plots.Histograms(series, fmt.Sprintf("asked for %v at HZ=%d", request, hz.hz), "time slept (ms)")
			if err != nil {
				return fmt.Errorf("plot sleeps: %w", err)
			}
			for _, out := range outs {
				if err := plots.Save(out, ps, 16*vg.Centimeter, 5*vg.Centimeter); err != nil {
					return fmt.Errorf("plot sleeps: %w", err)
				}
				fmt.Fprintf(e.stderr, "kdefer: plot: %s\n", out)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&base, "output", "o", base, "write `BASE`.png and BASE.svg (or BASE alone if it ends in .png or .svg)")
	f.DurationVar(&request, "request", request, "ask each API to sleep `D`")
	f.IntVar(&count, "count", count, "calls per API")
	f.Var(&hz, "hz", "tick rate (CONFIG_HZ): 100, 250, 300 or 1000")
	return c
}

// measureSleeps boots a real-time kernel and times count calls of each
// sleep API asking for request.
func measureSleeps(ctx context.Context, hz jiffies.HZ, request time.Duration, count int) ([]plots.Series, error) {
	k, err := kernel.Boot(kernel.Config{CPUs: 1, HZ: hz, Quiet: true})
	if err != nil {
		return nil, err
	}
	defer k.Shutdown(context.Background())
	apis := sleepAPIs(hz)
	series := make([]plots.Series, len(apis))
	_, err = k.RunTask(ctx, "plot_sleeps", func(c *kernel.Ctx) int {
		for i, api := range apis {
			series[i].Name = api.name
			for range count {
				if c.SignalPending() || ctx.Err() != nil {
					return 1
				}
				t0 := time.Now()
				api.sleep(c, request)
				series[i].Values = append(series[i].Values, float64(time.Since(t0))/1e6)
			}
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return series, nil
}
