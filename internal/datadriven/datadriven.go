// Package datadriven runs data-driven test scenarios: text files of prose,
// commands and the output each command is expected to print, in the style
// of cockroachdb/datadriven (without the dependency: the library module has
// none). It is imported by tests only.
//
// # File format
//
// A scenario file, conventionally testdata/NAME.txt, is a sequence of
// blocks:
//
//	# Prose: comment lines and blank lines, kept as they are. Say here
//	# what the kernel does and why the output below is right.
//	command arg key=value ...
//	optional input lines
//	----
//	expected output, one or more lines
//	(no blank lines: the output ends at a blank line or the end of file)
//
// A command is any line that is neither blank nor a comment. Its first
// word names the handler; the rest are its arguments, positional (no '=')
// or key=value. Lines between the command and the "----" separator, if any,
// are the command's input. An empty output is written as "----" followed by
// a blank line.
//
// # Running
//
// A test registers one handler per command in a Commands and runs each file
// with RunFile, usually from Walk, which makes a subtest per file:
//
//	func TestScenarios(t *testing.T) {
//		datadriven.Walk(t, "testdata/*.txt", func(t *testing.T, file string) {
//			s := newScenario(t) // fresh state for every file
//			var cmds datadriven.Commands
//			cmds.Add("tick", "tick N: advance N jiffies", s.tick)
//			datadriven.RunFile(t, file, &cmds)
//		})
//	}
//
// Every command runs, in order, whether or not an earlier one failed. A
// difference between a command's output and the expected output fails the
// test with the file and line of the command and a line diff; so does a
// handler error (an unknown command lists the known ones with their usage).
//
// With the -rewrite flag (the one shared with internal/golden),
//
//	go test ./timer -run TestScenarios -args -rewrite
//
// RunFile writes each command's actual output into the file in place of the
// expected one, keeping the prose, commands and input byte for byte. Every
// block is written followed by a blank line, the last one included. Review
// the diff before committing it: the expected outputs are the claims.
package datadriven

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
)

// Separator is the line that ends a command (and its input) and starts its
// expected output.
const Separator = "----"

// Cmd is one command of a scenario file, as handed to its handler.
type Cmd struct {
	// File and Line locate the command: the file's path and the 1-based
	// line of the command.
	File string
	Line int
	// Text is the command line as written.
	Text string
	// Name is the first word of Text: the command.
	Name string
	// Fields are the words after the name, in order.
	Fields []string
	// Args are the positional arguments: the fields without '='.
	Args []string
	// KV holds the key=value fields (a repeated key keeps the last value).
	KV map[string]string
	// Input is the text between the command and the separator, each line
	// ending in a newline ("" if none).
	Input string
	// Expected is the expected output as written in the file, each line
	// ending in a newline ("" if none).
	Expected string

	inputLines []string
	prose      []string // comment and blank lines before the command
}

// Pos returns "FILE:LINE" of the command, for messages.
func (d *Cmd) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// Arg returns positional argument i (0-based), or an error naming it if the
// command has fewer.
func (d *Cmd) Arg(i int) (string, error) {
	if i < 0 || i >= len(d.Args) {
		return "", fmt.Errorf("%s: missing argument %d", d.Name, i+1)
	}
	return d.Args[i], nil
}

// Key returns the value of key=value, or an error naming it if the command
// has no such field.
func (d *Cmd) Key(key string) (string, error) {
	v, ok := d.KV[key]
	if !ok {
		return "", fmt.Errorf("%s: missing %s=", d.Name, key)
	}
	return v, nil
}

// Has reports whether the command has a key=value field for key.
func (d *Cmd) Has(key string) bool {
	_, ok := d.KV[key]
	return ok
}

// Handler runs one command and returns its output: zero or more lines,
// each ending in a newline (a missing final newline is added), none blank.
// A returned error fails the test at the command's position; the output
// returned with it is still compared (and written by -rewrite).
type Handler func(d *Cmd) (string, error)

// Commands maps command names to their handlers. The zero value is empty
// and ready to use.
type Commands struct {
	handlers map[string]Handler
	usage    map[string]string
	names    []string
}

// Add registers h as the handler of command name, with a one-line usage
// ("tick N: run N ticks") shown when a file uses an unknown command. It
// panics if name is empty, contains a space or is registered already.
func (c *Commands) Add(name, usage string, h Handler) {
	if name == "" || strings.ContainsAny(name, " \t") || h == nil {
		panic(fmt.Sprintf("datadriven: bad command %q", name))
	}
	if c.handlers == nil {
		c.handlers = map[string]Handler{}
		c.usage = map[string]string{}
	}
	if _, dup := c.handlers[name]; dup {
		panic(fmt.Sprintf("datadriven: command %q registered twice", name))
	}
	c.handlers[name] = h
	c.usage[name] = usage
	c.names = append(c.names, name)
}

