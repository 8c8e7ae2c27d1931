// Package demotest holds the test helpers the demo modules' tests share:
// booting a virtual kernel with a module registered, running tasks and
// reading the log (compare it with golden files with internal/golden). It
// is imported by tests only.
package demotest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/printk"
)

// Boot boots a kernel from cfg with the modules infos registered and
// returns it with its loader. The kernel is shut down when the test ends.
func Boot(t testing.TB, cfg kernel.Config, infos ...module.Info) (*kernel.Kernel, *module.ModLoader) {
	t.Helper()
	k, err := kernel.Boot(cfg)
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	t.Cleanup(func() { Shutdown(t, k) })
	reg := module.NewRegistry()
	for _, info := range infos {
		if err := reg.Register(info); err != nil {
			t.Fatalf("Register(%s): %v", info.Name, err)
		}
	}
	return k, module.Loader(k, reg)
}

// Shutdown shuts k down, failing the test if that does not finish in 10 s.
func Shutdown(t testing.TB, k *kernel.Kernel) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// Run runs fn as a user task named comm until it exits (k.RunTask) and
// returns its exit code.
func Run(t testing.TB, k *kernel.Kernel, comm string, fn func(c *kernel.Ctx) int) int {
	t.Helper()
	code, err := k.RunTask(context.Background(), comm, fn)
	if err != nil {
		t.Fatalf("RunTask(%s): %v", comm, err)
	}
	return code
}

// Insmod loads name with args from an insmod task, failing the test on an
// error.
func Insmod(t testing.TB, k *kernel.Kernel, ld *module.ModLoader, name string, args ...string) {
	t.Helper()
	var err error
	Run(t, k, "insmod", func(c *kernel.Ctx) int { err = ld.Insmod(c, name, args...); return 0 })
	if err != nil {
		t.Fatalf("Insmod(%s): %v", name, err)
	}
}

// Rmmod unloads name from an rmmod task, failing the test on an error.
func Rmmod(t testing.TB, k *kernel.Kernel, ld *module.ModLoader, name string) {
	t.Helper()
	var err error
	Run(t, k, "rmmod", func(c *kernel.Ctx) int { err = ld.Rmmod(c, name); return 0 })
	if err != nil {
		t.Fatalf("Rmmod(%s): %v", name, err)
	}
}

// RunFor runs k for d of kernel time.
func RunFor(t testing.TB, k *kernel.Kernel, d time.Duration) {
	t.Helper()
	if err := k.Run(context.Background(), d); err != nil {
		t.Fatalf("Run(%v): %v", d, err)
	}
}

// Records returns the committed log records from seq on.
func Records(k *kernel.Kernel, seq uint64) []printk.Record {
	k.Log().Flush()
	recs, _ := k.Log().Records(seq)
	return recs
}

// Lines returns the text of the log records from seq on.
func Lines(k *kernel.Kernel, seq uint64) []string {
	var out []string
	for _, r := range Records(k, seq) {
		out = append(out, r.Text)
	}
	return out
}

// Dmesg returns the log records from seq on as dmesg prints them, one per
// line, each ending in a newline.
func Dmesg(k *kernel.Kernel, seq uint64) string {
	var b strings.Builder
	for _, r := range Records(k, seq) {
		b.WriteString(printk.FormatDmesg(r))
		b.WriteByte('\n')
	}
	return b.String()
}

// Has reports whether lines holds want.
func Has(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// Index returns the index of the first line from `from` on that equals
// want, or -1.
func Index(lines []string, from int, want string) int {
	for i := from; i < len(lines); i++ {
		if lines[i] == want {
			return i
		}
	}
	return -1
}

// WheelFireAt returns the jiffy at which a timer queued with expiry
// expires on a timer base whose clock is clk fires, by the formula of
// kernel/time/timer.c (calc_wheel_index and calc_index, kernel-semantics
// §1.3): the level is chosen from delta = expires - clk, and the timer
// fires at the next multiple of 8^level strictly after expires (level 0:
// expires+1); an expiry already past fires at clk. clk is jiffies for a
// timer armed from a task on an idle base, and jiffies+1 for one re-armed
// from a timer callback (the base clock runs one ahead while expiring).
func WheelFireAt(hz jiffies.HZ, clk, expires uint64) uint64 {
	depth := 9
	if hz <= 100 {
		depth = 8
	}
	lvlStart := func(n int) uint64 { return 63 << (3 * (n - 1)) }
	delta := expires - clk
	lvl := -1
	for n := 1; n < depth; n++ {
		if delta < lvlStart(n) {
			lvl = n - 1
			break
		}
	}
	if lvl < 0 {
		if int64(delta) < 0 {
			return clk
		}
		lvl = depth - 1
		if delta >= lvlStart(depth) {
			expires = clk + lvlStart(depth) - 1<<(3*(depth-1))
		}
	}
	shift := 3 * lvl
	return ((expires >> shift) + 1) << shift
}

// FindTask returns the live task named comm with the lowest pid, or nil:
// what `ps | grep comm` finds.
func FindTask(k *kernel.Kernel, comm string) *kernel.Task {
	for _, t := range k.Tasks() {
		if t.Comm() == comm && !t.HasExited() {
			return t
		}
	}
	return nil
}
