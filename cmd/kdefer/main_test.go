package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func kdefer(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestRunLoadsModuleStreamsLogAndUnloads(t *testing.T) {
	out, errs, code := kdefer(t, "run", "testmod", "count=5", "bogus=1", "--virtual", "--for", "2s", "--cpus", "2", "--no-timestamps", "--proc")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"testmod: unknown parameter 'bogus' ignored",
		"count=5",
		"testmod:Exit(): unloaded",
		"$ cat /proc/softirqs",
		"     TASKLET:",
		"LOC: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunIsReproducibleInVirtualTime(t *testing.T) {
	a, _, _ := kdefer(t, "run", "testmod", "--virtual", "--for", "1s", "--cpus", "2")
	b, _, _ := kdefer(t, "run", "testmod", "--virtual", "--for", "1s", "--cpus", "2")
	if a != b {
		t.Fatalf("two virtual runs differ:\n%s\n---\n%s", a, b)
	}
}

func TestBadParameterValueFailsTheLoad(t *testing.T) {
	out, errs, code := kdefer(t, "run", "testmod", "count=abc", "--virtual")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "testmod: `abc' invalid for parameter `count'") {
		t.Errorf("log lacks the kernel's message:\n%s", out)
	}
	if strings.TrimSpace(errs) != "insmod: ERROR: could not insert module testmod: Invalid parameters" {
		t.Errorf("stderr = %q", errs)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run"},
		{"run", "nosuch"},
		{"run", "testmod", "--hz", "123"},
		{"run", "testmod", "--for", "-1s"},
		{"run", "testmod", "--cpus", "999"},
		{"run", "testmod", "--cpus", "0"},
		{"run", "testmod", "--hz", "-250"},
		{"help", "frobnicate"},
	} {
		if _, _, code := kdefer(t, args...); code != 2 {
			t.Errorf("kdefer %q: exit %d, want 2", args, code)
		}
	}
}

func TestHelpVersionAndModules(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help", "run"}, {"run", "--help"}, {"modules", "--help"}, {"version"}} {
		if out, _, code := kdefer(t, args...); code != 0 || out == "" {
			t.Errorf("kdefer %q: exit %d, output %q", args, code, out)
		}
	}
	out, _, _ := kdefer(t, "modules")
	if !strings.Contains(out, "testmod") || !strings.Contains(out, "count:int") {
		t.Errorf("modules output:\n%s", out)
	}
}

func TestRunTimerSimpleDingsThreeTimes(t *testing.T) {
	out, errs, code := kdefer(t, "run", "timer_simple", "--virtual", "--for", "2s", "--cpus", "2")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"[    0.000000] timer_simple:timer_simple_init(): timer set to expire in 420 ms\n",
		"[    0.448000] timer_simple:ding(): timed out... data=3\n",
		"[    0.448000] timer_simple:ding(): 000) [swapper/0]:0   |  ..s1   /* ding() */\n",
		"[    0.896000] timer_simple:ding(): timed out... data=2\n",
		"[    1.344000] timer_simple:ding(): timed out... data=1\n",
		"[    2.000000] timer_simple:timer_simple_exit(): removed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "timed out..."); n != 3 {
		t.Errorf("%d dings, want 3", n)
	}
}

func TestRunSed1WithItsApp(t *testing.T) {
	args := []string{"run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--virtual", "--cpus", "2", "--no-timestamps"}
	out, errs, code := kdefer(t, args...)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errs, out)
	}
	var order []string
	for _, l := range strings.Split(out, "\n") {
		for _, want := range []string{
			"sed1_drv:sed1_drv_init(): init done (make_it_fail is off)",
			"device opened: fd=3",
			"msg before encrypt: hello",
			"sed1_drv:encrypt_decrypt_payload(): processing complete, timeout cancelled",
			"ioctl IOCTL_LLKD_SED_IOC_ENCRYPT_MSG done; len=5",
			"msg after encrypt: \x96\x99\x92\x92\x8f",
			"msg before decrypt: \x96\x99\x92\x92\x8f",
			"ioctl IOCTL_LLKD_SED_IOC_DECRYPT_MSG done; len=5",
			"msg after decrypt: hello",
			`sed1_drv:close_miscdrv(): closing "sed1_drv"`,
			"misc sed1_drv: unloading",
		} {
			if l == want {
				order = append(order, l)
			}
		}
	}
	if len(order) != 12 || order[len(order)-1] != "misc sed1_drv: unloading" || order[1] != "device opened: fd=3" {
		t.Errorf("lines found in order %q\n%s", order, out)
	}
	again, _, _ := kdefer(t, args...)
	if again != out {
		t.Errorf("two virtual runs differ")
	}
}

