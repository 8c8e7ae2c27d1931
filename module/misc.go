package module

import (
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// dynamicMinors is DYNAMIC_MINORS: dynamic misc minors are handed out from
// dynamicMinors-1 downward, then from 256 upward.
const dynamicMinors = 128

// MiscDevice is struct miscdevice: a char device of major 10 with one
// minor, its node created in /dev by MiscRegister.
type MiscDevice struct {
	// Name names the device (/sys/class/misc/<Name>) and, without
	// Nodename, its node /dev/<Name>.
	Name string
	// Minor is the minor number, or MiscDynamicMinor to have one
	// allocated; MiscRegister stores the allocated minor here.
	Minor int
	// Mode is the node's mode (0: devtmpfs's default, 0600).
	Mode uint32
	// Fops are the file operations.
	Fops *FileOps
	// Nodename, if set, is the node's path below /dev instead of Name.
	Nodename string

	registered bool
	dynamic    bool
	dev        *Device
	node       string
	owner      *Module
}

// ThisDevice returns misc->this_device, for the dev_*() helpers: its
// driver string is "misc" and its name is Name. It is nil until
// MiscRegister succeeds.
func (m *MiscDevice) ThisDevice() *Device { return m.dev }

// Dev returns MKDEV(MISC_MAJOR, Minor).
func (m *MiscDevice) Dev() Devt { return MkDev(MiscMajor, uint32(m.Minor)) }

// NodePath returns the path of the device's node, "/dev/" plus Nodename or
// Name.
func (m *MiscDevice) NodePath() string {
	n := m.Nodename
	if n == "" {
		n = m.Name
	}
	return "/dev/" + n
}

// allocMiscMinorLocked is misc_minor_alloc(): the highest free minor below
// DYNAMIC_MINORS, else the lowest free one from 256. Unlike Linux 6.1 it
// also skips minors that static registrations use.
func (st *kstate) allocMiscMinorLocked() int {
	used := func(minor int) bool {
		if st.dynMinors[minor] {
			return true
		}
		for _, m := range st.misc {
			if m.Minor == minor {
				return true
			}
		}
		return false
	}
	for i := dynamicMinors - 1; i >= 0; i-- {
		if !used(i) {
			return i
		}
	}
	for i := MiscDynamicMinor + 1; i <= MinorMask; i++ {
		if !used(i) {
			return i
		}
	}
	return -1
}

// MiscRegister is misc_register(): it gives m its minor (allocating one for
// MiscDynamicMinor), makes the device live and creates its node
// /dev/<Nodename or Name> with Mode (devtmpfs; an existing node is left
// alone). It fails with EBUSY if the fixed minor is taken or no dynamic
// one is left, and with EEXIST if another misc device has the same Name
// (the kernel's sysfs "cannot create duplicate filename" warning and stack
// are printed). A device registered while a module's Init runs belongs to
// that module (fops->owner = THIS_MODULE): an open file holds a reference
// on the module.
func MiscRegister(c *kernel.Ctx, m *MiscDevice) error {
	st := stateOf(c.Kernel())
	st.mu.Lock()
	if m.registered {
		st.mu.Unlock()
		return kernel.EBUSY
	}
	if m.Name == "" || strings.Contains(m.Name, "/") {
		st.mu.Unlock()
		return kernel.EINVAL
	}
	dynamic := m.Minor == MiscDynamicMinor
	minor := m.Minor
	if dynamic {
		minor = st.allocMiscMinorLocked()
		if minor < 0 {
			st.mu.Unlock()
			return kernel.EBUSY
		}
	} else {
		if minor < 0 || minor > MinorMask {
			st.mu.Unlock()
			return kernel.EINVAL
		}
		for _, o := range st.misc {
			if o.Minor == minor {
				st.mu.Unlock()
				return kernel.EBUSY
			}
		}
	}
	for _, o := range st.misc {
		if o.Name == m.Name {
			st.mu.Unlock()
			kernel.Printk(c, printk.LevelWarning, "sysfs: cannot create duplicate filename '/devices/virtual/misc/%s'\n", m.Name)
			kernel.DumpStack(c)
			return kernel.EEXIST
		}
	}
	if dynamic {
		st.dynMinors[minor] = true
	}
	m.Minor, m.dynamic, m.registered = minor, dynamic, true
	m.dev = &Device{driver: "misc", name: m.Name, devt: MkDev(MiscMajor, uint32(minor))}
	m.owner = st.thisModuleLocked(c)
	st.misc = append([]*MiscDevice{m}, st.misc...)
	m.node = ""
	if p := cleanPath(m.NodePath()); p != "" {
		if _, exists := st.nodes[p]; !exists {
			mode := m.Mode
			if mode == 0 {
				mode = 0600
			}
			st.nodes[p] = &inode{devt: m.dev.devt, mode: mode, auto: true}
			m.node = p
		}
	}
	st.mu.Unlock()
	return nil
}

// MiscDeregister is misc_deregister(): the device and its devtmpfs node go
// away; files already open keep working until closed. A dynamic minor is
// freed and Minor reset to MiscDynamicMinor, so that m can be registered
// again (newer kernels do this; 6.1 leaves the old minor). Deregistering a
// device that is not registered is WARN_ON(list_empty(&misc->list)).
func MiscDeregister(c *kernel.Ctx, m *MiscDevice) {
	st := stateOf(c.Kernel())
	st.mu.Lock()
	if !m.registered {
		st.mu.Unlock()
		kernel.WarnOn(c, true)
		return
	}
	st.miscRemoveLocked(m)
	st.mu.Unlock()
}

func (st *kstate) miscRemoveLocked(m *MiscDevice) {
	for i, o := range st.misc {
		if o == m {
			st.misc = append(st.misc[:i], st.misc[i+1:]...)
			break
		}
	}
	if m.node != "" {
		if n, ok := st.nodes[m.node]; ok && n.auto && n.devt == m.dev.devt {
			delete(st.nodes, m.node)
		}
		m.node = ""
	}
	if m.dynamic {
		delete(st.dynMinors, m.Minor)
		m.Minor = MiscDynamicMinor
	}
	m.registered, m.dynamic = false, false
}

func (st *kstate) findMiscLocked(minor int) *MiscDevice {
	for _, m := range st.misc {
		if m.Minor == minor {
			return m
		}
	}
	return nil
}

// ProcMisc returns /proc/misc: one "%3i %s" line per misc device, newest
// first.
func ProcMisc(k *kernel.Kernel) string {
	st := stateOf(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	for _, m := range st.misc {
		fmt.Fprintf(&b, "%3d %s\n", m.Minor, m.Name)
	}
	return b.String()
}
