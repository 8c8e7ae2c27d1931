package sed3_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/sed1"
	"github.com/kdefer/kdefer/modules/sed3"
	"github.com/kdefer/kdefer/workqueue"
)

const dev = "/dev/sed3_drv"

// printCtx is seed-demos §1.2's PRINT_CTX regex.
var printCtx = regexp.MustCompile(`^(?:\S+:\S+\(\): )?(\d{3})\) ([\[ ])([^\]]{1,15}?)([\] ]):(\d+)   \|  ([d.])([N.])([Hhs.])([01])   /\* (\w+)\(\) \*/$`)

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: 250, Quiet: true}, sed3.Info)
}

// client is a user program speaking the sed ioctls (what userapp_sed2's
// menu choices do).
type client struct {
	t  *testing.T
	c  *kernel.Ctx
	fd *module.Fd
}

func open(t *testing.T, c *kernel.Ctx) *client {
	fd, err := module.Open(c, dev, module.ORdWr)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return &client{t: t, c: c, fd: fd}
}

func (cl *client) ioctl(cmd uint32, kd *sed3.SedDs) (sed3.SedDs, error) {
	b := kd.Encode()
	_, err := cl.fd.Ioctl(cl.c, cmd, module.NewUserBuf(b))
	return sed1.DecodeSedDs(b), err
}

func (cl *client) encrypt(msg string) error {
	kd := sed3.SedDs{DataXform: sed3.XfEncrypt, Len: int32(len(msg))}
	copy(kd.Data[:], msg)
	_, err := cl.ioctl(sed3.CmdEncryptMsg, &kd)
	return err
}

func (cl *client) decrypt() error {
	_, err := cl.ioctl(sed3.CmdDecryptMsg, &sed3.SedDs{})
	return err
}

func (cl *client) retrieve() (string, error) {
	kd, err := cl.ioctl(sed3.CmdRetrieveMsg, &sed3.SedDs{})
	return string(kd.Data[:min(max(kd.Len, 0), sed3.MaxData)]), err
}

// session loads sed3_drv with args and runs encrypt, retrieve, decrypt,
// retrieve on "hello" from a user program, then unloads.
func session(t *testing.T, args ...string) (k *kernel.Kernel, got []string) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed3.DrvName, args...)
	demotest.RunFor(t, k, 3*time.Millisecond+time.Duration(k.TickNsec()/3))
	demotest.Run(t, k, "userapp_sed2", func(c *kernel.Ctx) int {
		cl := open(t, c)
		defer cl.fd.Close(c)
		note := func(s string, err error) {
			if err != nil {
				s = "error: " + err.Error()
			}
			got = append(got, s)
		}
		note("encrypted", cl.encrypt("hello"))
		note(cl.retrieve())
		note("decrypted", cl.decrypt())
		note(cl.retrieve())
		return 0
	})
	demotest.RunFor(t, k, 10*time.Millisecond)
	demotest.Rmmod(t, k, ld, sed3.DrvName)
	return k, got
}

func TestIoctlNumbersAreTheBookEras(t *testing.T) {
	for i, cmd := range []uint32{sed3.CmdEncryptMsg, sed3.CmdRetrieveMsg, sed3.CmdDecryptMsg, sed3.CmdDestroyMsg} {
		if want := module.IOR(sed3.Magic, uint32(i+1), 4); cmd != want || cmd != 0x8004A901+uint32(i) {
			t.Errorf("command %d = %#x, want %#x", i+1, cmd, want)
		}
	}
}

// TestRoundTripMatchesGolden: encrypt, retrieve, decrypt, retrieve: the
// message comes back encrypted, then as it was; the log is the golden one.
func TestRoundTripMatchesGolden(t *testing.T) {
	k, got := session(t)
	want := []string{"encrypted", "\x96\x99\x92\x92\x8f", "decrypted", "hello"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("session %q, want %q", got, want)
	}
	golden.Check(t, "testdata/roundtrip.golden", demotest.Dmesg(k, 0))
}

