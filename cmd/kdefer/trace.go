package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/trace/perfetto"
)

// defaultTraceFile is where trace record writes and the other trace
// commands read when no file is named (trace-cmd's trace.dat, with
// kdefer's own extension: the format is not trace-cmd's).
const defaultTraceFile = "trace.kdt"

// Recording defaults: each CPU's ring holds recordBuffer records (112
// bytes each) and is drained every recordInterval of real time, which
// keeps up with about recordBuffer/recordInterval events a second per
// CPU before records are lost.
const (
	recordBuffer   = 16384
	recordInterval = 50 * time.Millisecond
)

const traceLong = `Records the kernel's tracepoints (the kernel's event names and formats:
timer, hrtimer, irq, softirq, tasklet, sched) while a module runs, and prints
or exports the recording, as trace-cmd does for a real kernel:

  kdefer trace record [-e EVENT]... [-o FILE] -- run MODULE [args] [run flags]
  kdefer trace report [FILE]
  kdefer trace export --format perfetto [-o OUT] [FILE]
  kdefer trace list [-F]

FILE defaults to ` + defaultTraceFile + `.`

func newTraceCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "trace COMMAND",
		Short: "Record a run's tracepoints, report them as trace-cmd does, export a timeline",
		Long:  traceLong,
		Example: `  kdefer trace record -e timer -e irq -- run timer_simple --virtual --for 2s
  kdefer trace report
  kdefer trace export --format perfetto -o timeline.json
  kdefer trace list`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usage(c, errors.New("missing COMMAND (record, report, export or list)"))
			}
			return usage(c, fmt.Errorf("unknown command %q (want record, report, export or list)", args[0]))
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	c.AddCommand(newTraceRecordCmd(e), newTraceReportCmd(e), newTraceListCmd(e), newTraceExportCmd(e))
	return c
}

// traceRecordFlags are trace record's flags.
type traceRecordFlags struct {
	events   []string
	output   string
	buffer   int
	interval time.Duration
}

const traceRecordLong = `Runs "kdefer run MODULE …" (everything after "run" is run's arguments and
flags, see 'kdefer help run') with the events -e selects enabled from boot,
and writes their records to FILE (-o, default ` + defaultTraceFile + `) as the run goes.

-e takes what trace-cmd -e and the kernel's set_event take: an event
(timer_start), a system (timer, irq, sched), system:event, globs
(irq:softirq_*), or all; repeat it for more. Without -e every event is
recorded. 'kdefer trace list' lists them.

Each CPU has a ring of --buffer records that is drained every --interval of
real time, so memory stays bounded however long the run; a CPU that fills
its ring between two drains overwrites its oldest records, which are counted
and reported as lost ("CPU:0 [N EVENTS DROPPED]" in the report). The
recording's summary goes to standard error.`

func newTraceRecordCmd(e *env) *cobra.Command {
	o := &traceRecordFlags{output: defaultTraceFile, buffer: recordBuffer, interval: recordInterval}
	c := &cobra.Command{
		Use:   "record [-e EVENT]... [-o FILE] -- run MODULE [args] [run flags]",
		Short: "Record the tracepoints of a run into a file",
		Long:  traceRecordLong,
		Example: `  kdefer trace record -- run timer_simple --virtual --for 2s
  kdefer trace record -e timer -e softirq_entry -e softirq_exit -o t.kdt -- run 1-2-timer --for 3s`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 || args[0] != "run" {
				return usage(c, errors.New(`want "-- run MODULE [args]" after the flags`))
			}
			if len(args) < 2 {
				return usage(c, errors.New("missing MODULE after run"))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return o.run(c, e, args[1:]) },
	}
	f := c.Flags()
	f.SetInterspersed(false) // everything from "run" on is run's
	f.StringArrayVarP(&o.events, "event", "e", nil, "record `EVENT`: a name, a system, system:event, a glob or all (repeatable; default all)")
	f.StringVarP(&o.output, "output", "o", defaultTraceFile, "write the recording to `FILE`")
	f.IntVar(&o.buffer, "buffer", recordBuffer, "each CPU's ring, in `RECORDS` of 112 bytes")
	f.DurationVar(&o.interval, "interval", recordInterval, "drain the rings every `DURATION` of real time")
	return c
}

