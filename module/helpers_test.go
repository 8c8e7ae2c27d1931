package module_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/printk"
)

// boot boots a virtual two-CPU kernel; the caller defers shutdown(t, k).
func boot(t *testing.T) *kernel.Kernel {
	t.Helper()
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	return k
}

func shutdown(t *testing.T, k *kernel.Kernel) { ktest.Shutdown(t, k) }

// inTask runs fn in a new user task named comm and drives the kernel until
// it is idle. fn may call t.Errorf (not t.Fatal).
func inTask(t *testing.T, k *kernel.Kernel, comm string, fn func(c *kernel.Ctx)) {
	t.Helper()
	ktest.RunAs(t, k, comm, fn)
}

// logRecords returns the log records from seq on.
func logRecords(k *kernel.Kernel, seq uint64) []printk.Record {
	k.Log().Flush()
	recs, _ := k.Log().Records(seq)
	return recs
}

// logText returns the log lines from seq on.
func logText(k *kernel.Kernel, seq uint64) []string {
	var out []string
	for _, r := range logRecords(k, seq) {
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

func hasLinePrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func wantErrno(t *testing.T, what string, err error, want kernel.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %s (%v)", what, err, want.Name(), want)
	}
}

// recorder counts the calls into a probe module's instances.
type recorder struct {
	mu    sync.Mutex
	inits int
	exits int
	last  *probe
}

func (r *recorder) counts() (inits, exits int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inits, r.exits
}

// probe is a test module with one parameter of every type and an optional
// misc device "probe" whose operations echo.
type probe struct {
	rec *recorder

	i       int
	u       uint
	l       int64
	ul      uint64
	s       int16
	us      uint16
	b       uint8
	bo      bool
	inv     bool
	str     string
	rw      int
	ro      int
	hidden  int
	wo      int
	initErr error
	withDev bool
	onInit  func(c *kernel.Ctx, p *probe) error

	fops module.FileOps
	misc module.MiscDevice
	data []byte
}

type probeOpts struct {
	withDev bool
	initErr error
	onInit  func(c *kernel.Ctx, p *probe) error
	name    string
}

func probeInfo(rec *recorder, o probeOpts) module.Info {
	name := o.name
	if name == "" {
		name = "probe"
	}
	return module.Info{
		Name: name, License: "GPL", Description: "test probe",
		New: func(p *module.Params) module.Instance {
			m := &probe{rec: rec, initErr: o.initErr, withDev: o.withDev, onInit: o.onInit}
			p.Int(&m.i, "i", -1, 0644, "an int")
			p.Uint(&m.u, "u", 1, 0644, "a uint")
			p.Long(&m.l, "l", 2, 0644, "a long")
			p.Ulong(&m.ul, "ul", 3, 0644, "a ulong")
			p.Short(&m.s, "s", 4, 0644, "a short")
			p.Ushort(&m.us, "us", 5, 0644, "a ushort")
			p.Byte(&m.b, "b", 6, 0644, "a byte")
			p.Bool(&m.bo, "bo", false, 0644, "a bool")
			p.Invbool(&m.inv, "inv", false, 0644, "an invbool")
			p.Charp(&m.str, "str", "hello", 0644, "a charp")
			p.Int(&m.rw, "make_it_fail", 0, 0660, "writable at runtime")
			p.Int(&m.ro, "ro", 7, 0444, "read-only at runtime")
			p.Int(&m.hidden, "hidden", 8, 0, "not in sysfs")
			p.Int(&m.wo, "wo", 9, 0200, "write-only")
			return m
		},
	}
}

func (m *probe) Init(c *kernel.Ctx) error {
	m.rec.mu.Lock()
	m.rec.inits++
	m.rec.last = m
	m.rec.mu.Unlock()
	if m.onInit != nil {
		if err := m.onInit(c, m); err != nil {
			return err
		}
	}
	if m.initErr != nil {
		return m.initErr
	}
	if m.withDev {
		m.fops = module.FileOps{
			Read: func(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
				return module.SimpleReadFromBuffer(buf, off, m.data)
			},
			Write: func(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
				m.data = append(m.data[:0], data...)
				return len(data), nil
			},
		}
		m.misc = module.MiscDevice{Name: "probe", Minor: module.MiscDynamicMinor, Mode: 0666, Fops: &m.fops}
		if err := module.MiscRegister(c, &m.misc); err != nil {
			return err
		}
	}
	return nil
}

func (m *probe) Exit(c *kernel.Ctx) {
	m.rec.mu.Lock()
	m.rec.exits++
	m.rec.mu.Unlock()
	if m.withDev {
		module.MiscDeregister(c, &m.misc)
	}
}

// newLoader boots nothing: it registers the probe in a fresh registry and
// returns k's loader.
func newLoader(t *testing.T, k *kernel.Kernel, infos ...module.Info) *module.ModLoader {
	t.Helper()
	reg := module.NewRegistry()
	for _, in := range infos {
		if err := reg.Register(in); err != nil {
			t.Fatalf("Register(%s): %v", in.Name, err)
		}
	}
	return module.Loader(k, reg)
}