// TestTheWorkRunsInAKworkerOfTheGlobalWorkqueue: sed3_worker's PRINT_CTX is
// a kworker's process context, twice (encrypt and decrypt), where the
// open's is the user program's; each run ends with "work task done".
func TestTheWorkRunsInAKworkerOfTheGlobalWorkqueue(t *testing.T) {
	k, _ := session(t)
	var worker, opener []string
	done := 0
	for _, l := range demotest.Lines(k, 0) {
		if m := printCtx.FindStringSubmatch(l); m != nil {
			ctx := m[2] + m[3] + m[4] + " " + m[6] + m[7] + m[8] + m[9]
			switch m[10] {
			case "sed3_worker":
				worker = append(worker, ctx)
			case "open_miscdrv":
				opener = append(opener, ctx)
			}
		}
		if strings.HasPrefix(l, "sed3_drv:sed3_worker(): [") && strings.HasSuffix(l, "] FYI, work task done, leaving...") {
			done++
		}
	}
	if len(worker) != 2 || done != 2 {
		t.Fatalf("work contexts %q, %d done lines; want 2 and 2", worker, done)
	}
	for _, w := range worker {
		if !strings.HasPrefix(w, "[kworker/") || !strings.HasSuffix(w, "] ...0") {
			t.Errorf("work context %q, want [kworker/N:M] ...0", w)
		}
	}
	if len(opener) != 1 || opener[0] != " userapp_sed2  ...0" {
		t.Errorf("open's context %q, want the user program's", opener)
	}
}

