package sed1_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/golden"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/demotest"
	"github.com/kdefer/kdefer/modules/sed1"
)

const dev = "/dev/sed1_drv"

func boot(t *testing.T, hz jiffies.HZ) (*kernel.Kernel, *module.ModLoader) {
	return demotest.Boot(t, kernel.Config{Virtual: true, CPUs: 2, HZ: hz, Quiet: true}, sed1.Info)
}

// app runs userapp_sed1 with args and returns its exit code and output.
func app(t *testing.T, k *kernel.Kernel, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{sed1.AppName}, args...)
	code = demotest.Run(t, k, sed1.AppName, func(c *kernel.Ctx) int { return sed1.UserappSed1(c, argv, &out, &errb) })
	return code, out.String(), errb.String()
}

// session loads sed1_drv with args, runs the app on "hello" a little
// after, and unloads the module.
func session(t *testing.T, hz jiffies.HZ, args ...string) (k *kernel.Kernel, code int, stdout, stderr string) {
	k, ld := boot(t, hz)
	demotest.Insmod(t, k, ld, sed1.DrvName, args...)
	demotest.RunFor(t, k, 3*time.Millisecond+time.Duration(k.TickNsec()/3))
	code, stdout, stderr = app(t, k, dev, "hello")
	demotest.RunFor(t, k, 10*time.Millisecond)
	demotest.Rmmod(t, k, ld, sed1.DrvName)
	return k, code, stdout, stderr
}

func TestIoctlNumbersAndLayout(t *testing.T) {
	if sed1.CmdEncryptMsg != module.IOR(sed1.Magic, 1, 4) || sed1.CmdEncryptMsg != 0x8004A901 {
		t.Errorf("CmdEncryptMsg = %#x", sed1.CmdEncryptMsg)
	}
	if sed1.CmdDecryptMsg != module.IOR(sed1.Magic, 2, 4) || sed1.CmdDecryptMsg != 0x8004A902 {
		t.Errorf("CmdDecryptMsg = %#x", sed1.CmdDecryptMsg)
	}
	if n := binary.Size(sed1.SedDs{}); n != 524 || sed1.SedDsSize != 524 {
		t.Errorf("sizeof(struct sed_ds) = %d, want 524", n)
	}
	d := sed1.SedDs{DataXform: sed1.XfEncrypt, Len: 3, TimedOut: 1}
	copy(d.Data[:], "abc")
	b := d.Encode()
	want := append([]byte{2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 'a', 'b', 'c'}, make([]byte, 509)...)
	if !bytes.Equal(b, want) {
		t.Errorf("Encode = % x", b[:16])
	}
	if got := sed1.DecodeSedDs(b); got != d {
		t.Errorf("DecodeSedDs(Encode(d)) = %+v", got)
	}
}