func (o *traceRecordFlags) run(c *cobra.Command, e *env, runArgs []string) error {
	events := "all"
	if len(o.events) > 0 {
		for _, p := range o.events {
			if _, err := trace.Match(p); err != nil {
				return &usageErr{cmd: c, err: fmt.Errorf("-e %s: no such event", p), hint: "see 'kdefer trace list'"}
			}
		}
		events = strings.Join(o.events, ",")
	}
	if o.buffer < 1 || o.buffer > 1<<24 {
		return usage(c, fmt.Errorf("--buffer %d: want 1..%d records", o.buffer, 1<<24))
	}
	if o.interval <= 0 {
		return usage(c, fmt.Errorf("--interval %v: want a positive duration", o.interval))
	}
	out, err := os.Create(o.output)
	if err != nil {
		return fmt.Errorf("trace record: %w", err)
	}
	defer out.Close()
	rec := &recording{file: o.output, w: out, interval: o.interval, command: append([]string{"run"}, runArgs...)}
	hooks := &runHooks{
		config: func(cfg *runner.Config) error {
			cfg.TraceEvents = events
			cfg.TraceBufferRecords = o.buffer
			cfg.OnBoot = rec.start
			return nil
		},
		done: func(runner.Result, error) error {
			if err := rec.stop(); err != nil {
				return err
			}
			if err := out.Close(); err != nil {
				return fmt.Errorf("trace record: %w", err)
			}
			rec.summary(e.stderr)
			return nil
		},
	}
	root := &cobra.Command{Use: "kdefer", SilenceErrors: true, SilenceUsage: true}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage(c, err) })
	root.AddCommand(newRunCmdWith(e, hooks))
	root.SetArgs(append([]string{"run"}, runArgs...))
	err = root.ExecuteContext(c.Context())
	if rec.rec == nil { // the kernel never booted: no recording
		out.Close()
		os.Remove(o.output)
	}
	return err
}

// recording drains a booted kernel's trace rings into a file while the
// run goes on.
type recording struct {
	file     string
	w        io.Writer
	interval time.Duration
	command  []string

	rec  *trace.Recorder
	quit chan struct{}
	wg   sync.WaitGroup
	err  error
	cpus int
}

// start is the runner's OnBoot: it writes the file's header and starts
// the draining goroutine.
func (r *recording) start(k *kernel.Kernel) {
	h := trace.FileHeader{HZ: int(k.HZ()), Virtual: k.Virtual(), Version: kernel.Version, Command: r.command}
	if k.Virtual() {
		h.Seed = k.Seed()
	}
	r.cpus = k.NumCPUs()
	r.rec, r.err = trace.NewRecorder(r.w, k.Tracer(), h)
	if r.err != nil {
		return
	}
	r.quit = make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-t.C:
				if _, err := r.rec.Drain(); err != nil {
					return // Close reports it
				}
			}
		}
	}()
}

// stop ends the draining, drains the rest and closes the file's chunks.
func (r *recording) stop() error {
	if r.rec == nil {
		if r.err != nil {
			return fmt.Errorf("trace record: %w", r.err)
		}
		return nil // the kernel did not boot: run reports it
	}
	close(r.quit)
	r.wg.Wait()
	if err := r.rec.Close(); err != nil {
		return fmt.Errorf("trace record: %s: %w", r.file, err)
	}
	return nil
}

// summary says what was recorded, as trace-cmd record ends with.
func (r *recording) summary(w io.Writer) {
	if r.rec == nil {
		return
	}
	lost := r.rec.Lost()
	var total uint64
	for _, n := range lost {
		total += n
	}
	fmt.Fprintf(w, "kdefer: trace: %d records written to %s", r.rec.Records(), r.file)
	if total > 0 {
		var parts []string
		for cpu, n := range lost {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("CPU%d %d", cpu, n))
			}
		}
		fmt.Fprintf(w, "; %d lost (%s): try a larger --buffer or a shorter --interval", total, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

// readTraceFile reads a recording; a truncated one is read as far as it
// goes, with a warning on stderr.
func readTraceFile(e *env, name string) (*trace.File, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := trace.ReadFile(fh)
	switch {
	case errors.Is(err, trace.ErrTruncated):
		fmt.Fprintf(e.stderr, "kdefer: %s: %v; using its %d records\n", name, err, len(f.Records))
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// fileArg is the trace file a command names, or the default.
func fileArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return defaultTraceFile
}

func maxOneFile(c *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usage(c, fmt.Errorf("one FILE at most (got %q)", strings.Join(args, " ")))
	}
	return nil
}

func newTraceReportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "report [FILE]",
		Short: "Print a recording as trace-cmd report does",
		Long: `Prints the records of FILE (default ` + defaultTraceFile + `) in time order, one a line, in
trace-cmd report's layout: comm-pid, [CPU], seconds.micros, the event and its
fields as the kernel's TP_printk prints them. Records a CPU lost show as
"CPU:N [K EVENTS DROPPED]" where they were lost. Pointers print as stable
tokens in the shape of the kernel's hashed %p, so the same run reports the
same text.`,
		Args: maxOneFile,
		RunE: func(c *cobra.Command, args []string) error {
			f, err := readTraceFile(e, fileArg(args))
			if err != nil {
				return fmt.Errorf("trace report: %w", err)
			}
			return f.Report(e.stdout)
		},
	}
}

