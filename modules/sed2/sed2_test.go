package sed2_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/sed2"
)

const dev = "/dev/sed2_drv"

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, Quiet: true}, sed2.Info)
}

// app runs userapp_sed2 with args and returns its exit code and output.
func app(t *testing.T, k *kernel.Kernel, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{sed2.AppName}, args...)
	code = demotest.Run(t, k, sed2.AppName, func(c *kernel.Ctx) int { return sed2.UserappSed2(c, argv, &out, &errb) })
	return code, out.String(), errb.String()
}

// session loads sed2_drv with params, runs the app on "hello" with the
// menu choices, and unloads the module; it returns what a golden file
// holds: the command, the app's stdout and stderr, its status and the
// kernel log.
func session(t *testing.T, params []string, choices ...string) (k *kernel.Kernel, transcript string) {
	t.Helper()
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName, params...)
	demotest.RunFor(t, k, 3*time.Millisecond)
	args := append([]string{dev, "hello"}, choices...)
	code, out, errs := app(t, k, args...)
	demotest.RunFor(t, k, 100*time.Millisecond)
	demotest.Rmmod(t, k, ld, sed2.DrvName)
	return k, fmt.Sprintf("$ insmod sed2_drv %s\n$ %s %s\n%s\n--- stderr\n%s--- exit status %d\n--- dmesg\n%s",
		strings.Join(params, " "), sed2.AppName, strings.Join(args, " "), out, errs, code, demotest.Dmesg(k, 0))
}

