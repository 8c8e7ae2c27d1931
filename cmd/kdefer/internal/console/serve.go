package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/runner"
	"github.com/kdefer/kdefer/kernel"
)

// MaxLine is the longest command line Serve accepts, in bytes (a terminal's
// canonical-mode line buffer, N_TTY_BUF_SIZE); a longer one is refused
// whole.
const MaxLine = 4096

// ServeOptions configure Serve.
type ServeOptions struct {
	// Prompt, if not empty, is written before each line is read: for a
	// terminal ("kdefer> "). Scripts get none.
	Prompt string
	// Files adds files to cat and ls (see Options.Files).
	Files map[string]func(k *kernel.Kernel) string
}

// Serve is a console on standard input: it reads command lines from in and
// runs each one on r's running module, writing the replies to out and the
// error lines to errOut through r.Writer (whole, between the log's lines).
// Each line runs inside r.Do, on the kernel's driver: with
// runner.Config.HoldClock a virtual clock stands still while Serve waits
// for a line, so that a script's commands run at the same point of every
// run, each after the tasks that the one before it woke have run; `sleep
// D` moves it on by D (r.Advance), so a script can act at any time of the
// run.
//
// rmmod unloads the module with r.Unload and goes on reading: the kernel
// runs on without the module, and the next line runs once the module's
// exit has returned (with a held clock, at that instant).
//
// At the end of input Serve lets the clock go (r.ReleaseClock) and returns
// nil: the run goes on until its time is up, a signal, or quit. It also
// returns nil after quit, and at the next line it reads
// once the run is over (so it may block in in.Read after the run has
// ended: close in to end it). A read error other than io.EOF is returned,
// after the clock has been let go.
func Serve(r *runner.Runner, in io.Reader, out, errOut io.Writer, opts ServeOptions) error {
	outW, errW := r.Writer(out), r.Writer(errOut)
	sh := New(r.Kernel(), r, Options{Out: outW, Err: errW, Files: opts.Files})
	defer r.ReleaseClock()
	prompt := func() bool {
		if opts.Prompt == "" {
			return true
		}
		return r.Do(func(*kernel.Kernel) { io.WriteString(outW, opts.Prompt) }) == nil
	}
	if !prompt() {
		return nil
	}
	br := bufio.NewReaderSize(in, MaxLine)
	for {
		line, tooLong, rerr := readLine(br, MaxLine)
		if rerr == nil || len(line) > 0 || tooLong {
			var next Action
			err := r.Do(func(*kernel.Kernel) {
				if tooLong {
					fmt.Fprintf(errW, "kdefer: line too long (more than %d bytes): ignored\n", MaxLine)
					return
				}
				next = sh.Exec(line)
			})
			if err == nil && next.Sleep > 0 {
				err = r.Advance(next.Sleep)
			}
			if err == nil && next.Unload {
				if err = r.Unload(); errors.Is(err, runner.ErrUnload) {
					fmt.Fprintln(errW, err) // kmod's line; the run goes on
					err = nil
				}
			}
			if err != nil || next.Quit || (rerr == nil && !prompt()) {
				return nil
			}
		}
		if rerr != nil {
			if opts.Prompt != "" {
				r.Do(func(*kernel.Kernel) { io.WriteString(outW, "\n") })
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("console: reading commands: %w", rerr)
		}
	}
}

// readLine reads one line without its end (\n or \r\n). A line longer than
// max is read to its end and reported as too long; its text is dropped.
// At the end of input err is io.EOF, with the last line if it had no
// newline.
func readLine(br *bufio.Reader, max int) (line string, tooLong bool, err error) {
	var buf []byte
	for {
		frag, isPrefix, err := br.ReadLine()
		if len(buf)+len(frag) > max {
			tooLong, buf = true, nil
		} else if !tooLong {
			buf = append(buf, frag...)
		}
		if err != nil {
			if tooLong {
				return "", true, err
			}
			return string(buf), false, err
		}
		if !isPrefix {
			return string(buf), tooLong, nil
		}
	}
}
