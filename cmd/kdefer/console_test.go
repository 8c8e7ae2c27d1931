package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
)

// kdeferWithInput runs kdefer with a pipe as its standard input, carrying
// script and then its end.
func kdeferWithInput(t *testing.T, script string, args ...string) (string, string, int) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		pw.WriteString(script)
		pw.Close()
	}()
	var out, errb bytes.Buffer
	code := execute(context.Background(), args, pr, &out, &errb, nil)
	return out.String(), errb.String(), code
}

// consoleScript: kdefer_run's console, driven by a script: sed1's program
// is run, looked at in its one-second sleep, and interrupted.
const consoleScript = `ps
exec userapp_sed1 /dev/sed1_drv hi
sleep 0.5
ps
kill -INT 6
kill -FOO 6
cat /proc/interrupts
`

func TestConsoleReadsCommandsFromAPipe(t *testing.T) {
	args := []string{"run", "sed1", "--virtual", "--cpus", "2", "--no-timestamps"}
	out, errs, code := kdeferWithInput(t, consoleScript, args...)
	if code != 0 || errs != "kill: FOO: invalid signal specification\n" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden.Check(t, "testdata/console_pipe.golden", out)
	// The same script, the same output.
	if again, _, _ := kdeferWithInput(t, consoleScript, args...); again != out {
		t.Errorf("a second run differs:\n%s", again)
	}
}

func TestConsoleQuitUnloadsAndExitsZero(t *testing.T) {
	for _, cmd := range []string{"quit", "exit"} {
		out, errs, code := kdeferWithInput(t, "lsmod\n"+cmd+"\nps\n", "run", "sed1", "--virtual", "--for", "1h", "--no-timestamps")
		if code != 0 || errs != "" || strings.Contains(out, "PPID") || !strings.HasSuffix(out, "sed1_drv                   0  0\nmisc sed1_drv: unloading\n") {
			t.Errorf("%s: exit %d, stderr %q\n%s", cmd, code, errs, out)
		}
	}
}

// rmmod unloads the module; the kernel runs on without it (ps, lsmod) until
// quit, which does not unload it again.
func TestConsoleRmmodUnloadsAndTheKernelRunsOn(t *testing.T) {
	for _, cmd := range []string{"rmmod", "rmmod sed1_drv", "rmmod sed1-drv"} {
		out, errs, code := kdeferWithInput(t, "lsmod\n"+cmd+"\nps\nlsmod\n"+cmd+"\nquit\nps\n", "run", "sed1", "--virtual", "--for", "1h", "--no-timestamps")
		name := strings.TrimSpace(strings.TrimPrefix(cmd, "rmmod"))
		if name == "" {
			name = "sed1_drv"
		}
		wantErr := "rmmod: ERROR: Module " + name + " is not currently loaded\n"
		after := "misc sed1_drv: unloading\n    PID    PPID STAT PSR CMD\n"
		if code != 0 || errs != wantErr || strings.Count(out, "unloading") != 1 || !strings.Contains(out, after) ||
			strings.Count(out, "PPID") != 1 || !strings.HasSuffix(out, "[ksoftirqd/1]\nModule                  Size  Used by\n") {
			t.Errorf("%s: exit %d, stderr %q\n%s", cmd, code, errs, out)
		}
	}
}

func TestConsoleCanBeTurnedOff(t *testing.T) {
	out, _, code := kdeferWithInput(t, "ps\nquit\n", "run", "testmod", "--virtual", "--for", "1s", "--no-timestamps", "--console=false")
	if code != 0 || strings.Contains(out, "PPID") || !strings.HasSuffix(out, "testmod:Exit(): unloaded\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestStdinThatIsNotATerminalOrAPipeIsNotRead(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	defer null.Close()
	file, err := os.CreateTemp(t.TempDir(), "script")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	file.WriteString("quit\n")
	file.Seek(0, 0)
	for _, in := range []*os.File{null, file} {
		if ok, _ := consoleInput(in); ok {
			t.Errorf("%s is read as a console", in.Name())
		}
	}
	pr, pw, _ := os.Pipe()
	defer pr.Close()
	defer pw.Close()
	if ok, term := consoleInput(pr); !ok || term {
		t.Errorf("a pipe: console %v, terminal %v", ok, term)
	}
}

// TestConsoleThroughAPipeInARealProcess is `printf '…' | kdefer run …`.
func TestConsoleThroughAPipeInARealProcess(t *testing.T) {
	bin := buildKdefer(t)
	cmd := exec.Command(bin, "run", "sed1", "--virtual", "--cpus", "2", "--no-timestamps")
	cmd.Stdin = strings.NewReader(consoleScript)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil || errb.String() != "kill: FOO: invalid signal specification\n" {
		t.Fatalf("%v, stderr %q", err, errb.String())
	}
	golden.Check(t, "testdata/console_pipe.golden", out.String())
}
