package sed2

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/sed1"
	"github.com/kdefer/kdefer/printk"
)

// UserappSed2 is the userapp_sed2 program, run as a user task from process
// context c with argv ("userapp_sed2", DEVICE, MESSAGE, CHOICE...): the
// menu's choices are the arguments after MESSAGE, each echoed after the
// prompt as a terminal shows what is typed (kdefer's programs have no
// standard input). What it prints goes to stdout and stderr. It returns
// the exit status: 0 after choice 7 or once the choices run out (the C
// program would loop for ever at the end of its input, printing "reading
// your choice failed"; this one prints it once and exits), 1 on a usage
// error or a failed open, 128+signal if a signal arrives between two
// choices.
func UserappSed2(c *kernel.Ctx, argv []string, stdout, stderr io.Writer) int {
	var choices []string
	if len(argv) > 3 {
		argv, choices = argv[:3], argv[3:]
	}
	return userapp(c, argv, &wordList{words: choices}, true, stdout, stderr)
}

// UserappSed2Input is userapp_sed2 reading its choices from stdin (words
// separated by white space, as scanf("%d") reads them), without echo: what
// the program does with a pipe on its standard input. argv is
// ("userapp_sed2", DEVICE, MESSAGE).
func UserappSed2Input(c *kernel.Ctx, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sc := bufio.NewScanner(stdin)
	sc.Split(bufio.ScanWords)
	return userapp(c, argv, scanWords{sc}, false, stdout, stderr)
}

// words is where the menu's choices come from.
type words interface {
	next() (string, bool)
}

type wordList struct{ words []string }

func (w *wordList) next() (string, bool) {
	if len(w.words) == 0 {
		return "", false
	}
	s := w.words[0]
	w.words = w.words[1:]
	return s, true
}

type scanWords struct{ sc *bufio.Scanner }

func (s scanWords) next() (string, bool) {
	if !s.sc.Scan() {
		return "", false
	}
	return s.sc.Text(), true
}

// app is one run of the program.
type app struct {
	c              *kernel.Ctx
	fd             *module.Fd
	prg            string
	stdout, stderr io.Writer
}

func userapp(c *kernel.Ctx, argv []string, in words, echo bool, stdout, stderr io.Writer) int {
	prg := AppName
	if len(argv) > 0 {
		prg = argv[0]
	}
	if len(argv) < 3 {
		fmt.Fprintf(stderr, "Usage: %s device_file message_to_encrypt\n", prg)
		return 1
	}
	if len(argv[2]) == 0 || len(argv[2]) > MaxData {
		fmt.Fprintf(stderr, "%s: invalid message\n", prg)
		return 1
	}
	buf := argv[2]

	fd, err := module.Open(c, argv[1], module.ORdWr)
	if err != nil {
		fmt.Fprintf(stderr, "open: %v\n", err) // perror("open")
		return 1
	}
	fmt.Fprintf(stdout, "device opened: fd=%d\n", fd.Num())

	a := &app{c: c, fd: fd, prg: prg, stdout: stdout, stderr: stderr}
	return a.menuDrive(buf, in, echo)
}

// The menu, as printed before each choice.
const menu = "\n   ***  Menu  ***\n" +
	"  --- Message Control ---\n" +
	"1. Encrypt the message\n" +
	"2. Retrieve the message (from the driver)\n" +
	"3. Decrypt the message (that was encrypted in (1))\n" +
	"4. Destroy the message\n" +
	"     --- Kernel Logs ---\n" +
	"5. View the kernel log (via dmesg(1))\n" +
	"6. Clear the kernel log (via sudo)\n" +
	"7. Quit\n" +
	">  "

