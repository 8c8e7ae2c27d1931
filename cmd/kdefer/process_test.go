package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildKdefer builds this command into a temporary directory, for the
// tests that need a real process: signals, /dev/full, a closed stdout.
func buildKdefer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds kdefer")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "kdefer")
	if out, err := exec.Command(gotool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Skipf("cannot build kdefer: %v\n%s", err, out)
	}
	return bin
}

// TestSignalsUnloadTheModuleInARealProcess sends kdefer real SIGINT,
// SIGTERM and SIGHUP once the module (and the program) are running: each
// unloads the module and exits with 128+signal. It waits for output lines,
// never for a time (the deadline only bounds a hang).
func TestSignalsUnloadTheModuleInARealProcess(t *testing.T) {
	bin := buildKdefer(t)
	for _, tc := range []struct {
		args         []string
		ready, final string
	}{
		{[]string{"run", "testmod", "--cpus", "2", "--no-timestamps"}, "testmod:Init(): loaded", "testmod:Exit(): unloaded"},
		// --for keeps the module after the program: the signal comes
		// while one of them runs, whatever the machine's speed.
		{[]string{"run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--for", "1h", "--cpus", "2", "--no-timestamps"},
			"device opened: fd=3", "misc sed1_drv: unloading"},
	} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), tc.ready) {
					if err := cmd.Process.Signal(sig); err != nil {
						t.Error(err)
					}
					break
				}
			}
			rest, _ := io.ReadAll(stdout)
			out.Write(rest)
			err = cmd.Wait()
			cancel()
			code := cmd.ProcessState.ExitCode()
			// The sed1 driver's encrypt has a one-jiffy deadline, which a
			// real-time run on a loaded machine can miss: the program
			// then says so on stderr and exits 1, and the signal still
			// finds the module running (--for 1h).
			errs := strings.TrimPrefix(stderr.String(), "*** Operation Timed Out ***\n")
			if code != 128+int(sig) || errs != "" || !strings.HasSuffix(out.String(), tc.final+"\n") {
				t.Errorf("%s to kdefer %q: exit %d (%v), want %d; stderr %q\n%s", sig, tc.args, code, err, 128+int(sig), stderr.String(), out.String())
			}
		}
	}
}

// TestLostOutputOfARealProcess: >/dev/full and a closed stdout are error
// exits with a message on stderr, for `run` and for `modules`.
func TestLostOutputOfARealProcess(t *testing.T) {
	bin := buildKdefer(t)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer full.Close()
	for _, args := range [][]string{
		{"run", "timer_simple", "--virtual", "--cpus", "2"},
		{"run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--virtual", "--cpus", "2"},
		{"modules"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Stdout = full
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 || stderr.String() != "kdefer: cannot write output: write /dev/stdout: no space left on device\n" {
			t.Errorf("kdefer %q >/dev/full: exit %d (%v), stderr %q", args, code, err, stderr.String())
		}
		// The shell closes descriptor 1 (>&-) before kdefer starts.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `exec "$0" "$@" >&-`, bin}, args...)...)
		stderr.Reset()
		cmd.Stderr = &stderr
		err = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 || stderr.String() != "kdefer: cannot write output: standard output is closed\n" {
			t.Errorf("kdefer %q >&-: exit %d (%v), stderr %q", args, code, err, stderr.String())
		}
	}
	// >/dev/null is not a closed stdout: the output is thrown away as asked.
	cmd := exec.Command(bin, "modules")
	if err := cmd.Run(); err != nil {
		t.Errorf("kdefer modules >/dev/null: %v", err)
	}
}