func TestRunSed1TimesOutWithMakeItFail(t *testing.T) {
	out, errs, code := kdefer(t, "run", "sed1_drv", "make_it_fail=1", "--exec", "userapp_sed1 /dev/sed1_drv hello",
		"--virtual", "--cpus", "2", "--no-timestamps")
	if code != 1 || errs != "*** Operation Timed Out ***\n" {
		t.Fatalf("exit %d, stderr %q, want 1 and the timeout", code, errs)
	}
	for _, want := range []string{
		"sed1_drv:sed1_drv_init(): init done (make_it_fail is *on*)",
		"sed1_drv:timesup(): *** Timer expired! ***",
		"sed1_drv:timesup(): 001) [swapper/1]:0   |  ..s1   /* timesup() */",
		"sed1_drv:encrypt_decrypt_payload(): cancelled the timer while it's inactive! (deadline missed?)",
		"sed1_drv:ioctl_miscdrv(): ** timed out **",
		"misc sed1_drv: unloading",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "msg after encrypt") {
		t.Errorf("the app went on after the timeout:\n%s", out)
	}
}

func TestExecWithForKeepsTheModuleLoaded(t *testing.T) {
	out, _, code := kdefer(t, "run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hi", "--for", "3s", "--virtual", "--cpus", "2")
	if code != 0 || !strings.Contains(out, "[    3.000000] misc sed1_drv: unloading\n") {
		t.Errorf("exit %d, want the unload at 3 s:\n%s", code, out)
	}
	// Without --for the module goes as soon as the app has exited.
	out, _, _ = kdefer(t, "run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hi", "--virtual", "--cpus", "2")
	if !strings.Contains(out, "[    1.000050] misc sed1_drv: unloading\n") {
		t.Errorf("want the unload right after the app:\n%s", out)
	}
}

func TestExecAppFailureIsTheExitStatus(t *testing.T) {
	out, errs, code := kdefer(t, "run", "sed1", "--exec", "userapp_sed1", "--virtual")
	if code != 1 || errs != "Usage: userapp_sed1 device_file message\n" {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "misc sed1_drv: unloading") {
		t.Errorf("module not unloaded:\n%s", out)
	}
	_, errs, code = kdefer(t, "run", "timer_simple", "--exec", "userapp_sed1 /dev/sed1_drv x", "--virtual")
	if code != 1 || errs != "open: No such file or directory\n" {
		t.Errorf("app on a missing device: exit %d, stderr %q", code, errs)
	}
}

