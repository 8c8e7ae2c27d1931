package testmod_test

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/testmod"
)

func boot(t *testing.T) (*kernel.Kernel, *module.ModLoader) {
	t.Helper()
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	reg := module.NewRegistry()
	if err := reg.Register(testmod.Info); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return k, module.Loader(k, reg)
}

func shutdown(t *testing.T, k *kernel.Kernel) { ktest.Shutdown(t, k) }

func inTask(t *testing.T, k *kernel.Kernel, comm string, fn func(c *kernel.Ctx)) {
	t.Helper()
	ktest.RunAs(t, k, comm, fn)
}

func insmod(t *testing.T, k *kernel.Kernel, ld *module.ModLoader, args ...string) {
	t.Helper()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "testmod", args...); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
}

func logText(k *kernel.Kernel, seq uint64) []string {
	k.Log().Flush()
	recs, _ := k.Log().Records(seq)
	var out []string
	for _, r := range recs {
		out = append(out, r.Text)
	}
	return out
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func wantErrno(t *testing.T, what string, err error, want kernel.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %s", what, err, want.Name())
	}
}

func TestIoctlNumbersMatchTheirDefinitions(t *testing.T) {
	if n := binary.Size(testmod.Status{}); n != testmod.StatusSize {
		t.Errorf("sizeof(Status) = %d, want %d", n, testmod.StatusSize)
	}
	if n := binary.Size(testmod.Xform{}); n != testmod.XformSize {
		t.Errorf("sizeof(Xform) = %d, want %d", n, testmod.XformSize)
	}
	for _, tc := range []struct {
		name      string
		got, want uint32
	}{
		{"CmdGetStatus", testmod.CmdGetStatus, module.IOR(testmod.Magic, 1, testmod.StatusSize)},
		{"CmdSetValue", testmod.CmdSetValue, module.IOW(testmod.Magic, 2, 8)},
		{"CmdReset", testmod.CmdReset, module.IO(testmod.Magic, 3)},
		{"CmdTransform", testmod.CmdTransform, module.IOWR(testmod.Magic, 4, testmod.XformSize)},
		{"CmdAdd", testmod.CmdAdd, module.IO(testmod.Magic, 5)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#08x, want %#08x", tc.name, tc.got, tc.want)
		}
	}
}

func TestParametersAreListedWithoutLoading(t *testing.T) {
	var got []string
	for _, p := range testmod.Info.Params() {
		got = append(got, p.Name+"="+p.Default+" "+p.Type)
	}
	want := "count=3 int|name=kdefer charp|verbose=N bool|delay_ms=10 uint|fail_init=N bool"
	if strings.Join(got, "|") != want {
		t.Errorf("Params = %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestInitRegistersTheMiscDeviceAndLogs(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	seq := k.Log().NextSeq()
	insmod(t, k, ld, `name="two words"`, "count=0x10")
	want := []string{
		"testmod: loading out-of-tree module taints kernel.",
		"misc testmod: registered, major 10 minor 127, node /dev/testmod",
		"testmod:Init(): loaded: count=16 name=two words verbose=N delay_ms=10",
	}
	if got := logText(k, seq); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", got, want)
	}
	if n := module.Nodes(k); len(n) != 1 || n[0].Path != "/dev/testmod" || n[0].Mode != 0666 {
		t.Errorf("Nodes = %v", n)
	}
	seq = k.Log().NextSeq()
	inTask(t, k, "rmmod", func(c *kernel.Ctx) {
		if err := ld.Rmmod(c, "testmod"); err != nil {
			t.Errorf("Rmmod: %v", err)
		}
	})
	want = []string{"misc testmod: deregistering", "testmod:Exit(): unloaded"}
	if got := logText(k, seq); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", got, want)
	}
	if n := module.Nodes(k); len(n) != 0 {
		t.Errorf("Nodes after rmmod = %v", n)
	}
}

func TestFailInitParameterFailsTheLoad(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		err := ld.Insmod(c, "testmod", "fail_init")
		wantErrno(t, "Insmod", err, kernel.ENODEV)
		if err == nil || err.Error() != "insmod: ERROR: could not insert module testmod: No such device" {
			t.Errorf("err = %v", err)
		}
		_, err = module.Open(c, "/dev/testmod", module.ORdWr)
		wantErrno(t, "Open", err, kernel.ENOENT)
	})
	if got := logText(k, seq); len(got) != 2 || got[0] != "testmod: loading out-of-tree module taints kernel." ||
		got[1] != "testmod:Init(): fail_init set, refusing to load" {
		t.Errorf("log = %q", got)
	}
	if len(ld.Lsmod()) != 0 {
		t.Errorf("Lsmod = %v", ld.Lsmod())
	}
}