// menuDrive is menu_drive(): the banner, the probe for a message the driver
// holds, and the menu loop. It returns the exit status.
func (a *app) menuDrive(buf string, in words, echo bool) int {
	out, errw := a.stdout, a.stderr
	first, destroyed := 1, false

	fmt.Fprint(out, "---< Welcome to the SED (Simple Encrypt Decrypt) v2 User mode app >---\n"+
		"((c) 'Learn Linux Kernel Development', Kaiwan N Billimoria, Packt)\n\n")

	// Check, is the driver already holding a message packet?
	if msg, err := a.retrieveMsg(); err == nil && len(msg) > 0 {
		fmt.Fprintf(out, "Detected that the driver already holds a message:\n"+
			"len = %d, msg = \"%s\"\n"+
			"RECOMMENDATION: Destroy the message and restart app.", len(msg), msg)
		first = 0
	} else {
		fmt.Fprintf(out, "The message we shall work with is:\n\"%s\"\n", buf)
	}

	choice := 0
	for {
		fmt.Fprint(out, menu)
		if sig := pendingSignal(a.c); sig != 0 {
			return 128 + int(sig) // a user process dies of its signal
		}
		w, ok := in.next()
		if !ok {
			fmt.Fprintf(out, "%s: reading your choice failed; pl try again...\n", a.prg)
			a.fd.Close(a.c)
			return 0 // end of input: kdefer exits where C loops for ever
		}
		if echo {
			fmt.Fprintf(out, "%s\n", w)
		}
		choice = 0
		if n, err := strconv.Atoi(w); err == nil {
			choice = n
		}

		guardDestroyed := func() bool {
			if destroyed {
				fmt.Fprint(out, "The message is Destroyed; please restart the app now ...\n")
			}
			return destroyed
		}
		guardEncrypt := func() bool {
			if first == 1 {
				fmt.Fprint(out, "You need to first Encrypt the message, thereby pushing it to the kernel driver\n")
			}
			return first == 1
		}

		switch choice {
		case 1: // Encrypt the message (in the kernel driver)
			if guardDestroyed() {
				continue
			}
			if err := a.encryptMsg(buf); err != nil {
				if errors.Is(err, kernel.EBADRQC) {
					fmt.Fprint(errw, "Invalid request, message is already encrypted\n")
				} else {
					fmt.Fprintf(errw, "%s: *** encrypt op failed (see kernel logs) ***\n", a.prg)
				}
				first = 1
			} else {
				fmt.Fprint(out, "\n---> Message ENCRYPTED in the kernel driver; retrieve to see <---\n"+
					"     (ioctl IOCTL_LLKD_SED_IOC_ENCRYPT_MSG successful)\n")
				first = 0
			}
		case 2: // Retrieve the (en|de-crypted) message (from the kernel driver)
			if guardDestroyed() || guardEncrypt() {
				continue
			}
			msg, err := a.retrieveMsg()
			if err != nil {
				fmt.Fprintf(errw, "%s: *** retrieve op failed (see kernel logs) ***\n", a.prg)
			} else {
				fmt.Fprintf(out, "\n---> Message RETRIEVED from the kernel driver <---\n"+
					"     (ioctl IOCTL_LLKD_SED_IOC_RETRIEVE_MSG successful)\n"+
					"     len=%d, msg=\"%s\"\n", len(msg), msg)
			}
		case 3: // Decrypt the message (in the kernel driver)
			if guardDestroyed() || guardEncrypt() {
				continue
			}
			if err := a.decryptMsg(); err != nil {
				if errors.Is(err, kernel.EBADRQC) {
					fmt.Fprint(errw, "Invalid request, message is already decrypted\n")
				} else {
					fmt.Fprintf(errw, "%s: *** decrypt op failed (see kernel logs) ***\n", a.prg)
				}
			} else {
				fmt.Fprint(out, "\n---> Message DECRYPTED in the kernel driver; retrieve to see <---\n"+
					"     (ioctl IOCTL_LLKD_SED_IOC_DECRYPT_MSG successful)\n")
			}
		case 4: // Destroy the message (in the kernel driver)
			if guardDestroyed() || guardEncrypt() {
				continue
			}
			if err := a.destroyMsg(); err != nil {
				fmt.Fprintf(errw, "%s: *** destroy op failed (see kernel logs) ***\n", a.prg)
			} else {
				fmt.Fprint(out, "\n---> Message DESTROYED within the kernel driver <---\n"+
					"     (ioctl IOCTL_LLKD_SED_IOC_DESTROY_MSG successful)\n"+
					"     Restart this app please ...\n")
				destroyed = true
			}
		case 5: // View kernel log (dmesg)
			fmt.Fprint(out, "---> View kernel log : dmesg(1) <---\n")
			io.WriteString(out, Dmesg(a.c.Kernel()))
		case 6: // Clear kernel log (sudo dmesg -C)
			fmt.Fprint(out, "---> Clear kernel log : sudo dmesg -C <---\n")
			DmesgClear(a.c.Kernel())
		case 7: // Exit
			fmt.Fprint(out, "---> Exiting on user choice <---\n")
			a.fd.Close(a.c)
			return 0
		default:
			fmt.Fprintf(out, "---> Unknown choice (%d) <---\n", choice)
		}
	}
}

