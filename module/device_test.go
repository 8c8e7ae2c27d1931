package module_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/printk"
)

func TestIOCMatchesAsmGenericLayout(t *testing.T) {
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"_IOR(0xA9,1,int)", module.IOR(0xA9, 1, 4), 0x8004A901},
		{"_IOR(0xA9,2,int)", module.IOR(0xA9, 2, 4), 0x8004A902},
		{"_IOW('k',1,unsigned long)", module.IOW('k', 1, 8), 0x40086B01},
		{"_IO('k',2)", module.IO('k', 2), 0x00006B02},
		{"_IOW('k',3,unsigned long)", module.IOW('k', 3, 8), 0x40086B03},
		{"_IO('k',4)", module.IO('k', 4), 0x00006B04},
		{"_IOW(0xA9,1,struct sed_ds)", module.IOW(0xA9, 1, 524), 0x420CA901},
		{"_IOR(0xA9,2,struct sed_ds)", module.IOR(0xA9, 2, 524), 0x820CA902},
		{"_IOWR(0xA9,3,struct sed_ds)", module.IOWR(0xA9, 3, 524), 0xC20CA903},
		{"_IO(0xA9,4)", module.IO(0xA9, 4), 0x0000A904},
		{"_IOC(3,0xff,0xff,0x3fff)", module.IOC(3, 0xff, 0xff, 0x3fff), 0xFFFFFFFF},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#08x, want %#08x", tc.name, tc.got, tc.want)
		}
	}
	cmd := module.IOWR(0xA9, 3, 524)
	if module.IOCDir(cmd) != module.IOCRead|module.IOCWrite || module.IOCType(cmd) != 0xA9 ||
		module.IOCNr(cmd) != 3 || module.IOCSize(cmd) != 524 {
		t.Errorf("decode %#x = dir %d type %#x nr %d size %d", cmd, module.IOCDir(cmd), module.IOCType(cmd), module.IOCNr(cmd), module.IOCSize(cmd))
	}
	if d := module.IOCDir(module.IO('k', 2)); d != module.IOCNone {
		t.Errorf("_IOC_DIR(_IO) = %d", d)
	}
	defer func() {
		if recover() == nil {
			t.Error("IOR with a 16 KiB size did not panic")
		}
	}()
	module.IOR(1, 1, 1<<14)
}

// echoDev is a driver registered by a test task (no module owns it).
type echoDev struct {
	misc     module.MiscDevice
	opens    []string
	releases int
	data     []byte
	kept     []byte // the slice Write was handed, kept to prove it is a copy
	lastArg  *module.UserArg
	openErr  error
}

const (
	echoSet    = 0x40086501 // _IOW('e', 1, __u64)
	echoGet    = 0x80086502 // _IOR('e', 2, __u64)
	echoIncr   = 0xC0046503 // _IOWR('e', 3, __u32)
	echoDouble = 0x00006504 // _IO('e', 4), by value
	echoWhoami = 0x80146505 // _IOR('e', 5, char[20])
	echoStale  = 0x00006506 // _IO('e', 6): uses the previous call's arg
	echoGoErr  = 0x00006507 // _IO('e', 7): a non-errno error
	echoIntr   = 0x00006508 // _IO('e', 8): -ERESTARTSYS
	echoNoCmd  = 0x00006509 // _IO('e', 9): -ENOIOCTLCMD
)

