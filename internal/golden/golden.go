// Package golden compares test output with golden files and rewrites them on
// request. It is kdefer's one golden-file helper, imported by tests only.
//
// A golden file holds the exact expected output of a test, conventionally
// testdata/NAME.golden in the test's package directory. Check compares a
// test's output with it and, on a difference, fails the test with the file
// name, the first differing line and a line diff. Running the tests with
// the -rewrite flag,
//
//	go test ./procfs -run TestSoftirqs -args -rewrite
//
// writes the output to the golden files instead (creating missing ones and
// their directory), so that a deliberate change of output is a reviewed
// diff of testdata/. The same flag regenerates the expected output of the
// data-driven scenario files (internal/datadriven), which share it through
// Rewriting.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// rewrite is the -rewrite test flag. It is registered once here, so that a
// test binary that imports both golden and datadriven has one flag.
var rewrite = flag.Bool("rewrite", false, "rewrite golden files and the expected output of testdata scenarios instead of comparing")

// Rewriting reports whether the tests run with -rewrite: expected output is
// to be written rather than compared.
func Rewriting() bool { return *rewrite }

// Check compares got with the golden file file (a path relative to the
// test's working directory, its package directory: "testdata/x.golden").
// On a difference, or if the file cannot be read, it fails t with Errorf
// (the test goes on) naming the file, the first differing line and a line
// diff. With -rewrite it writes got to file instead, creating the file's
// directory if needed, and fails t only if that write fails.
//
// The Go release that built the test (runtime.Version(), which kdefer's
// boot banner and version line print) is compared and written as
// GoVersion, so that golden files hold on every Go release.
func Check(t testing.TB, file, got string) {
	t.Helper()
	got = Normalize(got)
	if *rewrite {
		if err := Write(file, got); err != nil {
			t.Errorf("golden: %v", err)
			return
		}
		t.Logf("golden: rewrote %s", file)
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("golden: %v (go test -args -rewrite creates it)", err)
		return
	}
	if got == string(want) {
		return
	}
	t.Errorf("golden: output differs from %s (go test -args -rewrite updates it)\n%s", file, Diff(string(want), got, file))
}

// GoVersion stands for the running Go release in golden files.
const GoVersion = "{goversion}"

// Normalize returns s with every occurrence of the running Go release
// (runtime.Version(), "go1.26.8" say) replaced by GoVersion: what Check
// compares and writes.
func Normalize(s string) string {
	return strings.ReplaceAll(s, runtime.Version(), GoVersion)
}

// Write writes data to file if its content differs, creating the file's
// directory if needed. An unchanged file is not touched.
func Write(file, data string) error {
	if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, []byte(data)) {
		return nil
	}
	if dir := filepath.Dir(file); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(file, []byte(data), 0o644)
}

// maxDiffCells bounds the work of the line diff (lines of want times lines
// of got); beyond it Diff shows only the first difference and both ends.
const maxDiffCells = 4 << 20

// Diff returns a readable line diff from want to got: a header line
// "FILE:N: first difference" (N the 1-based line of want where they first
// differ), then every line of both, prefixed "  " when common, "- " when
// only in want and "+ " when only in got, with runs of more than six
// common lines shortened to their first and last three. A missing final
// newline is shown as a line "\ no newline at end". It returns "" when want
// and got are equal.
func Diff(want, got, file string) string { return DiffAt(want, got, file, 1) }

// DiffAt is Diff for a want that starts at line line of file (a block
// inside a larger file): the header names the file's line.
func DiffAt(want, got, file string, line int) string {
	if want == got {
		return ""
	}
	a, b := splitLines(want), splitLines(got)
	first := 0
	for first < len(a) && first < len(b) && a[first] == b[first] {
		first++
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s:%d: first difference (- want, + got)\n", file, line+first)
	if len(a)*len(b) > maxDiffCells {
		for _, l := range a[first:min(len(a), first+20)] {
			sb.WriteString("- " + l + "\n")
		}
		for _, l := range b[first:min(len(b), first+20)] {
			sb.WriteString("+ " + l + "\n")
		}
		return sb.String()
	}
	ops := lcsDiff(a, b)
	// Shorten long runs of common lines.
	for i := 0; i < len(ops); {
		j := i
		for j < len(ops) && ops[j][0] == ' ' {
			j++
		}
		if j-i > 6 {
			for _, op := range ops[i : i+3] {
				sb.WriteString(op)
			}
			fmt.Fprintf(&sb, "  … %d common lines …\n", j-i-6)
			for _, op := range ops[j-3 : j] {
				sb.WriteString(op)
			}
		} else {
			for _, op := range ops[i:j] {
				sb.WriteString(op)
			}
		}
		if j < len(ops) {
			sb.WriteString(ops[j])
			j++
		}
		i = j
	}
	return sb.String()
}

// splitLines splits s into lines without their newlines; a last line
// without a newline is followed by a marker line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]string, 0, len(lines)+1)
	for _, l := range lines {
		out = append(out, strings.TrimSuffix(l, "\n"))
	}
	if !strings.HasSuffix(s, "\n") {
		out = append(out, `\ no newline at end`)
	}
	return out
}

// lcsDiff returns the lines of a and b as diff operations ("  x\n",
// "- x\n", "+ x\n") along a longest common subsequence, deletions before
// insertions.
func lcsDiff(a, b []string) []string {
	n, m := len(a), len(b)
	// l[i][j] is the LCS length of a[i:] and b[j:].
	l := make([][]int32, n+1)
	for i := range l {
		l[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var ops []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, "  "+a[i]+"\n")
			i++
			j++
		case j == m || (i < n && l[i+1][j] >= l[i][j+1]):
			ops = append(ops, "- "+a[i]+"\n")
			i++
		default:
			ops = append(ops, "+ "+b[j]+"\n")
			j++
		}
	}
	return ops
}
