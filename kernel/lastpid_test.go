package kernel_test

import (
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

func TestLastPIDIsTheNewestTasksPidEvenAfterItExits(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	var pid int
	ktest.InTask(t, k, func(c *kernel.Ctx) { pid = c.Current().PID() })
	if got := k.LastPID(); got != pid || k.FindTask(pid) != nil {
		t.Errorf("LastPID() = %d, want the exited task's %d", got, pid)
	}
	tk, err := k.Spawn("next", func(*kernel.Ctx) int { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	if got := k.LastPID(); got != tk.PID() || got != pid+1 {
		t.Errorf("LastPID() = %d after spawning pid %d", got, tk.PID())
	}
	ktest.Run(t, k, 0)
}