func (d *echoDev) fops() *module.FileOps {
	var value uint64
	return &module.FileOps{
		Open: func(c *kernel.Ctx, f *module.File) error {
			if d.openErr != nil {
				return d.openErr
			}
			if f.Private != any(&d.misc) {
				return fmt.Errorf("private_data = %v, want the miscdevice", f.Private)
			}
			d.opens = append(d.opens, fmt.Sprintf("%s/%d %s %s", c.Current().Comm(), c.Current().PID(), f.Name(), f.Dev()))
			return nil
		},
		Release: func(c *kernel.Ctx, f *module.File) error {
			d.releases++
			return kernel.EIO // ignored by close
		},
		Read: func(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
			return module.SimpleReadFromBuffer(buf, off, d.data)
		},
		Write: func(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
			d.kept = data
			d.data = append(d.data[:0], data...)
			return len(data), nil
		},
		UnlockedIoctl: func(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
			defer func() { d.lastArg = arg }()
			switch cmd {
			case echoSet:
				var b [8]byte
				if err := arg.CopyFromUser(b[:]); err != nil {
					return 0, err
				}
				value = binary.LittleEndian.Uint64(b[:])
				return 0, nil
			case echoGet:
				return 0, arg.CopyToUser(binary.LittleEndian.AppendUint64(nil, value))
			case echoIncr:
				var b [4]byte
				if err := arg.CopyFromUser(b[:]); err != nil {
					return 0, err
				}
				binary.LittleEndian.PutUint32(b[:], binary.LittleEndian.Uint32(b[:])+1)
				return 1, arg.CopyToUser(b[:])
			case echoDouble:
				return int64(arg.Value() * 2), nil
			case echoWhoami:
				var b [20]byte
				copy(b[:], fmt.Sprintf("%d:%s", c.Current().PID(), c.Current().Comm()))
				return 0, arg.CopyToUser(b[:])
			case echoStale:
				return 0, d.lastArg.CopyToUser([]byte{1})
			case echoGoErr:
				return 0, errors.New("not an errno")
			case echoIntr:
				return 0, kernel.ERESTARTSYS
			case echoNoCmd:
				return 0, module.ENOIOCTLCMD
			}
			return 0, kernel.ENOTTY
		},
	}
}

func registerEcho(t *testing.T, k *kernel.Kernel) *echoDev {
	d := &echoDev{}
	inTask(t, k, "setup", func(c *kernel.Ctx) {
		d.misc = module.MiscDevice{Name: "echo", Minor: module.MiscDynamicMinor, Mode: 0666, Fops: d.fops()}
		if err := module.MiscRegister(c, &d.misc); err != nil {
			t.Errorf("MiscRegister: %v", err)
		}
	})
	return d
}

func TestMiscDeviceRoundTripsFromAUserTask(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	d := registerEcho(t, k)
	var pid int
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		pid = c.Current().PID()
		fd, err := module.Open(c, "/dev/echo", module.ORdWr)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		if fd.Num() != 3 {
			t.Errorf("fd = %d, want 3", fd.Num())
		}
		msg := []byte("hello, driver")
		if n, err := fd.Write(c, msg); n != len(msg) || err != nil {
			t.Errorf("Write = %d, %v", n, err)
		}
		msg[0] = 'J' // the driver got a copy
		if string(d.kept) != "hello, driver" {
			t.Errorf("driver's buffer changed with the app's: %q", d.kept)
		}
		buf := make([]byte, 5)
		if n, err := fd.Read(c, buf); n != 5 || err != nil || string(buf) != "hello" {
			t.Errorf("Read = %d, %v, %q", n, err, buf)
		}
		rest := make([]byte, 64)
		if n, err := fd.Read(c, rest); n != 8 || err != nil || string(rest[:n]) != ", driver" {
			t.Errorf("second Read = %d, %v, %q", n, err, rest[:n])
		}
		if n, err := fd.Read(c, rest); n != 0 || err != nil {
			t.Errorf("Read at EOF = %d, %v", n, err)
		}

		set := binary.LittleEndian.AppendUint64(nil, 0xdeadbeef)
		if r, err := fd.Ioctl(c, echoSet, module.NewUserBuf(set)); r != 0 || err != nil {
			t.Errorf("ioctl SET = %d, %v", r, err)
		}
		got := make([]byte, 8)
		if _, err := fd.Ioctl(c, echoGet, module.NewUserBuf(got)); err != nil || binary.LittleEndian.Uint64(got) != 0xdeadbeef {
			t.Errorf("ioctl GET = %x, %v", got, err)
		}
		ctr := binary.LittleEndian.AppendUint32(nil, 41)
		if r, err := fd.Ioctl(c, echoIncr, module.NewUserBuf(ctr)); r != 1 || err != nil || binary.LittleEndian.Uint32(ctr) != 42 {
			t.Errorf("ioctl INCR = %d, %v, %d", r, err, binary.LittleEndian.Uint32(ctr))
		}
		if r, err := fd.Ioctl(c, echoDouble, module.NewUserArg(21)); r != 42 || err != nil {
			t.Errorf("ioctl DOUBLE = %d, %v", r, err)
		}
		who := make([]byte, 20)
		if _, err := fd.Ioctl(c, echoWhoami, module.NewUserBuf(who)); err != nil {
			t.Errorf("ioctl WHOAMI: %v", err)
		}
		if want := fmt.Sprintf("%d:userapp", pid); strings.TrimRight(string(who), "\x00") != want {
			t.Errorf("driver saw caller %q, want %q", who, want)
		}
		if m, err := fd.Poll(c); m != module.DefaultPollMask || err != nil {
			t.Errorf("Poll = %#x, %v", m, err)
		}
		if err := fd.Close(c); err != nil {
			t.Errorf("Close: %v", err)
		}
		wantErrno(t, "second Close", fd.Close(c), kernel.EBADF)
		_, err = fd.Read(c, buf)
		wantErrno(t, "Read after Close", err, kernel.EBADF)
	})
	if want := fmt.Sprintf("userapp/%d echo 10:127", pid); len(d.opens) != 1 || d.opens[0] != want {
		t.Errorf("opens = %q, want [%q]", d.opens, want)
	}
	if d.releases != 1 {
		t.Errorf("Release ran %d times, want 1", d.releases)
	}
}