// TestMakeItFailMissesTheDeadline: with make_it_fail=1 the work sleeps past
// its 10 ms deadline: the timer fires in softirq context, the work finds
// it inactive, and retrieve fails with ETIMEDOUT.
func TestMakeItFailMissesTheDeadline(t *testing.T) {
	k, got := session(t, "make_it_fail=1")
	if len(got) < 2 || got[0] != "encrypted" || got[1] != "error: "+kernel.ETIMEDOUT.Error() {
		t.Errorf("session %q, want encrypted then ETIMEDOUT", got)
	}
	lines := demotest.Lines(k, 0)
	for _, want := range []string{
		"sed3_drv:timesup(): *** Timer expired! ***",
		"sed3_drv:sed3_worker(): cancelled the timer while it's inactive! (deadline missed?)",
		"sed3_drv:ioctl_miscdrv(): the encrypt op had timed out! retruning -ETIMEDOUT",
	} {
		if !demotest.Has(lines, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	golden.Check(t, "testdata/make_it_fail.golden", demotest.Dmesg(k, 0))
}

// TestEncryptingTwiceIsEBADRQC: the second encrypt waits for the first and
// is refused: the message is encrypted already.
func TestEncryptingTwiceIsEBADRQC(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed3.DrvName)
	var err1, err2 error
	demotest.Run(t, k, "app", func(c *kernel.Ctx) int {
		cl := open(t, c)
		defer cl.fd.Close(c)
		err1, err2 = cl.encrypt("hello"), cl.encrypt("hello")
		return 0
	})
	if err1 != nil || !errors.Is(err2, kernel.EBADRQC) {
		t.Errorf("encrypt twice: %v, %v; want nil, EBADRQC", err1, err2)
	}
	if !demotest.Has(demotest.Lines(k, 0), "sed3_drv:ioctl_miscdrv(): encrypt op: message is currently encrypted; aborting op...") {
		t.Errorf("log: %q", demotest.Lines(k, 0))
	}
	demotest.Rmmod(t, k, ld, sed3.DrvName)
}

// spin hogs its kworker for 15 ms without sleeping (under the 20 ms
// CPU-hog threshold): the items queued behind it on its CPU stay pending.
func spin(c *kernel.Ctx, w *workqueue.Work) { kernel.Spin(c, 15*int64(time.Millisecond)) }

// TestUnloadCancelsAPendingOperation: an encrypt queued behind a busy item
// of its CPU is still pending when the module is unloaded: exit takes it
// off the workqueue ("yes, there was indeed some pending work"), and it
// never runs.
func TestUnloadCancelsAPendingOperation(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed3.DrvName)
	busy := workqueue.Declare(spin)
	app, err := k.CreateTask(kernel.TaskOpts{Comm: "app", CPU: 0}, func(c *kernel.Ctx) int {
		workqueue.ScheduleWorkOn(c, 0, busy)
		cl := open(t, c)
		defer cl.fd.Close(c)
		if err := cl.encrypt("hello"); err != nil {
			t.Error(err)
		}
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	k.WakeUpProcess(app)
	demotest.Run(t, k, "rmmod", func(c *kernel.Ctx) int {
		kernel.WaitTaskExit(c, app)
		if err := ld.Rmmod(c, sed3.DrvName); err != nil {
			t.Error(err)
		}
		return 0
	})
	demotest.RunFor(t, k, 100*time.Millisecond)
	lines := demotest.Lines(k, 0)
	if !demotest.Has(lines, "sed3_drv:sed3_drv_exit(): yes, there was indeed some pending work; now done...") {
		t.Errorf("no cancel of the pending work:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.Contains(l, "sed3_worker()") {
			t.Errorf("the cancelled work ran: %q", l)
		}
	}
}

// TestUnloadWaitsForARunningOperation: unloaded while the work sleeps in
// its make_it_fail delay, exit waits for it (cancel_work_sync finds it
// running, not pending) and goes on once it has left.
func TestUnloadWaitsForARunningOperation(t *testing.T) {
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed3.DrvName, "make_it_fail=1")
	demotest.Run(t, k, "app", func(c *kernel.Ctx) int {
		cl := open(t, c)
		defer cl.fd.Close(c)
		if err := cl.encrypt("hello"); err != nil {
			t.Error(err)
		}
		return 0
	})
	demotest.RunFor(t, k, 5*time.Millisecond) // the work sleeps until 20 ms
	demotest.Rmmod(t, k, ld, sed3.DrvName)
	recs := demotest.Records(k, 0)
	var leftAt, unloadAt int64 = -1, -1
	for _, r := range recs {
		switch {
		case strings.HasSuffix(r.Text, "FYI, work task done, leaving..."):
			leftAt = r.TimeNs
		case strings.HasSuffix(r.Text, ": unloading"):
			unloadAt = r.TimeNs
		case strings.Contains(r.Text, "yes, there was indeed some pending work"):
			t.Errorf("a running work reported as pending: %q", r.Text)
		}
	}
	if leftAt < 0 || unloadAt < leftAt || leftAt < 20*int64(time.Millisecond) {
		t.Errorf("work left at %d ns, unloading at %d ns; want the exit to wait for the 20 ms work\n%s", leftAt, unloadAt, demotest.Dmesg(k, 0))
	}
}

// TestUserappSed2AgainstSed3: the book's way, userapp_sed2 (package sed2's
// program, from the registry) driving /dev/sed3_drv through its menu:
// encrypt, retrieve, decrypt, retrieve, quit.
func TestUserappSed2AgainstSed3(t *testing.T) {
	app, ok := modules.LookupApp("userapp_sed2")
	if !ok {
		t.Skip("userapp_sed2 is not built in on this branch (package sed2)")
	}
	k, ld := boot(t)
	demotest.Insmod(t, k, ld, sed3.DrvName)
	var out, errb bytes.Buffer
	argv := []string{"userapp_sed2", dev, "hello", "1", "2", "3", "2", "7"}
	code := demotest.Run(t, k, "userapp_sed2", func(c *kernel.Ctx) int { return app.Main(c, argv, &out, &errb) })
	demotest.RunFor(t, k, 10*time.Millisecond)
	demotest.Rmmod(t, k, ld, sed3.DrvName)
	for _, want := range []string{
		"---> Message ENCRYPTED in the kernel driver; retrieve to see <---",
		"len=5, msg=\"\x96\x99\x92\x92\x8f\"",
		"---> Message DECRYPTED in the kernel driver; retrieve to see <---",
		"len=5, msg=\"hello\"",
		"---> Exiting on user choice <---",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("userapp_sed2's output lacks %q:\n%s", want, out.String())
		}
	}
	if code != 0 || errb.Len() != 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if n := strings.Count(demotest.Dmesg(k, 0), "FYI, work task done, leaving..."); n != 2 {
		t.Errorf("%d work runs, want 2:\n%s", n, fmt.Sprint(demotest.Lines(k, 0)))
	}
}
