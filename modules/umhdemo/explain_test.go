package umhdemo_test

import (
	"testing"

	"github.com/kdefer/kdefer/modules/umhdemo"
	"github.com/kdefer/kdefer/umh"
)

func TestExplainReadsTheWaitStatus(t *testing.T) {
	for _, tc := range []struct {
		wait, ret int
		want      string
	}{
		{umh.NoWait, 0, "queued; the result is not reported"},
		{umh.WaitExec, 0, "executing"},
		{umh.WaitExec, -2, "-ENOENT"},
		{umh.WaitProc, 0, "exited, status 0"},
		{umh.WaitProc, 256, "exited, status 1"},
		{umh.WaitProc | umh.Killable, 0x7f00, "exited, status 127"},
		{umh.WaitProc, 9, "killed by signal 9"},
		{umh.WaitProc, 0x86, "killed by signal 6, core dumped"},
		{umh.WaitProc | umh.Killable, -512, "-ERESTARTSYS"},
	} {
		if got := umhdemo.Explain(tc.wait, tc.ret); got != tc.want {
			t.Errorf("Explain(%s, %d) = %q, want %q", umhdemo.WaitName(tc.wait), tc.ret, got, tc.want)
		}
	}
	for wait, want := range map[int]string{0: "UMH_NO_WAIT", 1: "UMH_WAIT_EXEC", 2: "UMH_WAIT_PROC", 6: "UMH_WAIT_PROC|UMH_KILLABLE", 5: "UMH_WAIT_EXEC|UMH_KILLABLE"} {
		if got := umhdemo.WaitName(wait); got != want {
			t.Errorf("WaitName(%d) = %q, want %q", wait, got, want)
		}
	}
}