func TestIoctlErrorsReachTheAppAsErrno(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	registerEcho(t, k)
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		fd, err := module.Open(c, "/dev/echo", module.ORdOnly)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		defer fd.Close(c)
		r, err := fd.Ioctl(c, 0x1234, nil)
		wantErrno(t, "unknown cmd", err, kernel.ENOTTY)
		if r != -1 || err.Error() != "Inappropriate ioctl for device" {
			t.Errorf("unknown cmd = %d, %q", r, err)
		}
		_, err = fd.Ioctl(c, echoSet, module.NewUserArg(5)) // by value, no buffer
		wantErrno(t, "SET without buffer", err, kernel.EFAULT)
		_, err = fd.Ioctl(c, echoSet, module.NewUserBuf(make([]byte, 4))) // too short
		wantErrno(t, "SET with short buffer", err, kernel.EFAULT)
		_, err = fd.Ioctl(c, echoGet, nil)
		wantErrno(t, "GET without arg", err, kernel.EFAULT)
		if _, err := fd.Ioctl(c, echoDouble, nil); err != nil {
			t.Errorf("DOUBLE without arg: %v", err)
		}
		app := make([]byte, 4)
		_, err = fd.Ioctl(c, echoWhoami, module.NewUserBuf(app))
		wantErrno(t, "WHOAMI with short buffer", err, kernel.EFAULT)
		if app[0] == 0 {
			t.Error("partial copy_to_user not visible to the app")
		}
		_, err = fd.Ioctl(c, echoStale, nil)
		wantErrno(t, "arg used after its ioctl returned", err, kernel.EFAULT)
		_, err = fd.Ioctl(c, echoGoErr, nil)
		wantErrno(t, "non-errno error", err, kernel.EIO)
		_, err = fd.Ioctl(c, echoIntr, nil)
		wantErrno(t, "ERESTARTSYS", err, kernel.EINTR)
		_, err = fd.Ioctl(c, echoNoCmd, nil)
		wantErrno(t, "ENOIOCTLCMD", err, kernel.ENOTTY)
		_, err = fd.Write(c, []byte("x"))
		wantErrno(t, "Write on O_RDONLY", err, kernel.EBADF)
	})
}

func TestDefaultFileOperations(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		m := &module.MiscDevice{Name: "bare", Minor: 42, Fops: &module.FileOps{}}
		if err := module.MiscRegister(c, m); err != nil {
			t.Errorf("MiscRegister: %v", err)
			return
		}
		fd, err := module.Open(c, "/dev/bare", module.ORdWr)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		_, err = fd.Read(c, make([]byte, 1))
		wantErrno(t, "Read", err, kernel.EINVAL)
		_, err = fd.Write(c, []byte("x"))
		wantErrno(t, "Write", err, kernel.EINVAL)
		_, err = fd.Ioctl(c, 0, nil)
		wantErrno(t, "Ioctl", err, kernel.ENOTTY)
		if pm, err := fd.Poll(c); pm != module.PollIn|module.PollOut|module.PollRdNorm|module.PollWrNorm || err != nil {
			t.Errorf("Poll = %#x, %v", pm, err)
		}
		if err := fd.Close(c); err != nil {
			t.Errorf("Close: %v", err)
		}
		module.MiscDeregister(c, m)
	})
}