func newTraceListCmd(e *env) *cobra.Command {
	var full bool
	c := &cobra.Command{
		Use:   "list [-F]",
		Short: "List the events with their formats",
		Long: `Lists every event as system:name with its print format (TP_printk), the
formats in one column after the longest name; -F prints each event's format
description (its fields and print fmt) as tracefs's events/SYSTEM/NAME/format
does, without the offsets and common fields.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			var b strings.Builder
			events := trace.Events()
			width := 0 // the formats start one column after the longest name
			for _, ev := range events {
				width = max(width, len(ev.String()))
			}
			for _, ev := range events {
				if full {
					fmt.Fprintf(&b, "%s\n%s\n", ev, trace.FormatFile(ev))
					continue
				}
				fmt.Fprintf(&b, "%-*s %s\n", width, ev, ev.Format())
			}
			_, err := io.WriteString(e.stdout, b.String())
			return err
		},
	}
	c.Flags().BoolVarP(&full, "format", "F", false, "print each event's fields and print fmt")
	return c
}

func newTraceExportCmd(e *env) *cobra.Command {
	var format, output string
	c := &cobra.Command{
		Use:   "export --format perfetto [-o OUT] [FILE]",
		Short: "Export a recording as a timeline for the Perfetto UI",
		Long: `Writes FILE (default ` + defaultTraceFile + `) as Chrome trace-event JSON, which the Perfetto UI
(https://ui.perfetto.dev: "Open trace file") and chrome://tracing open: a track
per CPU with the hard interrupts, softirqs, timer and hrtimer callbacks and
tasklets that ran there, nested; a track per task with the intervals it ran,
and on a kworker's track the work items it ran (cut where it slept; a WQ_BH
item's on its CPU's track, inside the softirq); instants for timer starts and
cancels, softirq raises, wake-ups, queue_work and activate_work; arrows from
each mod_timer/hrtimer_start to the callback it caused, from a raise to the
softirq run (a tasklet_schedule's arrow is its TASKLET raise), from a wake-up
to the task's next run and from a queue_work to the execution it caused. OUT
defaults to FILE with .json for its extension; "-" is standard output.`,
		Example: `  kdefer trace record -- run timer_simple --virtual --for 2s
  kdefer trace export --format perfetto -o timer_simple.json`,
		Args: maxOneFile,
		RunE: func(c *cobra.Command, args []string) error {
			if format != "perfetto" && format != "chrome" {
				return usage(c, fmt.Errorf("--format %q: want perfetto", format))
			}
			name := fileArg(args)
			f, err := readTraceFile(e, name)
			if err != nil {
				return fmt.Errorf("trace export: %w", err)
			}
			if output == "" {
				output = strings.TrimSuffix(name, ".kdt") + ".json"
			}
			opts := perfetto.FromFile(f)
			opts.Title = "kdefer " + strings.Join(f.Header.Command, " ")
			if output == "-" {
				return perfetto.Write(e.stdout, f.Records, opts)
			}
			out, err := os.Create(output)
			if err != nil {
				return fmt.Errorf("trace export: %w", err)
			}
			if err := perfetto.Write(out, f.Records, opts); err != nil {
				out.Close()
				return fmt.Errorf("trace export: %s: %w", output, err)
			}
			if err := out.Close(); err != nil {
				return fmt.Errorf("trace export: %w", err)
			}
			fmt.Fprintf(e.stderr, "kdefer: trace: %d records exported to %s (open it in https://ui.perfetto.dev)\n", len(f.Records), output)
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "perfetto", "output `FORMAT`: perfetto (Chrome trace-event JSON)")
	c.Flags().StringVarP(&output, "output", "o", "", "write to `OUT` (default FILE.json; - for standard output)")
	return c
}
