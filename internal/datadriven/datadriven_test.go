package datadriven

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.fatal = true
}
func (r *recorder) Logf(string, ...any) {}

// setRewrite sets the shared -rewrite flag for the rest of the test.
func setRewrite(t *testing.T, v bool) {
	f := flag.Lookup("rewrite")
	old := f.Value.String()
	if err := f.Value.Set(strconv.FormatBool(v)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Value.Set(old) })
}

// counter is a tiny scenario: a counter with add and show commands.
func counter() *Commands {
	n := 0
	var c Commands
	c.Add("add", "add N: add N to the counter", func(d *Cmd) (string, error) {
		a, err := d.Arg(0)
		if err != nil {
			return "", err
		}
		v, err := strconv.Atoi(a)
		if err != nil {
			return "", err
		}
		n += v
		return fmt.Sprintf("n=%d\n", n), nil
	})
	c.Add("show", "show [label=L]: print the counter, and its input", func(d *Cmd) (string, error) {
		out := fmt.Sprintf("%s=%d", d.KV["label"], n) // no final newline: added
		if d.Input != "" {
			out += "\ninput: " + strings.ReplaceAll(strings.TrimSuffix(d.Input, "\n"), "\n", " | ")
		}
		return out, nil
	})
	c.Add("quiet", "quiet: print nothing", func(*Cmd) (string, error) { return "", nil })
	c.Add("fail", "fail: return an error", func(*Cmd) (string, error) { return "partial\n", errors.New("boom") })
	c.Add("blank", "blank: print a blank line", func(*Cmd) (string, error) { return "a\n\nb\n", nil })
	return &c
}

const good = `# A counter.
# It starts at 0.

add 2
----
n=2

# Adding again.
add 3
----
n=5

show label=total
first line
second line
----
total=5
input: first line | second line

quiet
----

# trailing prose
`

func write(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestMatchingScenarioPasses(t *testing.T) {
	setRewrite(t, false)
	r := &recorder{TB: t}
	RunFile(r, write(t, good), counter())
	if len(r.errors) != 0 {
		t.Fatalf("failures: %q", r.errors)
	}
}

func TestMismatchFailsAtTheCommandsLineWithADiff(t *testing.T) {
	setRewrite(t, false)
	file := write(t, strings.Replace(good, "n=5", "n=6", 1))
	r := &recorder{TB: t}
	RunFile(r, file, counter())
	if len(r.errors) != 1 {
		t.Fatalf("%d failures, want 1: %q", len(r.errors), r.errors)
	}
	msg := r.errors[0]
	for _, want := range []string{file + ":9: add 3: output differs", file + ":11: first difference", "- n=6\n", "+ n=5\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure lacks %q:\n%s", want, msg)
		}
	}
}

func TestLaterCommandsRunAfterAFailure(t *testing.T) {
	setRewrite(t, false)
	text := "add 1\n----\nn=9\n\nadd 1\n----\nn=7\n\nadd 1\n----\nn=3\n"
	r := &recorder{TB: t}
	RunFile(r, write(t, text), counter())
	if len(r.errors) != 2 || !strings.Contains(r.errors[0], ":1: add 1") || !strings.Contains(r.errors[1], ":5: add 1") {
		t.Fatalf("failures: %q", r.errors)
	}
}

func TestRewriteReplacesOutputsAndKeepsProse(t *testing.T) {
	setRewrite(t, true)
	stale := strings.Replace(strings.Replace(good, "n=5", "n=500\nextra line", 1), "total=5", "old", 1)
	stale = strings.Replace(stale, "quiet\n----\n", "quiet\n----\nnot quiet\n", 1)
	file := write(t, stale)
	r := &recorder{TB: t}
	RunFile(r, file, counter())
	if len(r.errors) != 0 {
		t.Fatalf("rewrite reported failures: %q", r.errors)
	}
	b, _ := os.ReadFile(file)
	if string(b) != good {
		t.Fatalf("rewritten file:\n%s\nwant:\n%s", b, good)
	}
	// And it now passes without -rewrite.
	setRewrite(t, false)
	RunFile(r, file, counter())
	if len(r.errors) != 0 {
		t.Fatalf("rewritten file fails: %q", r.errors)
	}
}