func TestFileDescriptorsArePerTaskAndNumberedFrom3(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	registerEcho(t, k)
	var shared *module.Fd
	inTask(t, k, "app1", func(c *kernel.Ctx) {
		a, _ := module.Open(c, "/dev/echo", module.ORdOnly)
		b, _ := module.Open(c, "/dev/echo", module.ORdOnly)
		if a.Num() != 3 || b.Num() != 4 {
			t.Errorf("fds = %d, %d", a.Num(), b.Num())
		}
		a.Close(c)
		a2, _ := module.Open(c, "/dev/echo", module.ORdOnly)
		if a2.Num() != 3 {
			t.Errorf("reused fd = %d, want 3", a2.Num())
		}
		shared = b
	})
	inTask(t, k, "app2", func(c *kernel.Ctx) {
		_, err := shared.Read(c, make([]byte, 1))
		wantErrno(t, "Read of another task's fd", err, kernel.EBADF)
		wantErrno(t, "Close of another task's fd", shared.Close(c), kernel.EBADF)
	})
}

func TestOpenFailsWithTheKernelsErrnos(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	d := registerEcho(t, k)
	d.openErr = kernel.EBUSY
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		_, err := module.Open(c, "/dev/nosuch", module.ORdOnly)
		wantErrno(t, "no node", err, kernel.ENOENT)
		if err == nil || err.Error() != "No such file or directory" {
			t.Errorf("err = %v", err)
		}
		_, err = module.Open(c, "dev/echo", module.ORdOnly)
		wantErrno(t, "relative path", err, kernel.ENOENT)
		if err := module.Mknod(c, "/dev/deferred", 42, 0); err != nil {
			t.Errorf("Mknod: %v", err)
		}
		wantErrno(t, "Mknod again", module.Mknod(c, "/dev/deferred", 42, 0), kernel.EEXIST)
		_, err = module.Open(c, "/dev/deferred", module.ORdOnly)
		wantErrno(t, "no cdev", err, kernel.ENXIO)
		if err := module.Mknod(c, "/dev/nomisc", module.MiscMajor, 200); err != nil {
			t.Errorf("Mknod: %v", err)
		}
		_, err = module.Open(c, "/dev/nomisc", module.ORdOnly)
		wantErrno(t, "no misc minor", err, kernel.ENODEV)
		_, err = module.Open(c, "/dev/../dev/echo", module.ORdOnly)
		wantErrno(t, "driver open error", err, kernel.EBUSY)
		if err := module.Unlink(c, "/dev/nomisc"); err != nil {
			t.Errorf("Unlink: %v", err)
		}
		wantErrno(t, "Unlink again", module.Unlink(c, "/dev/nomisc"), kernel.ENOENT)
	})
	if d.releases != 0 {
		t.Errorf("Release ran after a failed open")
	}
}

func TestOpenOfAModulesDeviceFailsWhileTheModuleIsUnloading(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	var ld *module.ModLoader
	var openErr error
	exiting := module.Info{Name: "exiting", License: "GPL", New: func(p *module.Params) module.Instance {
		return &hookMod{exit: func(c *kernel.Ctx, m *hookMod) {
			_, openErr = module.Open(c, "/dev/exiting", module.ORdOnly)
			module.MiscDeregister(c, &m.misc)
		}}
	}}
	ld = newLoader(t, k, exiting)
	inTask(t, k, "sh", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "exiting"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
		if err := ld.Rmmod(c, "exiting"); err != nil {
			t.Errorf("Rmmod: %v", err)
		}
	})
	wantErrno(t, "Open during Exit", openErr, kernel.ENODEV)
}

type hookMod struct {
	misc module.MiscDevice
	exit func(c *kernel.Ctx, m *hookMod)
}

func (m *hookMod) Init(c *kernel.Ctx) error {
	m.misc = module.MiscDevice{Name: "exiting", Minor: module.MiscDynamicMinor, Fops: &module.FileOps{}}
	return module.MiscRegister(c, &m.misc)
}

func (m *hookMod) Exit(c *kernel.Ctx) { m.exit(c, m) }

