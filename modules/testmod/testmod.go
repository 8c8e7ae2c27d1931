// Package testmod is kdefer's test module (not one of the seed demos): a
// module with parameters of several types and a misc device, /dev/testmod,
// that exercises read, write and the four kinds of ioctl. It is what the
// module package's machinery is tested against and a template for writing
// a driver.
//
// Parameters: count (int, 3, 0644), name (charp, "kdefer", 0644), verbose
// (bool, N, 0644: pr_debug each operation), delay_ms (uint, 10, 0444:
// read-only at runtime) and fail_init (bool, N, perm 0: not in sysfs; makes
// Init fail with ENODEV).
//
// The device: read returns a status text; write replaces the stored data
// with up to MaxData bytes (more is EINVAL), whatever the file position;
// the ioctls are listed with their numbers below. A
// command with another magic is ENOTTY with a pr_warn; an unknown command
// of this magic is ENOTTY.
package testmod

import (
	"encoding/binary"
	"fmt"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
)

// Limits and the ioctl magic.
const (
	// Magic is the ioctl type byte of the device's commands.
	Magic = 0xB5
	// MaxData is the most bytes one write may store.
	MaxData = 256
	// XformMax is the payload size of an Xform.
	XformMax = 64
	// StatusSize is the encoded size of a Status (its C sizeof on
	// x86-64, tail padding included).
	StatusSize = 48
	// XformSize is the encoded size of an Xform.
	XformSize = 8 + XformMax
)

// The device's ioctl commands, with the C definitions they stand for.
const (
	// CmdGetStatus is _IOR(Magic, 1, struct testmod_status): the driver
	// copies a Status to user.
	CmdGetStatus uint32 = 0x8030B501
	// CmdSetValue is _IOW(Magic, 2, __u64): the driver copies a
	// little-endian uint64 from user and stores it as the value.
	CmdSetValue uint32 = 0x4008B502
	// CmdReset is _IO(Magic, 3): value and stored data are cleared.
	CmdReset uint32 = 0x0000B503
	// CmdTransform is _IOWR(Magic, 4, struct testmod_xform): the driver
	// copies an Xform from user, transforms its payload and copies it back;
	// the ioctl returns the payload length.
	CmdTransform uint32 = 0xC048B504
	// CmdAdd is _IO(Magic, 5) with the argument passed by value: it is
	// added to the value, and the ioctl returns the new value.
	CmdAdd uint32 = 0x0000B505
)

// Transform operations of an Xform.
const (
	XformUpper   = 1 // ASCII upper case
	XformReverse = 2 // reverse the bytes
	XformRot13   = 3 // ROT13 the ASCII letters
)

// Status is struct testmod_status, CmdGetStatus's result: little-endian,
// laid out as gcc lays out the C struct on x86-64 (the __u64 member makes
// it 8-byte aligned, hence 4 bytes of tail padding), StatusSize bytes.
type Status struct {
	Count   int32    // the count parameter
	DelayMs uint32   // the delay_ms parameter
	Value   uint64   // the value set by CmdSetValue / CmdAdd
	Opens   uint32   // opens of the device since load
	Len     uint32   // bytes stored by the last write
	PID     int32    // pid of the task that issued the ioctl
	Comm    [16]byte // its comm, NUL-padded
	_       uint32   // tail padding
}

// Encode returns s's wire form.
func (s Status) Encode() []byte {
	b, err := binary.Append(make([]byte, 0, StatusSize), binary.LittleEndian, s)
	if err != nil {
		panic(err)
	}
	return b
}

// DecodeStatus parses a Status from its wire form.
func DecodeStatus(b []byte) (Status, error) {
	var s Status
	_, err := binary.Decode(b, binary.LittleEndian, &s)
	return s, err
}

// CommString returns Comm up to its first NUL.
func (s Status) CommString() string {
	for i, c := range s.Comm {
		if c == 0 {
			return string(s.Comm[:i])
		}
	}
	return string(s.Comm[:])
}