// ioctlFailed prints perror's line for a failed ioctl named name, or the
// program's own line for a timeout when timeoutMsg is set.
func (a *app) ioctlFailed(name string, err error, timeoutMsg bool) {
	if timeoutMsg && errors.Is(err, kernel.ETIMEDOUT) {
		fmt.Fprintf(a.stderr, "ioctl %s failed: *** Operation Timed Out ***\n", name)
		return
	}
	fmt.Fprintf(a.stderr, "ioctl %s failed: %v\n", name, err) // perror
}

// encryptMsg is encrypt_msg(): it sends the cleartext to the driver, whose
// kernel thread encrypts it and keeps it.
func (a *app) encryptMsg(msg string) error {
	kd := SedDs{DataXform: XfEncrypt, Len: int32(len(msg))}
	copy(kd.Data[:], msg)
	if _, err := a.fd.Ioctl(a.c, CmdEncryptMsg, module.NewUserBuf(kd.Encode())); err != nil {
		a.ioctlFailed("IOCTL_LLKD_SED_IOC_ENCRYPT_MSG", err, false)
		return err
	}
	return nil
}

// retrieveMsg is retrieve_msg(): the message the driver holds.
func (a *app) retrieveMsg() ([]byte, error) {
	kd := SedDs{DataXform: XfRetrieve}
	b := kd.Encode()
	if _, err := a.fd.Ioctl(a.c, CmdRetrieveMsg, module.NewUserBuf(b)); err != nil {
		a.ioctlFailed("IOCTL_LLKD_SED_IOC_RETRIEVE_MSG", err, true)
		return nil, err
	}
	kd = sed1.DecodeSedDs(b)
	return append([]byte(nil), payload(&kd)...), nil
}

// decryptMsg is decrypt_msg(): the driver's kernel thread decrypts the
// message it holds.
func (a *app) decryptMsg() error {
	kd := SedDs{DataXform: XfDecrypt}
	if _, err := a.fd.Ioctl(a.c, CmdDecryptMsg, module.NewUserBuf(kd.Encode())); err != nil {
		a.ioctlFailed("IOCTL_LLKD_SED_IOC_DECRYPT_MSG", err, true)
		return err
	}
	return nil
}

// destroyMsg is destroy_msg().
func (a *app) destroyMsg() error {
	if _, err := a.fd.Ioctl(a.c, CmdDestroyMsg, module.NewUserArg(0)); err != nil {
		a.ioctlFailed("IOCTL_LLKD_SED_IOC_DESTROY_MSG", err, false)
		return err
	}
	return nil
}

// pendingSignal returns the signal pending for the calling user task, or
// 0.
func pendingSignal(c *kernel.Ctx) kernel.Signal {
	if !c.SignalPending() {
		return 0
	}
	var se *kernel.SignalError
	if errors.As(context.Cause(c), &se) {
		return se.Sig
	}
	return kernel.SIGKILL
}

// dmesgKey holds a kernel's "dmesg -C" point: the sequence number of the
// first record dmesg shows (the kernel's clear_seq).
var dmesgKey kernel.LocalKey

func clearSeq(k *kernel.Kernel) *atomic.Uint64 {
	return k.Local(&dmesgKey, func(*kernel.Kernel) any { return new(atomic.Uint64) }).(*atomic.Uint64)
}

// Dmesg returns what dmesg(1) prints in k: the log records since the last
// DmesgClear, one a line with its timestamp.
func Dmesg(k *kernel.Kernel) string {
	k.Log().Flush()
	recs, _ := k.Log().Records(clearSeq(k).Load())
	var b []byte
	for _, r := range recs {
		b = append(b, printk.FormatDmesg(r)...)
		b = append(b, '\n')
	}
	return string(b)
}

// DmesgClear is dmesg -C in k (syslog(SYSLOG_ACTION_CLEAR)): later Dmesg
// calls show only what is logged after it. It moves the point dmesg reads
// from; the records stay in the ring (the console's dmesg still shows
// them, as a reader that opened /dev/kmsg earlier would).
func DmesgClear(k *kernel.Kernel) {
	k.Log().Flush()
	clearSeq(k).Store(k.Log().NextSeq())
}