func TestMiscRegisterAllocatesMinorsAndNodes(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	seq := k.Log().NextSeq()
	inTask(t, k, "sh", func(c *kernel.Ctx) {
		a := &module.MiscDevice{Name: "a", Minor: module.MiscDynamicMinor}
		b := &module.MiscDevice{Name: "b", Minor: module.MiscDynamicMinor, Nodename: "sub/bee", Mode: 0640}
		fixed := &module.MiscDevice{Name: "fixed", Minor: 125}
		for _, m := range []*module.MiscDevice{fixed, a, b} {
			if err := module.MiscRegister(c, m); err != nil {
				t.Errorf("MiscRegister(%s): %v", m.Name, err)
			}
		}
		if a.Minor != 127 || b.Minor != 126 || fixed.Minor != 125 {
			t.Errorf("minors = %d %d %d, want 127 126 125", a.Minor, b.Minor, fixed.Minor)
		}
		wantErrno(t, "same minor", module.MiscRegister(c, &module.MiscDevice{Name: "c", Minor: 125}), kernel.EBUSY)
		wantErrno(t, "same name", module.MiscRegister(c, &module.MiscDevice{Name: "a", Minor: module.MiscDynamicMinor}), kernel.EEXIST)
		wantErrno(t, "twice", module.MiscRegister(c, a), kernel.EBUSY)
		if a.ThisDevice().Name() != "a" || a.ThisDevice().DriverString() != "misc" || a.Dev() != module.MkDev(10, 127) {
			t.Errorf("this_device = %+v", a.ThisDevice())
		}
		got := fmt.Sprint(module.Nodes(k))
		if want := "[{/dev/a 10:127 384} {/dev/fixed 10:125 384} {/dev/sub/bee 10:126 416}]"; got != want {
			t.Errorf("Nodes = %s, want %s", got, want)
		}
		if got := module.ProcMisc(k); got != "126 b\n127 a\n125 fixed\n" {
			t.Errorf("ProcMisc = %q", got)
		}
		module.MiscDeregister(c, a)
		if a.Minor != module.MiscDynamicMinor {
			t.Errorf("Minor after deregister = %d", a.Minor)
		}
		c2 := &module.MiscDevice{Name: "c", Minor: module.MiscDynamicMinor}
		if err := module.MiscRegister(c, c2); err != nil || c2.Minor != 127 {
			t.Errorf("reuse of minor 127: %d, %v", c2.Minor, err)
		}
		if _, err := module.Open(c, "/dev/a", module.ORdOnly); !errors.Is(err, kernel.ENOENT) {
			t.Errorf("node of a deregistered device: %v", err)
		}
		module.MiscDeregister(c, a) // not registered: WARN_ON
	})
	lines := logText(k, seq)
	if !hasLine(lines, "sysfs: cannot create duplicate filename '/devices/virtual/misc/a'") {
		t.Errorf("no sysfs duplicate warning in %q", lines)
	}
	if !hasLinePrefix(lines, "WARNING: CPU: ") {
		t.Errorf("no WARN for deregistering twice in %q", lines)
	}
}

// deferredLab is the lab's 3-4-5-deferred char device, reduced to its
// registration and ioctl plumbing.
type deferredLab struct {
	cdev    module.Cdev
	lastCmd string
}