// Names returns the registered command names in registration order.
func (c *Commands) Names() []string { return slices.Clone(c.names) }

// run runs d's handler.
func (c *Commands) run(d *Cmd) (string, error) {
	h, ok := c.handlers[d.Name]
	if !ok {
		var b strings.Builder
		fmt.Fprintf(&b, "unknown command %q; known commands:", d.Name)
		for _, n := range c.names {
			fmt.Fprintf(&b, "\n\t%s", c.usage[n])
		}
		return "", fmt.Errorf("%s", b.String())
	}
	return h(d)
}

// Walk runs fn as a subtest for each file matching pattern (filepath.Glob,
// relative to the package directory), in name order, named after the file
// without its extension. It returns the number of files and fails t if
// there are none.
func Walk(t *testing.T, pattern string, fn func(t *testing.T, file string)) int {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatalf("datadriven: %v", err)
	}
	if len(files) == 0 {
		t.Fatalf("datadriven: no files match %s", pattern)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		t.Run(name, func(t *testing.T) { fn(t, file) })
	}
	return len(files)
}

// RunFile runs the commands of file in order with cmds and compares their
// outputs with the expected ones, or writes the outputs into the file with
// -rewrite (see the package doc). A file that does not parse fails t at
// once.
func RunFile(t testing.TB, file string, cmds *Commands) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("datadriven: %v", err)
	}
	blocks, trailer, err := Parse(file, string(data))
	if err != nil {
		t.Fatalf("datadriven: %v", err)
	}
	var out strings.Builder
	for _, d := range blocks {
		got, err := cmds.run(d)
		if err != nil {
			t.Errorf("%s: %s: %v", d.Pos(), d.Text, err)
		}
		if got != "" && !strings.HasSuffix(got, "\n") {
			got += "\n"
		}
		if strings.HasPrefix(got, "\n") || strings.Contains(got, "\n\n") {
			t.Errorf("%s: %s: output contains a blank line, which would end it early:\n%s", d.Pos(), d.Text, got)
		}
		if !golden.Rewriting() && got != d.Expected {
			outLine := d.Line + len(d.inputLines) + 2
			t.Errorf("%s: %s: output differs\n%s", d.Pos(), d.Text, golden.DiffAt(d.Expected, got, file, outLine))
		}
		for _, l := range d.prose {
			out.WriteString(l + "\n")
		}
		out.WriteString(d.Text + "\n")
		for _, l := range d.inputLines {
			out.WriteString(l + "\n")
		}
		out.WriteString(Separator + "\n" + got + "\n")
	}
	for _, l := range trailer {
		out.WriteString(l + "\n")
	}
	if golden.Rewriting() {
		if err := golden.Write(file, out.String()); err != nil {
			t.Errorf("datadriven: %v", err)
		}
	}
}

// Parse splits the text of a scenario file into its commands, and returns
// the prose lines after the last one (trailer). file is used in messages
// and in the commands' File.
func Parse(file, text string) (cmds []*Cmd, trailer []string, err error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var prose []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			prose = append(prose, l)
			continue
		}
		if l == Separator {
			return nil, nil, fmt.Errorf("%s:%d: %s without a command", file, i+1, Separator)
		}
		d := &Cmd{File: file, Line: i + 1, Text: l, prose: prose, KV: map[string]string{}}
		prose = nil
		words := strings.Fields(l)
		d.Name, d.Fields = words[0], words[1:]
		for _, f := range d.Fields {
			if k, v, ok := strings.Cut(f, "="); ok {
				d.KV[k] = v
			} else {
				d.Args = append(d.Args, f)
			}
		}
		for i++; i < len(lines) && lines[i] != Separator; i++ {
			if strings.TrimSpace(lines[i]) == "" {
				return nil, nil, fmt.Errorf("%s:%d: command %q not followed by %s", file, d.Line, l, Separator)
			}
			d.inputLines = append(d.inputLines, lines[i])
		}
		if i >= len(lines) {
			return nil, nil, fmt.Errorf("%s:%d: command %q not followed by %s", file, d.Line, l, Separator)
		}
		if len(d.inputLines) > 0 {
			d.Input = strings.Join(d.inputLines, "\n") + "\n"
		}
		var exp []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			exp = append(exp, lines[i])
		}
		// The blank line that ends the output (if any) belongs to this
		// block, not to the next one's prose.
		if len(exp) > 0 {
			d.Expected = strings.Join(exp, "\n") + "\n"
		}
		cmds = append(cmds, d)
	}
	return cmds, prose, nil
}
