package module

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// Device numbers (include/linux/kdev_t.h, fs/char_dev.c,
// include/linux/miscdevice.h).
const (
	MinorBits        = 20               // MINORBITS
	MinorMask        = 1<<MinorBits - 1 // MINORMASK
	ChrdevMajorMax   = 512              // CHRDEV_MAJOR_MAX: majors are below it
	MiscMajor        = 10               // MISC_MAJOR
	MiscDynamicMinor = 255              // MISC_DYNAMIC_MINOR: ask misc_register for a minor
)

// Devt is a device number, dev_t: major in the high 12 bits, minor in the
// low 20.
type Devt uint32

// MkDev is MKDEV(major, minor).
func MkDev(major, minor uint32) Devt { return Devt(major<<MinorBits | minor&MinorMask) }

// Major is MAJOR(dev).
func (d Devt) Major() uint32 { return uint32(d) >> MinorBits }

// Minor is MINOR(dev).
func (d Devt) Minor() uint32 { return uint32(d) & MinorMask }

// String formats the number as "major:minor".
func (d Devt) String() string { return fmt.Sprintf("%d:%d", d.Major(), d.Minor()) }

// Device is the part of struct device that dev_printk uses: the name of its
// driver, bus or class (dev_driver_string) and its own name (dev_name).
type Device struct {
	driver string
	name   string
	devt   Devt
}

// NewDevice returns a device for the dev_*() printing helpers: driver is
// what dev_driver_string() gives (the bound driver's name, else the bus or
// class name), name is dev_name().
func NewDevice(driver, name string, devt Devt) *Device {
	return &Device{driver: driver, name: name, devt: devt}
}

// Name is dev_name(dev).
func (d *Device) Name() string { return d.name }

// DriverString is dev_driver_string(dev); "misc" for a misc device.
func (d *Device) DriverString() string { return d.driver }

// Devt returns the device number.
func (d *Device) Devt() Devt { return d.devt }

// DevPrintk is dev_printk(level, dev, format, …): the message is prefixed
// with "<driver> <name>: " (for a misc device "misc <name>: ") and does not
// go through any pr_fmt. The format is always formatted, as printk does, so
// "%%" prints "%" even without arguments; the prefix is not part of the
// format (a '%' in a device name prints as is). A nil dev prints
// "(NULL device *): ".
func DevPrintk(c *kernel.Ctx, level printk.Level, dev *Device, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	prefix := "(NULL device *): "
	if dev != nil {
		prefix = dev.driver + " " + dev.name + ": "
	}
	kernel.Printk(c, level, "%s", prefix+text)
}

// DevEmerg is dev_emerg.
func DevEmerg(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelEmerg, dev, format, args...)
}

// DevAlert is dev_alert.
func DevAlert(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelAlert, dev, format, args...)
}

// DevCrit is dev_crit.
func DevCrit(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelCrit, dev, format, args...)
}

// DevErr is dev_err.
func DevErr(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelErr, dev, format, args...)
}

// DevWarn is dev_warn.
func DevWarn(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelWarning, dev, format, args...)
}

// DevNotice is dev_notice.
func DevNotice(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelNotice, dev, format, args...)
}

// DevInfo is dev_info.
func DevInfo(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelInfo, dev, format, args...)
}

// DevDbg is dev_dbg: printed at KERN_DEBUG, always (the seed modules are
// built with -DDEBUG; there is no dynamic debug).
func DevDbg(c *kernel.Ctx, dev *Device, format string, args ...any) {
	DevPrintk(c, printk.LevelDebug, dev, format, args...)
}

// inode is a device node in /dev: a char device number and a mode.
type inode struct {
	devt Devt
	mode uint32
	auto bool // created by devtmpfs for a registered device (removed with it)
}

// cleanPath makes an absolute, clean path, or "" if p is not absolute.
func cleanPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return ""
	}
	return path.Clean(p)
}

// Mknod is mknod(path, S_IFCHR|0644, MKDEV(major, minor)), the lab's
// "mknod /dev/deferred c 42 0": it creates a char device node. The node
// stays until Unlink, whatever happens to the driver. It fails with EEXIST
// if path exists and ENOENT if path is not absolute.
func Mknod(c *kernel.Ctx, p string, major, minor uint32) error {
	if err := syscallEntry(c, "mknod"); err != nil {
		return err
	}
	p = cleanPath(p)
	if p == "" || p == "/" {
		return kernel.ENOENT
	}
	if major >= 1<<(32-MinorBits) || minor > MinorMask {
		return kernel.EINVAL
	}
	st := stateOf(c.Kernel())
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.nodes[p]; ok {
		return kernel.EEXIST
	}
	st.nodes[p] = &inode{devt: MkDev(major, minor), mode: 0644}
	return nil
}

// Unlink is unlink(path) for a device node: ENOENT if there is none.
// Files already open on it stay usable.
func Unlink(c *kernel.Ctx, p string) error {
	if err := syscallEntry(c, "unlink"); err != nil {
		return err
	}
	p = cleanPath(p)
	st := stateOf(c.Kernel())
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.nodes[p]; !ok || p == "" {
		return kernel.ENOENT
	}
	delete(st.nodes, p)
	return nil
}

// Node describes a device node (ls -l /dev).
type Node struct {
	Path string // absolute path, e.g. "/dev/testmod"
	Dev  Devt   // the char device number
	Mode uint32 // permission bits
}

// Nodes lists k's device nodes sorted by path.
func Nodes(k *kernel.Kernel) []Node {
	st := stateOf(k)
	st.mu.Lock()
	out := make([]Node, 0, len(st.nodes))
	for p, n := range st.nodes {
		out = append(out, Node{Path: p, Dev: n.devt, Mode: n.mode})
	}
	st.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
