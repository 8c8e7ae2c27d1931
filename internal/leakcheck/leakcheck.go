// Package leakcheck fails a test binary that leaves goroutines behind.
//
// It is kdefer's own small replacement for go.uber.org/goleak (the library
// module has no third-party dependencies). Every test package calls
// VerifyTestMain from its TestMain: after the tests ran, it waits briefly for
// goroutines that are already on their way out, then lists any goroutine
// that is not part of the Go runtime or the testing framework and exits with
// status 1.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// ignored lists prefixes of the top-of-stack function of goroutines that
// belong to the runtime or to the testing framework and are not leaks.
var ignored = []string{
	"testing.",
	"runtime.goexit",
	"runtime.ReadTrace",
	"os/signal.",
	"runtime/trace.",
	"internal/fuzz.",
}

// Leaked returns the stacks of goroutines other than the caller's and the
// runtime's that are still alive, retrying for up to wait to let exiting
// goroutines finish.
func Leaked(wait time.Duration) []string { return leaked(wait, nil) }

func leaked(wait time.Duration, extra []string) []string {
	deadline := time.Now().Add(wait)
	for {
		leaks := current(extra...)
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func current(extra ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaks []string
	for i, s := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the calling goroutine
			continue
		}
		if !isIgnored(s, extra) {
			leaks = append(leaks, s)
		}
	}
	return leaks
}

func isIgnored(stack string, extra []string) bool {
	lines := strings.Split(stack, "\n")
	if len(lines) < 2 {
		return true
	}
	for _, p := range slices.Concat(ignored, extra) {
		if strings.HasPrefix(lines[1], p) {
			return true
		}
	}
	return false
}

// VerifyTestMain runs the tests and exits. If they passed but goroutines
// remain afterwards, it prints their stacks and exits with status 1.
func VerifyTestMain(m *testing.M) { VerifyTestMainIgnoring(m) }

// VerifyTestMainIgnoring is VerifyTestMain that also lets goroutines whose
// top-of-stack function starts with one of tops live on: those a
// third-party test helper leaves behind by design (teatest's
// NewTestModel waits for a SIGINT for ever).
func VerifyTestMainIgnoring(m *testing.M, tops ...string) {
	code := m.Run()
	if code == 0 {
		if leaks := leaked(2*time.Second, tops); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) leaked after the tests:\n\n%s\n", len(leaks), strings.Join(leaks, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}