func TestTransformIsInvertible(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello", "\x96\x99\x92\x92\x8f"},
		{"abc", "\x9d\x9c\x9b"},
		{"AAAA", "\xbd\xbd\xbd\xbd"},
		{"\xfe", "\x00"},
	} {
		b := []byte(tc.in)
		sed1.Encrypt(b)
		if string(b) != tc.want {
			t.Errorf("Encrypt(%q) = % x, want % x", tc.in, b, tc.want)
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	enc := bytes.Clone(all)
	sed1.Encrypt(enc)
	zeros := 0
	for _, b := range enc {
		if b == 0 {
			zeros++
		}
	}
	if zeros != 1 {
		t.Errorf("%d bytes encrypt to 0, want 1 (0xfe)", zeros)
	}
	sed1.Decrypt(enc)
	if !bytes.Equal(enc, all) {
		t.Errorf("Decrypt(Encrypt(x)) != x")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, hz := range []jiffies.HZ{250, 1000} {
		t.Run(fmt.Sprintf("HZ=%d", hz), func(t *testing.T) {
			k, code, out, errs := session(t, hz)
			want := "device opened: fd=3\n" +
				"msg before encrypt: hello\n" +
				"ioctl IOCTL_LLKD_SED_IOC_ENCRYPT_MSG done; len=5\n" +
				"msg after encrypt: \x96\x99\x92\x92\x8f\n\n" +
				"msg before decrypt: \x96\x99\x92\x92\x8f\n" +
				"ioctl IOCTL_LLKD_SED_IOC_DECRYPT_MSG done; len=5\n" +
				"msg after decrypt: hello\n"
			if code != 0 || out != want || errs != "" {
				t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, want, errs)
			}
			golden.Check(t, fmt.Sprintf("testdata/roundtrip_hz%d.golden", hz), demotest.Dmesg(k, 0))
			lines := demotest.Lines(k, 0)
			for _, w := range []string{
				"sed1_drv:encrypt_decrypt_payload(): processing complete, timeout cancelled",
				"payload: 00000000: 68 65 6c 6c 6f" + strings.Repeat(" ", 35) + "hello",
				"ret payload: 00000000: 96 99 92 92 8f" + strings.Repeat(" ", 35) + ".....",
			} {
				if !demotest.Has(lines, w) {
					t.Errorf("log lacks %q", w)
				}
			}
			for _, l := range lines {
				if strings.Contains(l, "Timer expired") || strings.Contains(l, "timed out") || strings.Contains(l, "SHOW_DELTA") {
					t.Errorf("log has %q", l)
				}
			}
		})
	}
}

var delta = regexp.MustCompile(`^sed1_drv:encrypt_decrypt_payload\(\): delta: (\d+) ns \(= (\d+) us = (\d+) ms\)$`)

func TestMakeItFailMissesTheDeadline(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 1000} {
		t.Run(fmt.Sprintf("HZ=%d", hz), func(t *testing.T) {
			k, code, out, errs := session(t, hz, "make_it_fail=1")
			if code != 1 || out != "device opened: fd=3\nmsg before encrypt: hello\n" || errs != "*** Operation Timed Out ***\n" {
				t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errs)
			}
			if hz == 250 {
				golden.Check(t, "testdata/make_it_fail_hz250.golden", demotest.Dmesg(k, 0))
			}
			lines := demotest.Lines(k, 0)
			i := demotest.Index(lines, 0, "sed1_drv:sed1_drv_init(): init done (make_it_fail is *on*)")
			for _, w := range []string{
				"sed1_drv:encrypt_decrypt_payload(): starting timer + processing now ...",
				"sed1_drv:timesup(): *** Timer expired! ***",
				"sed1_drv:timesup(): 001) [swapper/1]:0   |  ..s1   /* timesup() */",
				"sed1_drv:encrypt_decrypt_payload(): cancelled the timer while it's inactive! (deadline missed?)",
			} {
				if i = demotest.Index(lines, max(i, 0), w); i < 0 {
					t.Fatalf("log lacks %q in order:\n%s", w, strings.Join(lines, "\n"))
				}
			}
			m := delta.FindStringSubmatch(lines[i+1])
			if m == nil {
				t.Fatalf("line after the miss = %q, want SHOW_DELTA", lines[i+1])
			}
			if ns, _ := strconv.ParseInt(m[1], 10, 64); ns < 2000000 {
				t.Errorf("delta %d ns, want at least TIMER_EXPIRE_MS+1 = 2 ms", ns)
			}
			if lines[i+2] != "sed1_drv:ioctl_miscdrv(): ** timed out **" {
				t.Errorf("then %q, want ** timed out **", lines[i+2])
			}
			if !demotest.Has(lines, `sed1_drv:close_miscdrv(): closing "sed1_drv"`) {
				t.Errorf("the device was not closed when the app exited")
			}
		})
	}
}