func TestCharDeviceRegionCdevAndMknodLikeTheLab(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	d := &deferredLab{}
	d.cdev.Ops = &module.FileOps{
		UnlockedIoctl: func(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
			switch cmd {
			case module.IOW('k', 1, 8):
				d.lastCmd = fmt.Sprintf("set %d", arg.Value())
			case module.IO('k', 4):
				d.lastCmd = fmt.Sprintf("mon %d", arg.Value())
			default:
				return 0, kernel.ENOTTY
			}
			return 0, nil
		},
	}
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := module.RegisterChrdevRegion(c, 42, 0, 1, "deferred"); err != nil {
			t.Errorf("RegisterChrdevRegion: %v", err)
		}
		wantErrno(t, "overlapping region", module.RegisterChrdevRegion(c, 42, 0, 4, "other"), kernel.EBUSY)
		wantErrno(t, "misc's region", module.RegisterChrdevRegion(c, 10, 5, 1, "other"), kernel.EBUSY)
		if err := module.RegisterChrdevRegion(c, 42, 1, 1, "deferred2"); err != nil {
			t.Errorf("adjacent region: %v", err)
		}
		if err := module.CdevAdd(c, &d.cdev, 42, 0, 1); err != nil {
			t.Errorf("CdevAdd: %v", err)
		}
		wantErrno(t, "CdevAdd twice", module.CdevAdd(c, &d.cdev, 42, 0, 1), kernel.EBUSY)
		if err := module.Mknod(c, "/dev/deferred", 42, 0); err != nil {
			t.Errorf("Mknod: %v", err)
		}
	})
	if got, want := module.ProcDevices(k), "Character devices:\n 10 misc\n 42 deferred\n 42 deferred2\n\nBlock devices:\n"; got != want {
		t.Errorf("ProcDevices = %q, want %q", got, want)
	}
	var held *module.Fd
	inTask(t, k, "test", func(c *kernel.Ctx) {
		fd, err := module.Open(c, "/dev/deferred", module.ORdOnly)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		if fd.Num() != 3 {
			t.Errorf("fd = %d", fd.Num())
		}
		if _, err := fd.Ioctl(c, 0x40086B01, module.NewUserArg(3)); err != nil || d.lastCmd != "set 3" {
			t.Errorf("set: %v, %q", err, d.lastCmd)
		}
		_, err = fd.Ioctl(c, module.IO('k', 9), nil)
		wantErrno(t, "unknown", err, kernel.ENOTTY)
		module.CdevDel(c, &d.cdev)
		_, err = module.Open(c, "/dev/deferred", module.ORdOnly)
		wantErrno(t, "Open after cdev_del", err, kernel.ENXIO)
		if _, err := fd.Ioctl(c, 0x00006B04, module.NewUserArg(77)); err != nil || d.lastCmd != "mon 77" {
			t.Errorf("open file after cdev_del: %v, %q", err, d.lastCmd)
		}
		held = fd
		fd.Close(c)
		module.UnregisterChrdevRegion(c, 42, 0, 1)
		if err := module.RegisterChrdevRegion(c, 42, 0, 1, "again"); err != nil {
			t.Errorf("re-register after unregister: %v", err)
		}
	})
	_ = held
}

func TestDynamicMajorsAndChrdevLimits(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		m1, err1 := module.RegisterChrdev(c, 0, "dyn1", &module.FileOps{})
		m2, err2 := module.AllocChrdevRegion(c, 0, 4, "dyn2")
		m3, err3 := module.RegisterChrdev(c, 60, "fixed", &module.FileOps{})
		if m1 != 254 || m2 != 253 || m3 != 60 || err1 != nil || err2 != nil || err3 != nil {
			t.Errorf("majors = %d %d %d (%v %v %v), want 254 253 60", m1, m2, m3, err1, err2, err3)
		}
		_, err := module.RegisterChrdev(c, 512, "huge", &module.FileOps{})
		wantErrno(t, "major 512", err, kernel.EINVAL)
		wantErrno(t, "minor range", errOnly(module.AllocChrdevRegion(c, module.MinorMask, 2, "wide")), kernel.EINVAL)
		if err := module.Mknod(c, "/dev/dyn1", m1, 7); err != nil {
			t.Errorf("Mknod: %v", err)
		}
		fd, err := module.Open(c, "/dev/dyn1", module.ORdOnly)
		if err != nil {
			t.Errorf("Open: %v", err)
		} else {
			fd.Close(c)
		}
		module.UnregisterChrdev(c, m1, "dyn1")
		_, err = module.Open(c, "/dev/dyn1", module.ORdOnly)
		wantErrno(t, "Open after unregister_chrdev", err, kernel.ENXIO)
		if m, _ := module.RegisterChrdev(c, 0, "dyn3", &module.FileOps{}); m != 254 {
			t.Errorf("major reused = %d, want 254", m)
		}
	})
	lines := logText(k, seq)
	for _, want := range []string{
		`CHRDEV "huge" major requested (512) is greater than the maximum (511)`,
		`CHRDEV "wide" minor range requested (1048575-1048576) is out of range of maximum range (0-1048575) for a single major`,
	} {
		if !hasLine(lines, want) {
			t.Errorf("log %q lacks %q", lines, want)
		}
	}
}

