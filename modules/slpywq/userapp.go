package slpywq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/timekeeping"
)

// DefaultReaders is the number of readers Sleepy starts by default.
const DefaultReaders = 2

// timerSlackNs is a user task's default timer slack (50 µs), the range of
// its nanosleep.
const timerSlackNs = 50000

// Sleepy is the user side of the demo, the shell session the courseware
// runs by hand:
//
//	mknod /dev/workq_splydrv c 254 0     (if the node is missing)
//	cat /dev/workq_splydrv &             (READERS times: they sleep)
//	sleep 1; echo hello > /dev/workq_splydrv
//
// run as a user task from process context c with argv ("sleepy", DEVICE,
// [READERS]). The readers are tasks named "cat" and the writer one named
// "echo", so that the driver's log names them as it would. It prints what
// each does and returns 0, or 1 on a usage error or a failed system call;
// a signal during its wait is passed on to the readers (their read then
// fails with EINTR) and ends it with 128+signal.
func Sleepy(c *kernel.Ctx, argv []string, stdout, stderr io.Writer) int {
	prg := AppName
	if len(argv) > 0 {
		prg = argv[0]
	}
	readers := DefaultReaders
	if len(argv) == 3 {
		n, err := strconv.Atoi(argv[2])
		if err != nil || n < 0 || n > 64 {
			fmt.Fprintf(stderr, "%s: invalid number of readers %q\n", prg, argv[2])
			return 1
		}
		readers = n
	}
	if len(argv) < 2 || len(argv) > 3 {
		fmt.Fprintf(stderr, "Usage: %s DEVICE [READERS]\n", prg)
		return 1
	}
	dev := argv[1]
	if err := makeNode(c, dev, stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %s: %v\n", prg, dev, err)
		return 1
	}

	k := c.Kernel()
	var tasks []*kernel.Task
	for range readers {
		t, err := k.Spawn("cat", func(c *kernel.Ctx) int { return cat(c, dev, stdout, stderr) })
		if err != nil {
			fmt.Fprintf(stderr, "%s: fork: %v\n", prg, err)
			return 1
		}
		tasks = append(tasks, t)
	}
	if sig := sleep(c, 1); sig != 0 {
		for _, t := range tasks {
			k.SendSignal(t, sig)
		}
		return 128 + int(sig)
	}
	w, err := k.Spawn("echo", func(c *kernel.Ctx) int { return echo(c, dev, "hello\n", stdout, stderr) })
	if err != nil {
		fmt.Fprintf(stderr, "%s: fork: %v\n", prg, err)
		return 1
	}
	status := 0
	for _, t := range append(tasks, w) {
		kernel.WaitTaskExit(c, t)
		if t.ExitCode() != 0 {
			status = 1
		}
	}
	return status
}

// makeNode creates dev for the driver's major if it does not exist, as the
// courseware's mknod step does, reading the major from /proc/devices.
func makeNode(c *kernel.Ctx, dev string, stdout io.Writer) error {
	var major uint32
	for _, l := range strings.Split(module.ProcDevices(c.Kernel()), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == DrvName {
			n, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return err
			}
			major = uint32(n)
		}
		if l == "Block devices:" {
			break
		}
	}
	if major == 0 {
		return fmt.Errorf("no %s in /proc/devices (is %s loaded?)", DrvName, Name)
	}
	err := module.Mknod(c, dev, major, 0)
	switch {
	case errors.Is(err, kernel.EEXIST):
		return nil
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "mknod %s c %d 0\n", dev, major)
	return nil
}

// cat reads dev once: the read sleeps until a writer comes.
func cat(c *kernel.Ctx, dev string, stdout, stderr io.Writer) int {
	pid := c.Current().PID()
	fd, err := module.Open(c, dev, module.ORdOnly)
	if err != nil {
		fmt.Fprintf(stderr, "cat: %s: %v\n", dev, err)
		return 1
	}
	defer fd.Close(c)
	fmt.Fprintf(stdout, "cat[%d]: reading %s\n", pid, dev)
	var buf [128]byte
	n, err := fd.Read(c, buf[:])
	if err != nil {
		fmt.Fprintf(stderr, "cat[%d]: %s: %v\n", pid, dev, err)
		return 1
	}
	fmt.Fprintf(stdout, "cat[%d]: read returned %d (end of file)\n", pid, n)
	return 0
}

// echo writes text to dev.
func echo(c *kernel.Ctx, dev, text string, stdout, stderr io.Writer) int {
	pid := c.Current().PID()
	fd, err := module.Open(c, dev, module.OWrOnly)
	if err != nil {
		fmt.Fprintf(stderr, "echo: %s: %v\n", dev, err)
		return 1
	}
	defer fd.Close(c)
	n, err := fd.Write(c, []byte(text))
	if err != nil {
		fmt.Fprintf(stderr, "echo: write error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "echo[%d]: wrote %d bytes to %s\n", pid, n, dev)
	return 0
}

// sleep is sleep(3) of a user task: clock_nanosleep in TASK_INTERRUPTIBLE
// on an hrtimer with the task's timer slack. It returns 0 once the time
// has passed, or the signal that ended it.
func sleep(c *kernel.Ctx, secs int64) kernel.Signal {
	exp := timekeeping.KtimeGet(c) + secs*1000000000
	for {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		if hrtimer.ScheduleHrtimeoutRange(c, &exp, timerSlackNs, hrtimer.ModeAbs) == 0 {
			return 0
		}
		if c.SignalPending() {
			var se *kernel.SignalError
			if errors.As(context.Cause(c), &se) {
				return se.Sig
			}
			return kernel.SIGKILL
		}
	}
}
