package sed1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/timekeeping"
)

// TimerSlackNs is a user task's default timer slack (current->timer_slack_ns,
// 50 µs), the range of its nanosleep.
const TimerSlackNs = 50000

// UserappSed1 is the userapp_sed1 program, run as a user task from process
// context c with argv ("userapp_sed1", DEVICE, MESSAGE); what it prints goes
// to stdout and stderr. It returns the exit status: 0, or 1 (EXIT_FAILURE)
// on a usage error, a failed open or ioctl, or a timed-out operation; a
// fatal signal during its sleep ends it with 128+signal.
func UserappSed1(c *kernel.Ctx, argv []string, stdout, stderr io.Writer) int {
	prg := AppName
	if len(argv) > 0 {
		prg = argv[0]
	}
	if len(argv) < 3 {
		fmt.Fprintf(stderr, "Usage: %s device_file message\n", prg)
		return 1
	}
	if len(argv[2]) == 0 || len(argv[2]) > MaxData {
		fmt.Fprintf(stderr, "%s: invalid message\n", prg)
		return 1
	}
	var buf [MaxData]byte
	copy(buf[:], argv[2])

	fd, err := module.Open(c, argv[1], module.ORdWr)
	if err != nil {
		fmt.Fprintf(stderr, "open: %v\n", err) // perror("open")
		return 1
	}
	fmt.Fprintf(stdout, "device opened: fd=%d\n", fd.Num())

	if code, ok := xformMsg(c, fd, &buf, XfEncrypt, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintf(stdout, "msg after encrypt: %s\n\n", cstr(buf[:]))
	if sig := sleep(c, 1); sig != 0 {
		return 128 + int(sig)
	}
	if code, ok := xformMsg(c, fd, &buf, XfDecrypt, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintf(stdout, "msg after decrypt: %s\n", cstr(buf[:]))

	fd.Close(c)
	return 0
}

// xformMsg is the app's encrypt_msg (XfEncrypt) or decrypt_msg
// (XfDecrypt): it sends the C string in msg to the driver and replaces it
// with the result. ok is false when the program must exit with code.
func xformMsg(c *kernel.Ctx, fd *module.Fd, msg *[MaxData]byte, xform int32, stdout, stderr io.Writer) (code int, ok bool) {
	what, cmd, name := "encrypt", CmdEncryptMsg, "IOCTL_LLKD_SED_IOC_ENCRYPT_MSG"
	if xform == XfDecrypt {
		what, cmd, name = "decrypt", CmdDecryptMsg, "IOCTL_LLKD_SED_IOC_DECRYPT_MSG"
	}
	s := cstr(msg[:])
	kd := SedDs{DataXform: xform, Len: int32(len(s))}
	copy(kd.Data[:], s)

	// The 'returned' data payload will be in kd: an "in-out" parameter.
	fmt.Fprintf(stdout, "msg before %s: %s\n", what, s)
	b := kd.Encode()
	if _, err := fd.Ioctl(c, cmd, module.NewUserBuf(b)); err != nil {
		fmt.Fprintf(stderr, "ioctl %s failed: %v\n", name, err) // perror
		fd.Close(c)
		return 1, false
	}
	kd = DecodeSedDs(b)
	if kd.TimedOut == 1 {
		fmt.Fprintf(stderr, "*** Operation Timed Out ***\n")
		return 1, false // exit(EXIT_FAILURE): exit_files closes the device
	}
	fmt.Fprintf(stdout, "ioctl %s done; len=%d\n", name, kd.Len)
	if kd.Len >= 0 && kd.Len <= MaxData {
		copy(msg[:], kd.Data[:kd.Len]) // memcpy(msg, kd->data, kd->len)
	}
	return 0, true
}

// cstr returns b up to its first NUL, as %s reads a char array.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// sleep is sleep(3) of a user task: clock_nanosleep on an hrtimer with the
// task's timer slack, in TASK_INTERRUPTIBLE. It returns 0 once the time
// has passed, or the signal that ended it (a user process whose signal
// has its default action dies of it).
func sleep(c *kernel.Ctx, secs int64) kernel.Signal {
	exp := timekeeping.KtimeGet(c) + secs*1000000000
	for {
		kernel.SetCurrentState(c, kernel.TaskInterruptible)
		if hrtimer.ScheduleHrtimeoutRange(c, &exp, TimerSlackNs, hrtimer.ModeAbs) == 0 {
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