func TestDevPrintkPrefixesDriverAndDeviceName(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		m := &module.MiscDevice{Name: "sed1_drv", Minor: module.MiscDynamicMinor}
		if err := module.MiscRegister(c, m); err != nil {
			t.Errorf("MiscRegister: %v", err)
		}
		dev := m.ThisDevice()
		module.DevInfo(c, dev, "LLKD %s misc driver (major # %d) registered, minor# = %d,\ndev node is /dev/%s\n", m.Name, module.MiscMajor, m.Minor, m.Name)
		module.DevDbg(c, dev, "loaded.\n")
		module.DevErr(c, dev, "100%% wrong\n")
		module.DevNotice(c, nil, "no device\n")
		module.DevWarn(c, module.NewDevice("serial8250", "serial8250", 0), "w\n")
		module.DevInfo(c, module.NewDevice("odd%d", "100%s", 0), "%d%%\n", 50)
	})
	want := []printk.Record{
		{Level: printk.LevelInfo, Text: "misc sed1_drv: LLKD sed1_drv misc driver (major # 10) registered, minor# = 127,"},
		{Level: printk.LevelInfo, Text: "dev node is /dev/sed1_drv"},
		{Level: printk.LevelDebug, Text: "misc sed1_drv: loaded."},
		{Level: printk.LevelErr, Text: "misc sed1_drv: 100% wrong"},
		{Level: printk.LevelNotice, Text: "(NULL device *): no device"},
		{Level: printk.LevelWarning, Text: "serial8250 serial8250: w"},
		{Level: printk.LevelInfo, Text: "odd%d 100%s: 50%"}, // the prefix is not a format
	}
	recs := logRecords(k, seq)
	if len(recs) != len(want) {
		t.Fatalf("log = %+v", recs)
	}
	for i, r := range recs {
		if r.Level != want[i].Level || r.Text != want[i].Text {
			t.Errorf("record %d = %v %q, want %v %q", i, r.Level, r.Text, want[i].Level, want[i].Text)
		}
	}
}

func TestUserArgCopiesAreBoundedByTheUserBuffer(t *testing.T) {
	a := module.NewUserArg(7)
	if a.Value() != 7 || a.Bytes() != nil {
		t.Errorf("NewUserArg = %d, %v", a.Value(), a.Bytes())
	}
	dst := []byte{9, 9}
	wantErrno(t, "CopyFromUser by value", a.CopyFromUser(dst), kernel.EFAULT)
	if dst[0] != 0 || dst[1] != 0 {
		t.Errorf("dst not zeroed: %v", dst)
	}
	if err := a.CopyToUser(nil); err != nil {
		t.Errorf("empty CopyToUser: %v", err)
	}
	buf := []byte{1, 2, 3}
	b := module.NewUserBuf(buf)
	if b.Value() != module.DefaultUserAddr {
		t.Errorf("Value = %#x", b.Value())
	}
	dst = make([]byte, 5)
	wantErrno(t, "short CopyFromUser", b.CopyFromUser(dst), kernel.EFAULT)
	if fmt.Sprint(dst) != "[1 2 3 0 0]" {
		t.Errorf("dst = %v", dst)
	}
	wantErrno(t, "long CopyToUser", b.CopyToUser([]byte{7, 7, 7, 7}), kernel.EFAULT)
	if fmt.Sprint(buf) != "[7 7 7]" {
		t.Errorf("buf = %v", buf)
	}
	if p := module.NewUserPtr(0x1000, buf); p.Value() != 0x1000 || p.CopyToUser([]byte{5}) != nil || buf[0] != 5 {
		t.Errorf("NewUserPtr = %#x, %v", p.Value(), buf)
	}
}

func TestSimpleReadFromBuffer(t *testing.T) {
	src := []byte("abcdef")
	var pos int64
	buf := make([]byte, 4)
	if n, err := module.SimpleReadFromBuffer(buf, &pos, src); n != 4 || err != nil || pos != 4 || string(buf) != "abcd" {
		t.Errorf("first = %d %v %d %q", n, err, pos, buf)
	}
	if n, _ := module.SimpleReadFromBuffer(buf, &pos, src); n != 2 || pos != 6 || string(buf[:2]) != "ef" {
		t.Errorf("second = %d %d %q", n, pos, buf[:n])
	}
	if n, _ := module.SimpleReadFromBuffer(buf, &pos, src); n != 0 || pos != 6 {
		t.Errorf("at EOF = %d %d", n, pos)
	}
	pos = -1
	if _, err := module.SimpleReadFromBuffer(buf, &pos, src); !errors.Is(err, kernel.EINVAL) {
		t.Errorf("negative pos: %v", err)
	}
}