// The timer fires exactly where the wheel puts jiffies+msecs_to_jiffies(1).
func TestTimerFiresWhenTheWheelSays(t *testing.T) {
	for _, hz := range []jiffies.HZ{100, 250, 300, 1000} {
		k, _, _, _ := session(t, hz, "make_it_fail=1")
		var armed, fired int64 = -1, -1
		for _, r := range demotest.Records(k, 0) {
			switch r.Text {
			case "sed1_drv:encrypt_decrypt_payload(): starting timer + processing now ...":
				armed = r.TimeNs
			case "sed1_drv:timesup(): *** Timer expired! ***":
				fired = r.TimeNs
			}
		}
		j := k.InitialJiffies() + uint64(armed/k.TickNsec())
		want := k.JiffiesToNs(demotest.WheelFireAt(hz, j, j+hz.MsecsToJiffies(sed1.TimerExpireMs)))
		if armed < 0 || fired != want {
			t.Errorf("HZ=%d: armed at %d ns, fired at %d ns, want %d", hz, armed, fired, want)
		}
	}
}

func TestTimedOutIsResetPerOperation(t *testing.T) {
	k, ld := boot(t, 250)
	demotest.Insmod(t, k, ld, sed1.DrvName)
	demotest.Run(t, k, "sh", func(c *kernel.Ctx) int {
		if err := ld.ParamSet(c, sed1.DrvName, "make_it_fail", "1"); err != nil {
			t.Errorf("ParamSet: %v", err)
		}
		return 0
	})
	if code, _, errs := app(t, k, dev, "hello"); code != 1 || errs != "*** Operation Timed Out ***\n" {
		t.Errorf("with make_it_fail=1: exit %d, stderr %q", code, errs)
	}
	demotest.Run(t, k, "sh", func(c *kernel.Ctx) int {
		if err := ld.ParamSet(c, sed1.DrvName, "make_it_fail", "0"); err != nil {
			t.Errorf("ParamSet: %v", err)
		}
		return 0
	})
	if code, out, errs := app(t, k, dev, "hello"); code != 0 || !strings.HasSuffix(out, "msg after decrypt: hello\n") {
		t.Errorf("after make_it_fail=0: exit %d, stdout %q, stderr %q (timed_out stuck?)", code, out, errs)
	}
	if v, _ := ld.ParamGet(sed1.DrvName, "make_it_fail"); v != "0" {
		t.Errorf("make_it_fail = %q", v)
	}
	demotest.Rmmod(t, k, ld, sed1.DrvName)
}

