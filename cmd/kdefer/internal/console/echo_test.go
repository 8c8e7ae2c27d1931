package console_test

import (
	"strings"
	"testing"
)

func TestEchoWritesWritableModuleParametersAsSysfsAllows(t *testing.T) {
	m := newMachine(t)
	for _, tc := range []struct{ line, errs string }{
		{"echo 42 > /sys/module/testmod/parameters/count", ""},
		{"echo -n 43 >/sys/module/testmod/parameters/verbose", "echo: write error: Invalid argument\n"},
		{"echo 5 > /sys/module/testmod/parameters/delay_ms", "echo: /sys/module/testmod/parameters/delay_ms: Permission denied\n"},
		{"echo 1 > /sys/module/testmod/parameters/fail_init", "echo: /sys/module/testmod/parameters/fail_init: No such file or directory\n"},
		{"echo 1 > /proc/softirqs", "echo: /proc/softirqs: Permission denied\n"},
		{"echo 1 > /tmp/x", "echo: /tmp/x: No such file or directory\n"},
		{"echo 1 >", "echo: syntax error near unexpected token `newline'\n"},
	} {
		if _, errs, _ := m.exec(t, tc.line); errs != tc.errs {
			t.Errorf("%s: errors %q, want %q", tc.line, errs, tc.errs)
		}
	}
	if out, _, _ := m.exec(t, "cat /sys/module/testmod/parameters/count /sys/module/testmod/parameters/verbose"); out != "42\nN\n" {
		t.Errorf("after the writes: %q, want count 42 and verbose unchanged", out)
	}
	if out, _, _ := m.exec(t, "echo hello   world"); out != "hello world\n" {
		t.Errorf("plain echo: %q", out)
	}
}

func TestCatLoadavgShowsRunnableCounts(t *testing.T) {
	m := newMachine(t)
	out, errs, _ := m.exec(t, "cat /proc/loadavg")
	f := strings.Fields(out)
	if errs != "" || len(f) != 5 || !strings.Contains(f[3], "/") {
		t.Errorf("loadavg %q, errors %q", out, errs)
	}
}