func TestBadParameterValuesFailTheLoad(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		err := ld.Insmod(c, "testmod", "verbose=perhaps", "delay_ms=-5", "count=three")
		wantErrno(t, "Insmod", err, kernel.EINVAL)
	})
	want := []string{
		"testmod: loading out-of-tree module taints kernel.",
		"testmod: `perhaps' invalid for parameter `verbose'",
		"testmod: `-5' invalid for parameter `delay_ms'",
		"testmod: `three' invalid for parameter `count'",
	}
	if got := logText(k, seq); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestDeviceOperationsFromAUserTask(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	insmod(t, k, ld, "count=5")
	seq := k.Log().NextSeq()
	var pid int
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		pid = c.Current().PID()
		fd, err := module.Open(c, "/dev/testmod", module.ORdWr)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		defer func() {
			if err := fd.Close(c); err != nil {
				t.Errorf("Close: %v", err)
			}
			wantErrno(t, "double Close", fd.Close(c), kernel.EBADF)
		}()

		buf := make([]byte, testmod.StatusSize)
		if r, err := fd.Ioctl(c, testmod.CmdGetStatus, module.NewUserBuf(buf)); r != 0 || err != nil {
			t.Errorf("GET_STATUS = %d, %v", r, err)
		}
		s, err := testmod.DecodeStatus(buf)
		if err != nil || s.Count != 5 || s.DelayMs != 10 || s.Opens != 1 || s.PID != int32(pid) || s.CommString() != "userapp" {
			t.Errorf("status = %+v (%v)", s, err)
		}

		v := binary.LittleEndian.AppendUint64(nil, 99)
		if _, err := fd.Ioctl(c, testmod.CmdSetValue, module.NewUserBuf(v)); err != nil {
			t.Errorf("SET_VALUE: %v", err)
		}
		if r, err := fd.Ioctl(c, testmod.CmdAdd, module.NewUserArg(1)); r != 100 || err != nil {
			t.Errorf("ADD = %d, %v; want 100", r, err)
		}

		if n, err := fd.Write(c, []byte("hello")); n != 5 || err != nil {
			t.Errorf("Write = %d, %v", n, err)
		}
		_, err = fd.Write(c, make([]byte, testmod.MaxData+1))
		wantErrno(t, "Write too long", err, kernel.EINVAL)
		text := make([]byte, 200)
		n, err := fd.Read(c, text)
		want := "name=kdefer count=5 delay_ms=10 verbose=N value=100 opens=1 len=5\ndata=\"hello\"\n"
		if err != nil || string(text[:n]) != want {
			t.Errorf("Read = %q, %v; want %q", text[:n], err, want)
		}

		for _, tc := range []struct {
			op       uint32
			in, want string
		}{
			{testmod.XformUpper, "Hello, World", "HELLO, WORLD"},
			{testmod.XformReverse, "abc", "cba"},
			{testmod.XformRot13, "Hello", "Uryyb"},
		} {
			x := testmod.Xform{Op: tc.op, Len: uint32(len(tc.in))}
			copy(x.Data[:], tc.in)
			b := x.Encode()
			r, err := fd.Ioctl(c, testmod.CmdTransform, module.NewUserBuf(b))
			out, _ := testmod.DecodeXform(b)
			if r != int64(len(tc.in)) || err != nil || string(out.Data[:out.Len]) != tc.want {
				t.Errorf("TRANSFORM(%d, %q) = %d, %v, %q; want %q", tc.op, tc.in, r, err, out.Data[:out.Len], tc.want)
			}
		}
		bad := testmod.Xform{Op: 9, Len: 1}
		_, err = fd.Ioctl(c, testmod.CmdTransform, module.NewUserBuf(bad.Encode()))
		wantErrno(t, "TRANSFORM bad op", err, kernel.EINVAL)
		long := testmod.Xform{Op: testmod.XformUpper, Len: testmod.XformMax + 1}
		_, err = fd.Ioctl(c, testmod.CmdTransform, module.NewUserBuf(long.Encode()))
		wantErrno(t, "TRANSFORM too long", err, kernel.EINVAL)

		if _, err := fd.Ioctl(c, testmod.CmdReset, nil); err != nil {
			t.Errorf("RESET: %v", err)
		}
		fd.Ioctl(c, testmod.CmdGetStatus, module.NewUserBuf(buf))
		if s, _ := testmod.DecodeStatus(buf); s.Value != 0 || s.Len != 0 {
			t.Errorf("status after reset = %+v", s)
		}

		_, err = fd.Ioctl(c, testmod.CmdGetStatus, module.NewUserBuf(make([]byte, 4)))
		wantErrno(t, "GET_STATUS short buffer", err, kernel.EFAULT)
		_, err = fd.Ioctl(c, testmod.CmdSetValue, module.NewUserArg(5))
		wantErrno(t, "SET_VALUE by value", err, kernel.EFAULT)
		_, err = fd.Ioctl(c, module.IO(testmod.Magic, 42), nil)
		wantErrno(t, "unknown command", err, kernel.ENOTTY)
		_, err = fd.Ioctl(c, module.IOR(0xA9, 1, 4), nil)
		wantErrno(t, "wrong magic", err, kernel.ENOTTY)
		if err == nil || err.Error() != "Inappropriate ioctl for device" {
			t.Errorf("perror text = %v", err)
		}
	})
	lines := logText(k, seq)
	for _, want := range []string{
		`testmod:open(): userapp opened "testmod" (pid ` + strconv.Itoa(pid) + ")",
		"testmod:ioctl(): ioctl 0x8004a901: magic 0xa9 is not ours (0xb5)",
		`testmod:release(): userapp closed "testmod"`,
	} {
		if !hasLine(lines, want) {
			t.Errorf("log %q lacks %q", lines, want)
		}
	}
}