func TestBadIoctls(t *testing.T) {
	k, ld := boot(t, 250)
	demotest.Insmod(t, k, ld, sed1.DrvName)
	seq := k.Log().NextSeq()
	demotest.Run(t, k, "bad", func(c *kernel.Ctx) int {
		fd, err := module.Open(c, dev, module.ORdWr)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer fd.Close(c)
		buf := func(d sed1.SedDs) *module.UserArg { return module.NewUserBuf(d.Encode()) }
		ok := sed1.SedDs{DataXform: sed1.XfEncrypt, Len: 1}
		for _, tc := range []struct {
			name string
			cmd  uint32
			arg  *module.UserArg
			want kernel.Errno
		}{
			{"bad magic", module.IOR(0xA8, 1, 4), buf(ok), kernel.ENOTTY},
			{"bad nr", module.IOR(sed1.Magic, 3, 4), buf(ok), kernel.ENOTTY},
			{"nr 0", module.IOR(sed1.Magic, 0, 4), buf(ok), kernel.ENOTTY},
			{"_IO", module.IO(sed1.Magic, 1), buf(ok), kernel.ENOTTY},
			{"by value", sed1.CmdEncryptMsg, module.NewUserArg(7), kernel.EFAULT},
			{"short buffer", sed1.CmdDecryptMsg, module.NewUserBuf(make([]byte, 100)), kernel.EFAULT},
			{"len too big", sed1.CmdEncryptMsg, buf(sed1.SedDs{DataXform: sed1.XfEncrypt, Len: 513}), kernel.EINVAL},
			{"negative len", sed1.CmdEncryptMsg, buf(sed1.SedDs{DataXform: sed1.XfEncrypt, Len: -1}), kernel.EINVAL},
		} {
			r, err := fd.Ioctl(c, tc.cmd, tc.arg)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: ioctl = %d, %v; want %s", tc.name, r, err, tc.want.Name())
			}
		}
		// XF_NONE: nothing is done, a zeroed sed_ds comes back.
		none := sed1.SedDs{DataXform: sed1.XfNone, Len: 2, TimedOut: 1}
		b := none.Encode()
		if _, err := fd.Ioctl(c, sed1.CmdEncryptMsg, module.NewUserBuf(b)); err != nil || !bytes.Equal(b, make([]byte, sed1.SedDsSize)) {
			t.Errorf("XF_NONE: %v, % x", err, b[:16])
		}
		// The transform follows data_xform, not the command.
		dec := sed1.SedDs{DataXform: sed1.XfDecrypt, Len: 5}
		copy(dec.Data[:], "\x96\x99\x92\x92\x8f")
		b = dec.Encode()
		fd.Ioctl(c, sed1.CmdEncryptMsg, module.NewUserBuf(b))
		if got := sed1.DecodeSedDs(b); string(got.Data[:got.Len]) != "hello" || got.DataXform != sed1.XfDecrypt {
			t.Errorf("decrypt through the encrypt command = %+v", got)
		}
		return 0
	})
	lines := demotest.Lines(k, seq)
	for _, w := range []string{
		"sed1_drv:ioctl_miscdrv(): ioctl fail; magic # mismatch",
		"sed1_drv:ioctl_miscdrv(): ioctl fail; invalid cmd?",
		"sed1_drv:ioctl_miscdrv(): copy_from_user() failed",
		"sed1_drv:ioctl_miscdrv(): ioctl fail; invalid payload len 513",
		"sed1_drv:ioctl_miscdrv(): ioctl fail; invalid payload len -1",
		"sed1_drv:process_it(): data transform type: XF_NONE",
		"sed1_drv:process_it(): data transform type: XF_DECRYPT",
	} {
		if !demotest.Has(lines, w) {
			t.Errorf("log lacks %q", w)
		}
	}
	demotest.Rmmod(t, k, ld, sed1.DrvName)
}

func TestDummyReadWrite(t *testing.T) {
	k, ld := boot(t, 250)
	demotest.Insmod(t, k, ld, sed1.DrvName)
	seq := k.Log().NextSeq()
	demotest.Run(t, k, "cat", func(c *kernel.Ctx) int {
		fd, err := module.Open(c, dev, module.ORdWr)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if n, err := fd.Read(c, make([]byte, 10)); n != 10 || err != nil {
			t.Errorf("Read = %d, %v", n, err)
		}
		if n, err := fd.Write(c, []byte("abc")); n != 3 || err != nil {
			t.Errorf("Write = %d, %v", n, err)
		}
		fd.Close(c)
		return 0
	})
	got := demotest.Lines(k, seq)
	if len(got) != 5 || !strings.HasPrefix(got[0], "sed1_drv:open_miscdrv(): ") ||
		strings.Join(got[1:], "\n") != "sed1_drv:open_miscdrv(): opening \"sed1_drv\" now\n"+
			"sed1_drv:read_miscdrv(): to read 10 bytes\n"+
			"sed1_drv:write_miscdrv(): to write 3 bytes\n"+
			"sed1_drv:close_miscdrv(): closing \"sed1_drv\"" {
		t.Errorf("log = %q", got)
	}
	if !regexp.MustCompile(`^sed1_drv:open_miscdrv\(\): 00\d\)  cat :\d+   \|  \.\.\.0   /\* open_miscdrv\(\) \*/$`).MatchString(got[0]) {
		t.Errorf("PRINT_CTX in open = %q, want a user task in process context", got[0])
	}
	demotest.Rmmod(t, k, ld, sed1.DrvName)
}