// The whole round trip: encrypt, retrieve the ciphertext, decrypt,
// retrieve the cleartext, destroy, quit.
func TestRoundTripMatchesGolden(t *testing.T) {
	k, got := session(t, nil, "1", "2", "3", "2", "4", "7")
	golden.Check(t, "testdata/roundtrip.golden", got)
	for _, want := range []string{
		"     len=5, msg=\"\x96\x99\x92\x92\x8f\"\n",
		"     len=5, msg=\"hello\"\n",
		"--- exit status 0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	lines := demotest.Lines(k, 0)
	if n := count(lines, "sed2_drv:worker_kthread(): processing complete, timeout cancelled"); n != 2 {
		t.Errorf("%d operations kept their deadline, want 2", n)
	}
}

// make_it_fail=1: the work sleeps 20 ms, the 10 ms timer fires first,
// retrieve reports the timeout.
func TestMakeItFailMissesTheDeadline(t *testing.T) {
	k, got := session(t, []string{"make_it_fail=1"}, "1", "2", "4", "7")
	golden.Check(t, "testdata/make_it_fail.golden", got)
	for _, want := range []string{
		"ioctl IOCTL_LLKD_SED_IOC_RETRIEVE_MSG failed: *** Operation Timed Out ***\n" +
			"userapp_sed2: *** retrieve op failed (see kernel logs) ***\n",
		"---> Message DESTROYED within the kernel driver <---",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	lines := demotest.Lines(k, 0)
	i := demotest.Index(lines, 0, "sed2_drv:sed2_drv_init(): init done (make_it_fail is *on*)")
	for _, w := range []string{
		"sed2_drv:worker_kthread(): starting timer + processing now ...",
		"sed2_drv:timesup(): *** Timer expired! ***",
		"sed2_drv:worker_kthread(): cancelled the timer while it's inactive! (deadline missed?)",
	} {
		if i = demotest.Index(lines, max(i, 0), w); i < 0 {
			t.Fatalf("log lacks %q in order:\n%s", w, strings.Join(lines, "\n"))
		}
	}
	if !regexp.MustCompile(`^sed2_drv:timesup\(\): 00\d\) \[(swapper|ksoftirqd)/\d\]:\d+   \|  \.\.s1   /\* timesup\(\) \*/$`).MatchString(lines[demotest.Index(lines, 0, "sed2_drv:timesup(): *** Timer expired! ***")+1]) {
		t.Errorf("timesup's PRINT_CTX is not softirq context")
	}
	m := delta.FindStringSubmatch(lines[i+1])
	if m == nil {
		t.Fatalf("line after the miss = %q, want SHOW_DELTA", lines[i+1])
	}
	if ns, _ := strconv.ParseInt(m[1], 10, 64); ns < 20000000 {
		t.Errorf("delta %d ns, want at least TIMER_EXPIRE_MS+10 = 20 ms", ns)
	}
	if !demotest.Has(lines, "sed2_drv:ioctl_miscdrv(): the encrypt op had timed out! retruning -ETIMEDOUT") {
		t.Errorf("retrieve did not log the timeout")
	}
}

var delta = regexp.MustCompile(`^sed2_drv:worker_kthread\(\): delta: (\d+) ns \(= (\d+) us = (\d+) ms\)$`)

// Encrypting twice is refused with EBADRQC (and the app, as in C, then
// asks for an encrypt before anything else).
func TestEncryptTwiceIsEBADRQC(t *testing.T) {
	k, got := session(t, nil, "1", "1", "2", "7")
	golden.Check(t, "testdata/encrypt_twice.golden", got)
	want := "ioctl IOCTL_LLKD_SED_IOC_ENCRYPT_MSG failed: Invalid request code\nInvalid request, message is already encrypted\n--- exit"
	if !strings.Contains(got, want) || !strings.Contains(got, "You need to first Encrypt the message") {
		t.Errorf("transcript lacks %q and the guard after it", want)
	}
	if !demotest.Has(demotest.Lines(k, 0), "sed2_drv:ioctl_miscdrv(): encrypt op: message is currently encrypted; aborting op...") {
		t.Errorf("driver did not log the refusal")
	}
}

func count(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

// ioctls runs fn in a user task with /dev/sed2_drv open.
func ioctls(t *testing.T, k *kernel.Kernel, fn func(c *kernel.Ctx, fd *module.Fd)) {
	t.Helper()
	demotest.Run(t, k, "test", func(c *kernel.Ctx) int {
		fd, err := module.Open(c, dev, module.ORdWr)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer fd.Close(c)
		fn(c, fd)
		return 0
	})
}

func encrypt(c *kernel.Ctx, fd *module.Fd, msg string) error {
	kd := sed2.SedDs{DataXform: sed2.XfEncrypt, Len: int32(len(msg))}
	copy(kd.Data[:], msg)
	_, err := fd.Ioctl(c, sed2.CmdEncryptMsg, module.NewUserBuf(kd.Encode()))
	return err
}

func retrieve(c *kernel.Ctx, fd *module.Fd) (string, error) {
	b := (&sed2.SedDs{DataXform: sed2.XfRetrieve}).Encode()
	_, err := fd.Ioctl(c, sed2.CmdRetrieveMsg, module.NewUserBuf(b))
	if err != nil {
		return "", err
	}
	kd := decode(b)
	return string(kd.Data[:kd.Len]), nil
}

func decode(b []byte) sed2.SedDs {
	var kd sed2.SedDs
	kd.DataXform = int32(b[0]) | int32(b[1])<<8
	kd.Len = int32(b[4]) | int32(b[5])<<8
	kd.TimedOut = int32(b[8])
	copy(kd.Data[:], b[12:])
	return kd
}

func simple(c *kernel.Ctx, fd *module.Fd, cmd uint32) error {
	_, err := fd.Ioctl(c, cmd, module.NewUserBuf((&sed2.SedDs{}).Encode()))
	return err
}

// The state machine, driven straight through ioctl(2), back to back: each
// ioctl waits for the operation before it, so the answers do not depend on
// when the worker runs.
func TestEachIoctlWaitsForTheOperationBeforeIt(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	ioctls(t, k, func(c *kernel.Ctx, fd *module.Fd) {
		check := func(what string, err, want error) {
			t.Helper()
			if !errors.Is(err, want) && !(err == nil && want == nil) {
				t.Errorf("%s: %v, want %v", what, err, want)
			}
		}
		if m, err := retrieve(c, fd); err != nil || m != "" {
			t.Errorf("retrieve from a fresh driver = %q, %v", m, err)
		}
		check("encrypt", encrypt(c, fd, "hello"), nil)
		check("encrypt again", encrypt(c, fd, "hello"), kernel.EBADRQC)
		if m, err := retrieve(c, fd); err != nil || m != "\x96\x99\x92\x92\x8f" {
			t.Errorf("retrieve after encrypt = %q, %v", m, err)
		}
		check("decrypt", simple(c, fd, sed2.CmdDecryptMsg), nil)
		check("decrypt again", simple(c, fd, sed2.CmdDecryptMsg), kernel.EBADRQC)
		if m, err := retrieve(c, fd); err != nil || m != "hello" {
			t.Errorf("retrieve after decrypt = %q, %v", m, err)
		}
		check("encrypt after decrypt", encrypt(c, fd, "abc"), nil)
		check("destroy", simple(c, fd, sed2.CmdDestroyMsg), nil)
		if m, err := retrieve(c, fd); err != nil || m != "" {
			t.Errorf("retrieve after destroy = %q, %v", m, err)
		}
		check("encrypt after destroy", encrypt(c, fd, "x"), nil)
	})
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestTimeoutStaysUntilDestroy(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName, "make_it_fail=1")
	ioctls(t, k, func(c *kernel.Ctx, fd *module.Fd) {
		if err := encrypt(c, fd, "hello"); err != nil {
			t.Fatalf("encrypt: %v", err)
		}
		for range 2 {
			if _, err := retrieve(c, fd); !errors.Is(err, kernel.ETIMEDOUT) {
				t.Errorf("retrieve after a missed deadline: %v, want ETIMEDOUT", err)
			}
		}
		if err := ld.ParamSet(c, sed2.DrvName, "make_it_fail", "0"); err != nil {
			t.Fatal(err)
		}
		if err := simple(c, fd, sed2.CmdDestroyMsg); err != nil {
			t.Fatal(err)
		}
		if err := encrypt(c, fd, "hello"); err != nil {
			t.Fatal(err)
		}
		if m, err := retrieve(c, fd); err != nil || m != "\x96\x99\x92\x92\x8f" {
			t.Errorf("after destroy and make_it_fail=0: %q, %v", m, err)
		}
	})
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestBadIoctlsGetTheDriversErrors(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	seq := k.Log().NextSeq()
	ioctls(t, k, func(c *kernel.Ctx, fd *module.Fd) {
		buf := func(d sed2.SedDs) *module.UserArg { return module.NewUserBuf(d.Encode()) }
		for _, tc := range []struct {
			name string
			cmd  uint32
			arg  *module.UserArg
			want kernel.Errno
		}{
			{"bad magic", module.IOR(0xA8, 1, 4), buf(sed2.SedDs{}), kernel.ENOTTY},
			{"bad nr", module.IOR(sed2.Magic, 5, 4), buf(sed2.SedDs{}), kernel.ENOTTY},
			{"nr 0", module.IOR(sed2.Magic, 0, 4), buf(sed2.SedDs{}), kernel.ENOTTY},
			{"by value", sed2.CmdEncryptMsg, module.NewUserArg(7), kernel.EFAULT},
			{"len 0", sed2.CmdEncryptMsg, buf(sed2.SedDs{DataXform: sed2.XfEncrypt}), kernel.EINVAL},
			{"len too big", sed2.CmdEncryptMsg, buf(sed2.SedDs{DataXform: sed2.XfEncrypt, Len: 513}), kernel.EINVAL},
			{"retrieve to a short buffer", sed2.CmdRetrieveMsg, module.NewUserBuf(make([]byte, 10)), kernel.EFAULT},
		} {
			if r, err := fd.Ioctl(c, tc.cmd, tc.arg); !errors.Is(err, tc.want) {
				t.Errorf("%s: ioctl = %d, %v; want %s", tc.name, r, err, tc.want.Name())
			}
		}
	})
	lines := demotest.Lines(k, seq)
	for _, w := range []string{
		"sed2_drv:ioctl_miscdrv(): ioctl fail; magic # mismatch",
		"sed2_drv:ioctl_miscdrv(): ioctl fail; invalid cmd?",
		"sed2_drv:ioctl_miscdrv(): copy_from_user() failed",
		"sed2_drv:ioctl_miscdrv(): no data passed (len is 0)",
		"sed2_drv:ioctl_miscdrv(): ioctl fail; invalid payload len 513",
		"sed2_drv:ioctl_miscdrv(): copy_to_user() failed",
	} {
		if !demotest.Has(lines, w) {
			t.Errorf("log lacks %q", w)
		}
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestTheWorkRunsInTheWorkerKthread(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	w := demotest.FindTask(k, sed2.WorkerComm)
	if w == nil || !w.IsKthread() || w.Parent() != k.Kthreadd() {
		t.Fatalf("no kernel thread [%s] after insmod: %v", sed2.WorkerComm, w)
	}
	if want := fmt.Sprintf("sed2_drv:sed2_drv_init(): worker kthread created... (PID %d)", w.PID()); !demotest.Has(demotest.Lines(k, 0), want) {
		t.Errorf("log lacks %q", want)
	}
	app(t, k, dev, "hi", "1", "7")
	ctx := regexp.MustCompile(`^sed2_drv:worker_kthread\(\): 00\d\) \[sed2_drv/worker\]:` + strconv.Itoa(w.PID()) + `   \|  \.\.\.0   /\* worker_kthread\(\) \*/$`)
	n := 0
	for _, l := range demotest.Lines(k, 0) {
		if ctx.MatchString(l) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d PRINT_CTX lines of the worker in process context, want 1", n)
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
	if !w.HasExited() {
		t.Errorf("rmmod left [%s] running", sed2.WorkerComm)
	}
}

func TestTheAppDetectsAMessageTheDriverHolds(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	app(t, k, dev, "hello", "1", "7")
	_, out, _ := app(t, k, dev, "other", "2", "7")
	want := "Detected that the driver already holds a message:\n" +
		"len = 5, msg = \"\x96\x99\x92\x92\x8f\"\n" +
		"RECOMMENDATION: Destroy the message and restart app.\n   ***  Menu  ***"
	if !strings.Contains(out, want) || !strings.Contains(out, "     len=5, msg=\"\x96\x99\x92\x92\x8f\"\n") {
		t.Errorf("second app's output lacks %q and a retrieve without a first encrypt:\n%s", want, out)
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestTheAppsGuardsRefuseOutOfOrderChoices(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	_, out, _ := app(t, k, dev, "hello", "2", "3", "4", "1", "4", "1", "2", "0", "x", "7")
	for _, want := range []string{
		">  2\nYou need to first Encrypt the message, thereby pushing it to the kernel driver\n",
		">  3\nYou need to first Encrypt the message, thereby pushing it to the kernel driver\n",
		">  4\nYou need to first Encrypt the message, thereby pushing it to the kernel driver\n",
		">  1\nThe message is Destroyed; please restart the app now ...\n",
		">  2\nThe message is Destroyed; please restart the app now ...\n",
		">  0\n---> Unknown choice (0) <---\n",
		">  x\n---> Unknown choice (0) <---\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestTheAppExitsCleanlyAtTheEndOfItsChoices(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	code, out, errs := app(t, k, dev, "hello", "1")
	if code != 0 || errs != "" || !strings.HasSuffix(out, ">  userapp_sed2: reading your choice failed; pl try again...\n") {
		t.Errorf("exit %d, stderr %q, stdout ends %q", code, errs, out[max(0, len(out)-80):])
	}
	if !demotest.Has(demotest.Lines(k, 0), `sed2_drv:close_miscdrv(): closing "sed2_drv"`) {
		t.Errorf("the device was not closed")
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestTheAppReadsChoicesFromAReader(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	var out, errb bytes.Buffer
	code := demotest.Run(t, k, sed2.AppName, func(c *kernel.Ctx) int {
		return sed2.UserappSed2Input(c, []string{sed2.AppName, dev, "hello"}, strings.NewReader("1\n2 7\n"), &out, &errb)
	})
	if code != 0 || errb.Len() != 0 || !strings.Contains(out.String(), ">  \n---> Message ENCRYPTED") ||
		!strings.Contains(out.String(), "     len=5, msg=\"\x96\x99\x92\x92\x8f\"\n") || !strings.HasSuffix(out.String(), ">  ---> Exiting on user choice <---\n") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, errb.String(), out.String())
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestTheAppsDmesgAndDmesgClear(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	_, out, _ := app(t, k, dev, "hello", "5", "6", "5", "7")
	first, rest, _ := strings.Cut(out, "---> Clear kernel log : sudo dmesg -C <---\n")
	if !strings.Contains(first, "] sed2_drv:sed2_drv_init(): init done (make_it_fail is off)\n") {
		t.Errorf("choice 5 does not show the log:\n%s", first)
	}
	if strings.Contains(rest, "init done") || !strings.Contains(rest, "---> View kernel log : dmesg(1) <---\n\n   ***  Menu") {
		t.Errorf("choice 5 after 6 shows old records:\n%s", rest)
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestAppUsageErrorsExitOne(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: userapp_sed2 device_file message_to_encrypt\n"},
		{[]string{dev}, "Usage: userapp_sed2 device_file message_to_encrypt\n"},
		{[]string{dev, ""}, "userapp_sed2: invalid message\n"},
		{[]string{dev, strings.Repeat("x", 513)}, "userapp_sed2: invalid message\n"},
		{[]string{"/dev/nosuch", "hi"}, "open: No such file or directory\n"},
	} {
		if code, out, errs := app(t, k, tc.args...); code != 1 || out != "" || errs != tc.want {
			t.Errorf("userapp_sed2 %q: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}

func TestIoctlNumbersAreTheBookErasIOR(t *testing.T) {
	for i, cmd := range []uint32{sed2.CmdEncryptMsg, sed2.CmdRetrieveMsg, sed2.CmdDecryptMsg, sed2.CmdDestroyMsg} {
		if want := module.IOR(sed2.Magic, uint32(i+1), 4); cmd != want || cmd != 0x8004A901+uint32(i) {
			t.Errorf("command %d = %#x, want %#x", i+1, cmd, want)
		}
	}
}

func TestParametersHaveTheBooksDefaults(t *testing.T) {
	var got []string
	for _, p := range sed2.Info.Params() {
		got = append(got, fmt.Sprintf("%s=%s %s %04o", p.Name, p.Default, p.Type, p.Perm))
	}
	if want := "make_it_fail=0 int 0660|debug=Y bool 0444"; strings.Join(got, "|") != want {
		t.Errorf("Params = %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestTwoKernelsHaveTheirOwnDriver(t *testing.T) {
	k1, ld1 := boot(t)
	k2, ld2 := boot(t)
	demotest.Insmod(t, k1, ld1, sed2.DrvName, "make_it_fail=1")
	demotest.Insmod(t, k2, ld2, sed2.DrvName)
	if _, _, errs := app(t, k1, dev, "one", "1", "2", "7"); !strings.Contains(errs, "Timed Out") {
		t.Errorf("kernel 1 (make_it_fail=1): stderr %q", errs)
	}
	if _, out, errs := app(t, k2, dev, "two", "1", "3", "2", "7"); errs != "" || !strings.Contains(out, "msg=\"two\"") {
		t.Errorf("kernel 2: stderr %q", errs)
	}
	demotest.Rmmod(t, k1, ld1, sed2.DrvName)
	demotest.Rmmod(t, k2, ld2, sed2.DrvName)
}

// In real time, several apps at once on the one shared buffer: the
// driver's lock keeps it whole (-race checks the rest).
func TestRealTimeAppsAreRaceFree(t *testing.T) {
	k, ld := demotest.Boot(t, kernel.Config{CPUs: 4, Quiet: true}, sed2.Info)
	demotest.Insmod(t, k, ld, sed2.DrvName)
	done := make(chan int, 4)
	for i := range 4 {
		_, err := k.Spawn(sed2.AppName, func(c *kernel.Ctx) int {
			var out, errb bytes.Buffer
			code := sed2.UserappSed2(c, []string{sed2.AppName, dev, "msg" + strconv.Itoa(i), "1", "2", "3", "2", "4", "7"}, &out, &errb)
			done <- code
			return code
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d", code)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("apps did not finish")
		}
	}
	demotest.Rmmod(t, k, ld, sed2.DrvName)
}