// Xform is struct testmod_xform, CmdTransform's argument (little-endian,
// XformSize bytes).
type Xform struct {
	Op   uint32         // XformUpper, XformReverse or XformRot13
	Len  uint32         // payload length, at most XformMax
	Data [XformMax]byte // payload
}

// Encode returns x's wire form.
func (x Xform) Encode() []byte {
	b, err := binary.Append(make([]byte, 0, XformSize), binary.LittleEndian, x)
	if err != nil {
		panic(err)
	}
	return b
}

// DecodeXform parses an Xform from its wire form.
func DecodeXform(b []byte) (Xform, error) {
	var x Xform
	_, err := binary.Decode(b, binary.LittleEndian, &x)
	return x, err
}

// Info defines the module.
var Info = module.Info{
	Name:        "testmod",
	Description: "kdefer test module: parameters, a misc device, ioctls",
	License:     "GPL",
	Author:      "The kdefer authors",
	Version:     "1.0",
	New:         newTestmod,
}

var pr = kernel.PrFmt("testmod")

// testmod is one instance of the module.
type testmod struct {
	// Parameters (guarded by params' lock once loaded).
	count    int
	name     string
	verbose  bool
	delayMs  uint
	failInit bool
	params   *module.Params

	fops module.FileOps
	misc module.MiscDevice

	mu    kernel.Mutex // guards the fields below
	value uint64
	data  []byte
	opens uint32
}

func newTestmod(p *module.Params) module.Instance {
	m := &testmod{params: p}
	p.Int(&m.count, "count", 3, 0644, "a number reported in the status")
	p.Charp(&m.name, "name", "kdefer", 0644, "a name reported in the status")
	p.Bool(&m.verbose, "verbose", false, 0644, "pr_debug every operation")
	p.Uint(&m.delayMs, "delay_ms", 10, 0444, "a delay reported in the status (read-only at runtime)")
	p.Bool(&m.failInit, "fail_init", false, 0, "make init fail with -ENODEV")
	return m
}

// Init registers the misc device.
func (m *testmod) Init(c *kernel.Ctx) error {
	m.params.Lock()
	fail := m.failInit
	m.params.Unlock()
	if fail {
		pr.Err(c, "fail_init set, refusing to load\n")
		return kernel.ENODEV
	}
	m.fops = module.FileOps{
		Open:          m.open,
		Release:       m.release,
		Read:          m.read,
		Write:         m.write,
		UnlockedIoctl: m.ioctl,
	}
	m.misc = module.MiscDevice{Name: "testmod", Minor: module.MiscDynamicMinor, Mode: 0666, Fops: &m.fops}
	if err := module.MiscRegister(c, &m.misc); err != nil {
		pr.Err(c, "misc_register failed (%v)\n", err)
		return err
	}
	module.DevInfo(c, m.misc.ThisDevice(), "registered, major %d minor %d, node %s\n",
		module.MiscMajor, m.misc.Minor, m.misc.NodePath())
	m.params.Lock()
	count, name, verbose, delayMs := m.count, m.name, m.verbose, m.delayMs
	m.params.Unlock()
	pr.Info(c, "loaded: count=%d name=%s verbose=%s delay_ms=%d\n", count, name, yn(verbose), delayMs)
	return nil
}