func TestDevtPacksMajorAndMinor(t *testing.T) {
	d := module.MkDev(42, 7)
	if d.Major() != 42 || d.Minor() != 7 || d.String() != "42:7" || uint32(d) != 42<<20|7 {
		t.Errorf("MkDev(42,7) = %#x %s", uint32(d), d)
	}
}

func errOnly(_ uint32, err error) error { return err }

// releaseMod is a module with a misc device "leftopen" that records each
// Release: the current task and the file's flags.
type releaseMod struct {
	misc     module.MiscDevice
	released *[]string
}

func (m *releaseMod) Init(c *kernel.Ctx) error {
	m.misc = module.MiscDevice{Name: "leftopen", Minor: module.MiscDynamicMinor, Fops: &module.FileOps{
		Release: func(c *kernel.Ctx, f *module.File) error {
			*m.released = append(*m.released, fmt.Sprintf("%s/%d flags=%d", c.Current().Comm(), c.Current().PID(), f.Flags))
			return nil
		},
	}}
	return module.MiscRegister(c, &m.misc)
}

func (m *releaseMod) Exit(c *kernel.Ctx) { module.MiscDeregister(c, &m.misc) }

func TestFilesLeftOpenAreClosedWhenTheTaskExits(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	var released []string
	info := module.Info{Name: "leftopen", License: "GPL", New: func(p *module.Params) module.Instance {
		return &releaseMod{released: &released}
	}}
	ld := newLoader(t, k, info)
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "leftopen"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	var pid int
	inTask(t, k, "app", func(c *kernel.Ctx) {
		pid = c.Current().PID()
		var fds []*module.Fd
		for _, fl := range []int{module.ORdOnly, module.OWrOnly, module.ORdWr} {
			fd, err := module.Open(c, "/dev/leftopen", fl)
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			fds = append(fds, fd)
		}
		if err := fds[1].Close(c); err != nil {
			t.Errorf("Close: %v", err)
		}
		if m := ld.Find("leftopen"); m == nil || m.Refcount() != 2 {
			t.Errorf("Refcount with two files open = %d, want 2", refcount(m))
		}
	})
	// close(4) by the app, then exit_files closes 3 and 5 on the app's task.
	want := []string{
		fmt.Sprintf("app/%d flags=%d", pid, module.OWrOnly),
		fmt.Sprintf("app/%d flags=%d", pid, module.ORdOnly),
		fmt.Sprintf("app/%d flags=%d", pid, module.ORdWr),
	}
	if strings.Join(released, "|") != strings.Join(want, "|") {
		t.Errorf("releases = %q, want %q", released, want)
	}
	if m := ld.Find("leftopen"); m == nil || m.Refcount() != 0 {
		t.Errorf("Refcount after the app exited = %d, want 0", refcount(m))
	}

	// A task that dies in an Oops has its files closed too.
	released = nil
	tk, err := k.Spawn("crasher", func(c *kernel.Ctx) int {
		if _, err := module.Open(c, "/dev/leftopen", module.ORdWr); err != nil {
			t.Errorf("Open: %v", err)
		}
		panic("driver test crash")
	})
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if err := k.RunUntilIdle(context.Background()); err != nil {
		t.Fatalf("RunUntilIdle: %v", err)
	}
	<-tk.Exited()
	if want := fmt.Sprintf("crasher/%d flags=%d", tk.PID(), module.ORdWr); len(released) != 1 || released[0] != want {
		t.Errorf("releases after an Oops = %q, want [%q]", released, want)
	}

	inTask(t, k, "rmmod", func(c *kernel.Ctx) {
		if err := ld.Rmmod(c, "leftopen"); err != nil {
			t.Errorf("Rmmod: %v", err)
		}
	})
	if len(released) != 1 {
		t.Errorf("Release ran again: %q", released)
	}
}

// refcount is m's Refcount, or -1 for no module.
func refcount(m *module.Module) int {
	if m == nil {
		return -1
	}
	return m.Refcount()
}