func TestRewriteFillsInMissingOutput(t *testing.T) {
	setRewrite(t, true)
	file := write(t, "# new\nadd 4\n----\n\nadd 1\n----\n")
	RunFile(&recorder{TB: t}, file, counter())
	b, _ := os.ReadFile(file)
	if want := "# new\nadd 4\n----\nn=4\n\nadd 1\n----\nn=5\n\n"; string(b) != want {
		t.Fatalf("rewritten:\n%q\nwant\n%q", b, want)
	}
}

func TestHandlerErrorFailsAndOutputIsStillCompared(t *testing.T) {
	setRewrite(t, false)
	r := &recorder{TB: t}
	RunFile(r, write(t, "fail\n----\npartial\n"), counter())
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], ":1: fail: boom") {
		t.Fatalf("failures: %q", r.errors)
	}
}

func TestUnknownCommandListsTheKnownOnes(t *testing.T) {
	setRewrite(t, false)
	r := &recorder{TB: t}
	RunFile(r, write(t, "frobnicate 1\n----\n\n"), counter())
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], `unknown command "frobnicate"`) ||
		!strings.Contains(r.errors[0], "add N: add N to the counter") {
		t.Fatalf("failures: %q", r.errors)
	}
}

func TestBlankLineInOutputFails(t *testing.T) {
	setRewrite(t, false)
	r := &recorder{TB: t}
	RunFile(r, write(t, "blank\n----\na\n"), counter())
	if len(r.errors) == 0 || !strings.Contains(r.errors[0], "blank line") {
		t.Fatalf("failures: %q", r.errors)
	}
}

func TestMalformedFilesAreRejected(t *testing.T) {
	for _, text := range []string{
		"add 1\n",                  // no separator
		"add 1\nmore input\n",      // input, then EOF
		"add 1\n\n----\nn=1\n",     // blank line before the separator
		"# prose\n----\nstray\n\n", // separator without a command
	} {
		if _, _, err := Parse("f", text); err == nil {
			t.Errorf("Parse(%q) accepted it", text)
		}
		r := &recorder{TB: t}
		RunFile(r, write(t, text), counter())
		if !r.fatal {
			t.Errorf("RunFile(%q) did not fail at once: %q", text, r.errors)
		}
	}
}

func TestParseSplitsArguments(t *testing.T) {
	cmds, trailer, err := Parse("f", "# p\nmod a expires=+5 b expires=7\n----\nx\n\n# end\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 || len(trailer) != 1 || trailer[0] != "# end" {
		t.Fatalf("cmds %d, trailer %q", len(cmds), trailer)
	}
	d := cmds[0]
	if d.Name != "mod" || d.Line != 2 || d.Pos() != "f:2" || d.Expected != "x\n" ||
		strings.Join(d.Args, ",") != "a,b" || d.KV["expires"] != "7" || len(d.Fields) != 4 {
		t.Fatalf("parsed %+v", d)
	}
	if _, err := d.Arg(2); err == nil {
		t.Error("Arg(2) of two arguments succeeded")
	}
	if _, err := d.Key("missing"); err == nil || d.Has("missing") || !d.Has("expires") {
		t.Error("Key/Has of a missing key")
	}
}

func TestAddRejectsDuplicatesAndBadNames(t *testing.T) {
	for _, name := range []string{"", "two words", "dup"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%q) did not panic", name)
				}
			}()
			var c Commands
			c.Add("dup", "", func(*Cmd) (string, error) { return "", nil })
			c.Add(name, "", func(*Cmd) (string, error) { return "", nil })
		}()
	}
}

func TestWalkRunsOneSubtestPerFile(t *testing.T) {
	var seen []string
	n := Walk(t, "testdata/*.txt", func(t *testing.T, file string) {
		seen = append(seen, t.Name())
		RunFile(t, file, counter())
	})
	if n != len(seen) || n == 0 || !strings.HasSuffix(seen[0], "/counter") {
		t.Fatalf("Walk ran %q (returned %d)", seen, n)
	}
}