func TestAppUsageErrors(t *testing.T) {
	k, ld := boot(t, 250)
	demotest.Insmod(t, k, ld, sed1.DrvName)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: userapp_sed1 device_file message\n"},
		{[]string{dev}, "Usage: userapp_sed1 device_file message\n"},
		{[]string{dev, ""}, "userapp_sed1: invalid message\n"},
		{[]string{dev, strings.Repeat("x", 513)}, "userapp_sed1: invalid message\n"},
		{[]string{"/dev/nosuch", "hi"}, "open: No such file or directory\n"},
	} {
		if code, out, errs := app(t, k, tc.args...); code != 1 || out != "" || errs != tc.want {
			t.Errorf("userapp_sed1 %q: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
	// The longest message works.
	long := strings.Repeat("k", sed1.MaxData)
	if code, out, _ := app(t, k, dev, long); code != 0 || !strings.HasSuffix(out, "msg after decrypt: "+long+"\n") {
		t.Errorf("512-byte message: exit %d, stdout %q", code, out)
	}
	demotest.Rmmod(t, k, ld, sed1.DrvName)
}

func TestDebugOff(t *testing.T) {
	k, code, _, _ := session(t, 250, "debug=N", "make_it_fail=1")
	want := []string{
		"sed1_drv: loading out-of-tree module taints kernel.",
		"misc sed1_drv: LLKD sed1_drv misc driver (major # 10) registered, minor# = 127,",
		"dev node is /dev/sed1_drv",
		"sed1_drv:sed1_drv_init(): init done (make_it_fail is *on*)",
		`sed1_drv:open_miscdrv(): opening "sed1_drv" now`,
		"sed1_drv:timesup(): *** Timer expired! ***",
		"delta",
		`sed1_drv:close_miscdrv(): closing "sed1_drv"`,
	}
	got := demotest.Lines(k, 0)
	if len(got) == len(want) && delta.MatchString(got[6]) {
		got[6] = "delta"
	}
	if code != 1 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("exit %d, log =\n%s\nwant\n%s", code, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTwoKernelsHaveTheirOwnDriver(t *testing.T) {
	k1, ld1 := boot(t, 250)
	k2, ld2 := boot(t, 250)
	demotest.Insmod(t, k1, ld1, sed1.DrvName, "make_it_fail=1")
	demotest.Insmod(t, k2, ld2, sed1.DrvName)
	if code, _, _ := app(t, k1, dev, "one"); code != 1 {
		t.Errorf("kernel 1 (make_it_fail=1): exit %d, want 1", code)
	}
	if code, _, _ := app(t, k2, dev, "two"); code != 0 {
		t.Errorf("kernel 2: exit %d, want 0", code)
	}
	demotest.Rmmod(t, k1, ld1, sed1.DrvName)
	demotest.Rmmod(t, k2, ld2, sed1.DrvName)
}

func TestParameters(t *testing.T) {
	var got []string
	for _, p := range sed1.Info.Params() {
		got = append(got, fmt.Sprintf("%s=%s %s %04o", p.Name, p.Default, p.Type, p.Perm))
	}
	if want := "make_it_fail=0 int 0660|debug=Y bool 0444"; strings.Join(got, "|") != want {
		t.Errorf("Params = %q, want %q", strings.Join(got, "|"), want)
	}
}

// In real time, with several apps at once (the C driver's single timer is
// shared by concurrent ioctls: an app may see another's timeout, as there).
func TestRealTimeIsRaceFree(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps a second")
	}
	k, ld := demotest.Boot(t, kernel.Config{CPUs: 4, Quiet: true}, sed1.Info)
	demotest.Insmod(t, k, ld, sed1.DrvName)
	done := make(chan int, 3)
	for i := range 3 {
		_, err := k.Spawn(sed1.AppName, func(c *kernel.Ctx) int {
			var out, errb bytes.Buffer
			code := sed1.UserappSed1(c, []string{sed1.AppName, dev, "msg" + strconv.Itoa(i)}, &out, &errb)
			if code == 0 && !strings.HasSuffix(out.String(), "msg after decrypt: msg"+strconv.Itoa(i)+"\n") {
				t.Errorf("app %d: %q", i, out.String())
			}
			done <- code
			return code
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case code := <-done:
			if code != 0 && code != 1 {
				t.Errorf("exit %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("apps did not finish")
		}
	}
	demotest.Rmmod(t, k, ld, sed1.DrvName)
}
