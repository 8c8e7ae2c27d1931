package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// recorder is a testing.TB that records failures instead of failing the
// test (methods it does not override go to the real test).
type recorder struct {
	testing.TB
	errors []string
	logs   []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// setRewrite sets the -rewrite flag for the rest of the test.
func setRewrite(t *testing.T, v bool) {
	old := *rewrite
	*rewrite = v
	t.Cleanup(func() { *rewrite = old })
}

func TestMatchingOutputPasses(t *testing.T) {
	setRewrite(t, false)
	file := filepath.Join(t.TempDir(), "ok.golden")
	os.WriteFile(file, []byte("a\nb\n"), 0o644)
	r := &recorder{TB: t}
	Check(r, file, "a\nb\n")
	if len(r.errors) != 0 {
		t.Fatalf("matching output failed: %q", r.errors)
	}
}

func TestGoldenFilesHoldOnEveryGoRelease(t *testing.T) {
	setRewrite(t, false)
	file := filepath.Join(t.TempDir(), "banner.golden")
	os.WriteFile(file, []byte("kdefer version 0.1.0 ("+GoVersion+") HZ=250\n"), 0o644)
	r := &recorder{TB: t}
	Check(r, file, "kdefer version 0.1.0 ("+runtime.Version()+") HZ=250\n")
	if len(r.errors) != 0 {
		t.Fatalf("the running Go release was not matched by the placeholder: %q", r.errors)
	}
	setRewrite(t, true)
	Check(r, file, "built by "+runtime.Version()+"\n")
	if b, _ := os.ReadFile(file); string(b) != "built by "+GoVersion+"\n" {
		t.Fatalf("rewrite wrote %q, want the placeholder", b)
	}
}

func TestMismatchFailsWithFileLineAndDiff(t *testing.T) {
	setRewrite(t, false)
	file := filepath.Join(t.TempDir(), "x.golden")
	os.WriteFile(file, []byte("one\ntwo\nthree\n"), 0o644)
	r := &recorder{TB: t}
	Check(r, file, "one\nTWO\nthree\n")
	if len(r.errors) != 1 {
		t.Fatalf("mismatch: %d failures, want 1", len(r.errors))
	}
	msg := r.errors[0]
	for _, want := range []string{file + ":2: first difference", "- two\n", "+ TWO\n", "  one\n", "  three\n", "-args -rewrite"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	// The file is left alone.
	if b, _ := os.ReadFile(file); string(b) != "one\ntwo\nthree\n" {
		t.Errorf("file changed without -rewrite: %q", b)
	}
}

func TestMissingFileFailsAndNamesRewrite(t *testing.T) {
	setRewrite(t, false)
	r := &recorder{TB: t}
	Check(r, filepath.Join(t.TempDir(), "none.golden"), "x\n")
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "-rewrite") {
		t.Fatalf("missing file: %q", r.errors)
	}
}

func TestRewriteWritesTheFileAndCreatesItsDirectory(t *testing.T) {
	setRewrite(t, true)
	file := filepath.Join(t.TempDir(), "testdata", "new.golden")
	r := &recorder{TB: t}
	Check(r, file, "fresh\n")
	if len(r.errors) != 0 {
		t.Fatalf("rewrite failed: %q", r.errors)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "fresh\n" {
		t.Fatalf("after rewrite: %q, %v", b, err)
	}
	Check(r, file, "changed\n")
	if b, _ := os.ReadFile(file); string(b) != "changed\n" {
		t.Fatalf("second rewrite: %q", b)
	}
	setRewrite(t, false)
	Check(r, file, "changed\n")
	if len(r.errors) != 0 {
		t.Fatalf("rewritten file does not match: %q", r.errors)
	}
}

func TestDiffMarksAMissingFinalNewline(t *testing.T) {
	d := Diff("a\n", "a", "f")
	if !strings.Contains(d, "- \\ no newline at end") && !strings.Contains(d, "+ \\ no newline at end") {
		t.Fatalf("diff does not show the missing newline:\n%s", d)
	}
	if Diff("same\n", "same\n", "f") != "" {
		t.Fatal("equal texts have a diff")
	}
}

func TestDiffShortensLongCommonRuns(t *testing.T) {
	var a []string
	for i := 0; i < 40; i++ {
		a = append(a, fmt.Sprint("line", i))
	}
	want := strings.Join(a, "\n") + "\n"
	a[20] = "changed"
	got := strings.Join(a, "\n") + "\n"
	d := Diff(want, got, "f")
	if !strings.Contains(d, "f:21: first difference") || !strings.Contains(d, "- line20\n+ changed\n") {
		t.Fatalf("diff:\n%s", d)
	}
	if !strings.Contains(d, "… 14 common lines …") || strings.Count(d, "\n") > 20 {
		t.Fatalf("common runs not shortened:\n%s", d)
	}
}