// Exit deregisters the misc device.
func (m *testmod) Exit(c *kernel.Ctx) {
	module.DevInfo(c, m.misc.ThisDevice(), "deregistering\n")
	module.MiscDeregister(c, &m.misc)
	pr.Info(c, "unloaded\n")
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// isVerbose reads the verbose parameter, which sysfs may change at any time.
func (m *testmod) isVerbose() bool {
	m.params.Lock()
	defer m.params.Unlock()
	return m.verbose
}

func (m *testmod) open(c *kernel.Ctx, f *module.File) error {
	m.mu.Lock(c)
	m.opens++
	m.mu.Unlock(c)
	pr.Info(c, "%s opened \"%s\" (pid %d)\n", c.Current().Comm(), f.Name(), c.Current().PID())
	return nil
}

func (m *testmod) release(c *kernel.Ctx, f *module.File) error {
	pr.Info(c, "%s closed \"%s\"\n", c.Current().Comm(), f.Name())
	return nil
}

func (m *testmod) read(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
	m.params.Lock()
	head := fmt.Sprintf("name=%s count=%d delay_ms=%d verbose=%s", m.name, m.count, m.delayMs, yn(m.verbose))
	m.params.Unlock()
	m.mu.Lock(c)
	text := fmt.Sprintf("%s value=%d opens=%d len=%d\ndata=%q\n", head, m.value, m.opens, len(m.data), m.data)
	m.mu.Unlock(c)
	if m.isVerbose() {
		pr.Debug(c, "read %d bytes at %d\n", len(buf), *off)
	}
	return module.SimpleReadFromBuffer(buf, off, []byte(text))
}

func (m *testmod) write(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
	if m.isVerbose() {
		pr.Debug(c, "write %d bytes\n", len(data))
	}
	if len(data) > MaxData {
		return 0, kernel.EINVAL
	}
	m.mu.Lock(c)
	m.data = append(m.data[:0], data...)
	m.mu.Unlock(c)
	return len(data), nil
}

func (m *testmod) ioctl(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
	if module.IOCType(cmd) != Magic {
		pr.Warn(c, "ioctl 0x%08x: magic 0x%02x is not ours (0x%02x)\n", cmd, module.IOCType(cmd), Magic)
		return 0, kernel.ENOTTY
	}
	if m.isVerbose() {
		pr.Debug(c, "ioctl cmd 0x%08x arg 0x%x\n", cmd, arg.Value())
	}
	switch cmd {
	case CmdGetStatus:
		s := m.status(c)
		if err := arg.CopyToUser(s.Encode()); err != nil {
			return 0, err
		}
		return 0, nil
	case CmdSetValue:
		var b [8]byte
		if err := arg.CopyFromUser(b[:]); err != nil {
			return 0, err
		}
		m.mu.Lock(c)
		m.value = binary.LittleEndian.Uint64(b[:])
		m.mu.Unlock(c)
		return 0, nil
	case CmdReset:
		m.mu.Lock(c)
		m.value, m.data = 0, nil
		m.mu.Unlock(c)
		return 0, nil
	case CmdTransform:
		var b [XformSize]byte
		if err := arg.CopyFromUser(b[:]); err != nil {
			return 0, err
		}
		x, _ := DecodeXform(b[:])
		if x.Len > XformMax {
			return 0, kernel.EINVAL
		}
		if err := transform(x.Op, x.Data[:x.Len]); err != nil {
			return 0, err
		}
		if err := arg.CopyToUser(x.Encode()); err != nil {
			return 0, err
		}
		return int64(x.Len), nil
	case CmdAdd:
		m.mu.Lock(c)
		m.value += arg.Value()
		v := m.value
		m.mu.Unlock(c)
		return int64(v), nil
	}
	return 0, kernel.ENOTTY
}

func (m *testmod) status(c *kernel.Ctx) Status {
	var s Status
	m.params.Lock()
	s.Count, s.DelayMs = int32(m.count), uint32(m.delayMs)
	m.params.Unlock()
	m.mu.Lock(c)
	s.Value, s.Opens, s.Len = m.value, m.opens, uint32(len(m.data))
	m.mu.Unlock(c)
	s.PID = int32(c.Current().PID())
	copy(s.Comm[:], c.Current().Comm())
	return s
}

func transform(op uint32, p []byte) error {
	switch op {
	case XformUpper:
		for i, b := range p {
			if b >= 'a' && b <= 'z' {
				p[i] = b - 'a' + 'A'
			}
		}
	case XformReverse:
		for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
			p[i], p[j] = p[j], p[i]
		}
	case XformRot13:
		for i, b := range p {
			switch {
			case b >= 'a' && b <= 'z':
				p[i] = 'a' + (b-'a'+13)%26
			case b >= 'A' && b <= 'Z':
				p[i] = 'A' + (b-'A'+13)%26
			}
		}
	default:
		return kernel.EINVAL
	}
	return nil
}
