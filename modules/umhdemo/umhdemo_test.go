//go:build linux

package umhdemo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/umhdemo"
	"github.com/kdefer/kdefer/umh"
)

func boot(t *testing.T, cfg kernel.Config) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, cfg, umhdemo.Info)
}

// run loads umh_demo with args, unloads it, waits until its helpers are
// reaped and returns the log.
func run(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, args ...string) []string {
	t.Helper()
	seq := k.Log().NextSeq()
	demotest.Insmod(t, k, ld, umhdemo.Name, args...)
	demotest.RunFor(t, k, 100*time.Millisecond)
	demotest.Rmmod(t, k, ld, umhdemo.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := umh.WaitReaped(ctx, k); err != nil {
		t.Fatalf("helpers not reaped: %v", err)
	}
	if n := umh.Running(k); n != 0 {
		t.Errorf("%d helpers left running", n)
	}
	return demotest.Lines(k, seq)
}

func TestTourMatchesGolden(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	run(t, k, ld)
	golden.Check(t, "testdata/tour.golden", demotest.Dmesg(k, 0))
}

// The values of include/linux/umh.h's modes, as the kernel returns them.
func TestEachWaitModeReturnsTheKernelsValue(t *testing.T) {
	for _, cfg := range []kernel.Config{{Virtual: true, CPUs: 2, Quiet: true}, {CPUs: 2, Quiet: true}} {
		k, ld := boot(t, cfg)
		lines := run(t, k, ld)
		for _, want := range []string{
			"UMH_NO_WAIT: /bin/true -> 0 (",
			"UMH_WAIT_EXEC: /bin/true -> 0 (executing)",
			"UMH_WAIT_PROC: /bin/true -> 0 (exited, status 0)",
			"UMH_WAIT_PROC|UMH_KILLABLE: /bin/true -> 0 (exited, status 0)",
			"UMH_WAIT_PROC: /bin/false -> 256 (exited, status 1)",
			"UMH_WAIT_PROC: /bin/sh -c 'exit 3' -> 768 (exited, status 3)",
			"UMH_WAIT_PROC: /bin/sh -c 'kill -9 $$' -> 9 (killed by signal 9)",
			"UMH_WAIT_EXEC: /bin/false -> 0 (executing)",
			"UMH_NO_WAIT: /nonexistent/umh_demo -> 0 (",
			"UMH_WAIT_EXEC: /nonexistent/umh_demo -> -2 (-ENOENT)",
			"UMH_WAIT_PROC: /nonexistent/umh_demo -> -2 (-ENOENT)",
		} {
			if !has(lines, "umh_demo:umh_run(): "+want) {
				t.Errorf("virtual %v: log lacks %q:\n%s", cfg.Virtual, want, strings.Join(lines, "\n"))
			}
		}
		// The environment check: exactly envp.
		if !has(lines, `test -z "$USER$LANG$TERM$GOPATH"' -> 0 (exited, status 0)`) {
			t.Errorf("the helper's environment is not exactly envp")
		}
	}
}

func has(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) || strings.HasSuffix(l, prefix) {
			return true
		}
	}
	return false
}

func TestCmdRunsOneCommandInTheGivenMode(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{`cmd="/bin/sh -c false"`}, "UMH_WAIT_PROC: /bin/sh -c false -> 256 (exited, status 1)"},
		{[]string{"cmd=/bin/false", "wait=1"}, "UMH_WAIT_EXEC: /bin/false -> 0 (executing)"},
		{[]string{"cmd=/bin/false", "wait=0"}, "UMH_NO_WAIT: /bin/false -> 0 (queued; the result is not reported)"},
		{[]string{"cmd=/bin/false", "wait=6"}, "UMH_WAIT_PROC|UMH_KILLABLE: /bin/false -> 256 (exited, status 1)"},
	} {
		lines := run(t, k, ld, tc.args...)
		want := []string{"umh_demo: loading out-of-tree module taints kernel.", "umh_demo:umh_run(): " + tc.want, "umh_demo:umh_demo_exit(): done"}
		if len(lines) > 0 && !strings.HasPrefix(lines[0], "umh_demo: loading") {
			want = want[1:]
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("insmod umh_demo %q: log %q, want %q", tc.args, lines, want)
		}
	}
}

// From a timer callback: UMH_NO_WAIT is allowed; a waiting mode is the
// kernel's might_sleep BUG, and kdefer returns -EAGAIN without losing the
// helper.
func TestAtomicContextGetsTheMightSleepReport(t *testing.T) {
	k, ld := boot(t, kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	lines := run(t, k, ld, "cmd=/bin/true", "atomic=Y")
	i := demotest.Index(lines, 0, "umh_demo:umh_timer(): in a timer callback (softirq context):")
	if i < 0 || lines[i+1] != "umh_demo:umh_run(): UMH_NO_WAIT: /bin/true -> 0 (queued; the result is not reported)" ||
		!strings.HasPrefix(lines[i+2], "BUG: sleeping function called from invalid context at ") ||
		!has(lines, "umh_demo:umh_run(): UMH_WAIT_PROC: /bin/true -> -11 (-EAGAIN)") {
		t.Errorf("log:\n%s", strings.Join(lines, "\n"))
	}
	if k.Warnings() == 0 {
		t.Errorf("no BUG counted")
	}
}

func TestParametersDefaultToTheTour(t *testing.T) {
	var got []string
	for _, p := range umhdemo.Info.Params() {
		got = append(got, p.Name+"="+p.Default+" "+p.Type)
	}
	if want := "cmd= charp|wait=2 int|atomic=N bool"; strings.Join(got, "|") != want {
		t.Errorf("Params = %q, want %q", strings.Join(got, "|"), want)
	}
}