func TestRuntimeParameterWritesReachTheDriver(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	insmod(t, k, ld)
	seq := k.Log().NextSeq()
	inTask(t, k, "sh", func(c *kernel.Ctx) {
		if err := ld.ParamSet(c, "testmod", "count", "7\n"); err != nil {
			t.Errorf("ParamSet(count): %v", err)
		}
		if err := ld.ParamSet(c, "testmod", "verbose", "Y"); err != nil {
			t.Errorf("ParamSet(verbose): %v", err)
		}
		wantErrno(t, "ParamSet(delay_ms)", ld.ParamSet(c, "testmod", "delay_ms", "1"), kernel.EACCES)
		wantErrno(t, "ParamSet(fail_init)", ld.ParamSet(c, "testmod", "fail_init", "1"), kernel.ENOENT)
		fd, err := module.Open(c, "/dev/testmod", module.ORdOnly)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		defer fd.Close(c)
		buf := make([]byte, testmod.StatusSize)
		fd.Ioctl(c, testmod.CmdGetStatus, module.NewUserBuf(buf))
		if s, _ := testmod.DecodeStatus(buf); s.Count != 7 {
			t.Errorf("Count = %d, want 7", s.Count)
		}
	})
	if v, err := ld.ParamGet("testmod", "count"); v != "7" || err != nil {
		t.Errorf("ParamGet(count) = %q, %v", v, err)
	}
	if v, err := ld.ParamGet("testmod", "delay_ms"); v != "10" || err != nil {
		t.Errorf("ParamGet(delay_ms) = %q, %v", v, err)
	}
	if got := logText(k, seq); !hasLine(got, "testmod:ioctl(): ioctl cmd 0x8030b501 arg 0x55d0c0de02a0") {
		t.Errorf("verbose pr_debug missing from %q", got)
	}
}

func TestRmmodWaitsForTheLastClose(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	insmod(t, k, ld)
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		fd, err := module.Open(c, "/dev/testmod", module.ORdOnly)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		err = ld.Rmmod(c, "testmod")
		wantErrno(t, "Rmmod while open", err, kernel.EBUSY)
		if err == nil || err.Error() != "rmmod: ERROR: Module testmod is in use" {
			t.Errorf("err = %v", err)
		}
		fd.Close(c)
		if err := ld.Rmmod(c, "testmod"); err != nil {
			t.Errorf("Rmmod after close: %v", err)
		}
	})
}