func TestRunTheLabAndDelaysSleeps(t *testing.T) {
	out, _, code := kdefer(t, "run", "1-2-timer", "--virtual", "--for", "2.5s", "--cpus", "2", "--no-timestamps")
	want := "[timer_init] Init module\n[timer_handler] nseconds = 1\n[timer_handler] nseconds = 2\n[timer_exit] Exit module\n"
	if code != 0 || !strings.HasSuffix(out, want) {
		t.Errorf("1-2-timer: exit %d\n%s", code, out)
	}
	out, _, code = kdefer(t, "run", "1_2_timer", "periodic=N", "--virtual", "--for", "2.5s", "--cpus", "2", "--no-timestamps")
	if code != 0 || !strings.HasSuffix(out, "[timer_init] Init module\n[timer_handler] nseconds = 1\n[timer_exit] Exit module\n") {
		t.Errorf("1_2_timer periodic=N: exit %d\n%s", code, out)
	}
	out, _, code = kdefer(t, "run", "delays_sleeps", "--virtual", "--for", "10ms", "--cpus", "2", "--no-timestamps")
	for _, want := range []string{
		"delays_sleeps: inserted\n",
		"msleep(10) for      10,000,000 ns-> actual: ",
		"ssleep(1)                        -> actual: ",
		"delays_sleeps: demo complete\n",
		"delays_sleeps: removed\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("delays_sleeps: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

func TestExecUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "sed1", "--exec", "nosuch /dev/x"},
		{"run", "sed1", "--exec", "  "},
		{"run", "sed1", "--exec", "userapp_sed1 'unterminated"},
		{"run", "sed9"}, // no such module
	} {
		if _, errs, code := kdefer(t, args...); code != 2 || errs == "" {
			t.Errorf("kdefer %q: exit %d, stderr %q; want 2", args, code, errs)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"userapp_sed1 /dev/sed1_drv hello", []string{"userapp_sed1", "/dev/sed1_drv", "hello"}},
		{"  a\tb  ", []string{"a", "b"}},
		{`app 'two words' "and \"more\"" x\ y ''`, []string{"app", "two words", `and "more"`, "x y", ""}},
		{`a "b\n"`, []string{"a", `b\n`}},
		{"", nil},
	} {
		got, err := splitCommand(tc.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`'x`, `"x`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) succeeded", bad)
		}
	}
}

func TestModulesListsAliasesAndApps(t *testing.T) {
	out, _, _ := kdefer(t, "modules")
	for _, want := range []string{
		"sed1_drv ", "    alias: sed1\n", "    make_it_fail:int (default \"0\", perm 0660)",
		"    app: userapp_sed1 DEVICE MESSAGE (--exec)\n",
		"timer_simple ", "    exp_ms:ulong (default \"420\", perm 0444)",
		"delays_sleeps ", "1_2_timer ", "    periodic:bool (default \"Y\", perm 0444)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("modules output lacks %q:\n%s", want, out)
		}
	}
}

// TestInterruptSendsTheAppSIGINT runs in real time; the interrupt comes
// on the program's own output, right before its one-second sleep (nothing
// is timed).
func TestInterruptSendsTheAppSIGINT(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &trigger{on: "msg after encrypt", act: cancel}
	var errb bytes.Buffer
	code := run(ctx, []string{"run", "sed1", "--exec", "userapp_sed1 /dev/sed1_drv hello", "--cpus", "2", "--no-timestamps"}, out, &errb)
	if code != 130 || errb.Len() != 0 {
		t.Errorf("exit %d, want 130; stderr %q", code, errb.String())
	}
	for _, want := range []string{"msg after encrypt: ", `sed1_drv:close_miscdrv(): closing "sed1_drv"`, "misc sed1_drv: unloading"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "msg after decrypt") {
		t.Errorf("the app was not interrupted:\n%s", out.String())
	}
}

// TestInterruptDuringModuleInitWaitsForItAndUnloads: insmod is not
// interruptible; an interrupt that arrives while init sleeps lets init
// finish, then the module is removed and kdefer exits with 128+SIGINT.
func TestInterruptDuringModuleInitWaitsForItAndUnloads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the interrupt came before init even started
	var out, errb bytes.Buffer
	code := run(ctx, []string{"run", "delays_sleeps", "--virtual", "--cpus", "2", "--no-timestamps"}, &out, &errb)
	if code != 130 || errb.Len() != 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"ssleep(1)                        -> actual:  1016000000 ns", "delays_sleeps: demo complete", "delays_sleeps: removed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDoubleDashEndsTheFlags: after "--" every word goes to the module,
// and a second "--" is parse_args' own (the rest is ignored with a
// warning).
func TestDoubleDashEndsTheFlags(t *testing.T) {
	out, errb, code := kdefer(t, "run", "--virtual", "--for", "10ms", "--cpus", "2", "--no-timestamps", "testmod", "--", "count=7", "--for", "--", "verbose")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, want := range []string{"testmod: unknown parameter '--for' ignored", "testmod: parameters 'verbose' after `--' ignored"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