func TestRmmodSucceedsAfterAnAppExitsWithoutClosing(t *testing.T) {
	k, ld := boot(t)
	defer shutdown(t, k)
	insmod(t, k, ld)
	seq := k.Log().NextSeq()
	var pid int
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		pid = c.Current().PID()
		if _, err := module.Open(c, "/dev/testmod", module.ORdWr); err != nil {
			t.Errorf("Open: %v", err)
		}
		// return without close(2): exit_files closes it
	})
	if m := ld.Find("testmod"); m == nil {
		t.Fatal("testmod not loaded")
	} else if n := m.Refcount(); n != 0 {
		t.Errorf("Refcount after the app exited = %d, want 0", n)
	}
	inTask(t, k, "rmmod", func(c *kernel.Ctx) {
		if err := ld.Rmmod(c, "testmod"); err != nil {
			t.Errorf("Rmmod: %v", err)
		}
	})
	lines := logText(k, seq)
	closed := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "testmod:release(): ") {
			closed++
		}
	}
	if closed != 1 || !hasLine(lines, `testmod:release(): userapp closed "testmod"`) {
		t.Errorf("log = %q, want one release by userapp (pid %d)", lines, pid)
	}
	if !hasLine(lines, "testmod:Exit(): unloaded") {
		t.Errorf("log = %q, want the module unloaded", lines)
	}
	if len(ld.Lsmod()) != 0 {
		t.Errorf("Lsmod = %v", ld.Lsmod())
	}
}

func TestTwoKernelsRunIndependentInstances(t *testing.T) {
	k1, ld1 := boot(t)
	defer shutdown(t, k1)
	k2, ld2 := boot(t)
	defer shutdown(t, k2)
	insmod(t, k1, ld1, "count=1")
	insmod(t, k2, ld2, "count=2")
	counts := func(k *kernel.Kernel) int32 {
		var s testmod.Status
		inTask(t, k, "app", func(c *kernel.Ctx) {
			fd, err := module.Open(c, "/dev/testmod", module.ORdOnly)
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			defer fd.Close(c)
			buf := make([]byte, testmod.StatusSize)
			fd.Ioctl(c, testmod.CmdGetStatus, module.NewUserBuf(buf))
			s, _ = testmod.DecodeStatus(buf)
		})
		return s.Count
	}
	if c1, c2 := counts(k1), counts(k2); c1 != 1 || c2 != 2 {
		t.Errorf("counts = %d, %d; want 1, 2", c1, c2)
	}
}

func TestConcurrentUsersInRealTimeAreRaceFree(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 4, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, k)
	reg := module.NewRegistry()
	if err := reg.Register(testmod.Info); err != nil {
		t.Fatal(err)
	}
	ld := module.Loader(k, reg)
	run := func(comm string, fn func(c *kernel.Ctx)) *kernel.Task {
		tk, err := k.Spawn(comm, func(c *kernel.Ctx) int { fn(c); return 0 })
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	wait := func(tasks ...*kernel.Task) {
		for _, tk := range tasks {
			select {
			case <-tk.Exited():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not finish", tk)
			}
		}
	}
	wait(run("insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "testmod"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	}))
	var tasks []*kernel.Task
	for i := range 4 {
		tasks = append(tasks, run("app"+strconv.Itoa(i), func(c *kernel.Ctx) {
			for range 50 {
				fd, err := module.Open(c, "/dev/testmod", module.ORdWr)
				if errors.Is(err, kernel.ENOENT) || errors.Is(err, kernel.ENODEV) {
					continue // between rmmod and insmod
				}
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				fd.Ioctl(c, testmod.CmdAdd, module.NewUserArg(1))
				fd.Write(c, []byte("data"))
				fd.Read(c, make([]byte, 128))
				fd.Ioctl(c, testmod.CmdGetStatus, module.NewUserBuf(make([]byte, testmod.StatusSize)))
				fd.Close(c)
			}
		}))
	}
	var reloads int
	tasks = append(tasks, run("sh", func(c *kernel.Ctx) {
		for i := range 50 {
			ld.ParamSet(c, "testmod", "count", strconv.Itoa(i))
			ld.ParamSet(c, "testmod", "verbose", "0")
			if err := ld.Rmmod(c, "testmod"); err == nil {
				reloads++
				if err := ld.Insmod(c, "testmod"); err != nil {
					t.Errorf("reload: %v", err)
				}
			}
			ld.ParamGet("testmod", "name")
		}
	}))
	wait(tasks...)
	t.Logf("%d reloads", reloads)
	if t.Failed() {
		return
	}
	wait(run("rmmod", func(c *kernel.Ctx) { ld.Rmmod(c, "testmod") }))
}
