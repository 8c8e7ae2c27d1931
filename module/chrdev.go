package module

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// Dynamic major ranges of find_dynamic_major(): 254 down to 234, then 511
// down to 384.
const (
	chrdevMajorHashSize    = 255 // CHRDEV_MAJOR_HASH_SIZE
	chrdevMajorDynEnd      = 234 // CHRDEV_MAJOR_DYN_END
	chrdevMajorDynExtStart = 511 // CHRDEV_MAJOR_DYN_EXT_START
	chrdevMajorDynExtEnd   = 384 // CHRDEV_MAJOR_DYN_EXT_END
)

// chrdevRegion is struct char_device_struct: a registered range of minors
// of one major.
type chrdevRegion struct {
	major, baseminor, minorct uint32
	name                      string
	cdev                      *Cdev // register_chrdev()'s cdev, if any
}

// Cdev is struct cdev: the file operations of a range of char device
// numbers. A driver fills Ops and calls CdevAdd (cdev_init + cdev_add);
// files opened on its numbers call those operations, and keep doing so
// after CdevDel until closed. A Cdev added while a module's Init runs
// belongs to that module (cdev.owner = THIS_MODULE): an open file holds a
// reference on the module.
type Cdev struct {
	// Ops are the file operations.
	Ops *FileOps

	dev    Devt
	count  uint32
	added  bool
	owner  *Module
	isMisc bool // the misc core's cdev for major 10
}

// Dev returns the first device number (cdev.dev), valid after CdevAdd.
func (cd *Cdev) Dev() Devt { return cd.dev }

// Count returns the number of minors (cdev.count).
func (cd *Cdev) Count() uint32 { return cd.count }

func (cd *Cdev) contains(d Devt) bool {
	return uint64(d) >= uint64(cd.dev) && uint64(d) < uint64(cd.dev)+uint64(cd.count)
}

// findDynamicMajorLocked is find_dynamic_major().
func (st *kstate) findDynamicMajorLocked() (uint32, bool) {
	for i := uint32(chrdevMajorHashSize - 1); i >= chrdevMajorDynEnd; i-- {
		used := false
		for _, r := range st.regions {
			if r.major%chrdevMajorHashSize == i {
				used = true
				break
			}
		}
		if !used {
			return i, true
		}
	}
	for i := uint32(chrdevMajorDynExtStart); i >= chrdevMajorDynExtEnd; i-- {
		used := false
		for _, r := range st.regions {
			if r.major == i {
				used = true
				break
			}
		}
		if !used {
			return i, true
		}
	}
	return 0, false
}

// registerRegion is __register_chrdev_region(): major 0 asks for a
// dynamic major. It logs the kernel's CHRDEV messages itself; the caller
// must not hold st.mu.
func (st *kstate) registerRegion(c *kernel.Ctx, major, baseminor, minorct uint32, name string) (*chrdevRegion, error) {
	if major >= ChrdevMajorMax {
		kernel.Printk(c, printk.LevelErr, "CHRDEV \"%s\" major requested (%d) is greater than the maximum (%d)\n", name, major, ChrdevMajorMax-1)
		return nil, kernel.EINVAL
	}
	if uint64(minorct) > uint64(MinorMask)+1-uint64(baseminor) {
		kernel.Printk(c, printk.LevelErr, "CHRDEV \"%s\" minor range requested (%d-%d) is out of range of maximum range (%d-%d) for a single major\n",
			name, baseminor, uint64(baseminor)+uint64(minorct)-1, 0, MinorMask)
		return nil, kernel.EINVAL
	}
	st.mu.Lock()
	if major == 0 {
		m, ok := st.findDynamicMajorLocked()
		if !ok {
			st.mu.Unlock()
			kernel.Printk(c, printk.LevelErr, "CHRDEV \"%s\" dynamic allocation region is full\n", name)
			return nil, kernel.EBUSY
		}
		major = m
	}
	for _, r := range st.regions {
		if r.major == major && r.baseminor+r.minorct > baseminor && r.baseminor < baseminor+minorct {
			st.mu.Unlock()
			return nil, kernel.EBUSY
		}
	}
	r := &chrdevRegion{major: major, baseminor: baseminor, minorct: minorct, name: name}
	st.regions = append(st.regions, r)
	sort.SliceStable(st.regions, func(i, j int) bool {
		a, b := st.regions[i], st.regions[j]
		if a.major != b.major {
			return a.major < b.major
		}
		return a.baseminor < b.baseminor
	})
	st.mu.Unlock()
	return r, nil
}

// unregisterRegionLocked is __unregister_chrdev_region(): it removes the
// region with exactly this range and returns it (nil if none).
func (st *kstate) unregisterRegionLocked(major, baseminor, minorct uint32) *chrdevRegion {
	for i, r := range st.regions {
		if r.major == major && r.baseminor == baseminor && r.minorct == minorct {
			st.regions = append(st.regions[:i], st.regions[i+1:]...)
			return r
		}
	}
	return nil
}

// RegisterChrdevRegion is register_chrdev_region(MKDEV(major, minor),
// count, name): it reserves count device numbers from major:minor (a range
// running past the last minor continues on the next majors). It fails with
// EBUSY when part of the range is taken, and with EINVAL (and the kernel's
// "CHRDEV …" message) for a major of ChrdevMajorMax or more. As in the
// kernel, major 0 allocates a dynamic major that the caller cannot learn:
// use AllocChrdevRegion.
func RegisterChrdevRegion(c *kernel.Ctx, major, minor, count uint32, name string) error {
	st := stateOf(c.Kernel())
	from := uint64(MkDev(major, minor))
	to := from + uint64(count)
	var done []*chrdevRegion
	for n := from; n < to; {
		next := uint64(MkDev(Devt(n).Major()+1, 0))
		if next > to || next == 0 {
			next = to
		}
		r, err := st.registerRegion(c, Devt(n).Major(), Devt(n).Minor(), uint32(next-n), name)
		if err != nil {
			st.mu.Lock()
			for _, d := range done {
				st.unregisterRegionLocked(d.major, d.baseminor, d.minorct)
			}
			st.mu.Unlock()
			return err
		}
		done = append(done, r)
		n = next
	}
	return nil
}

// AllocChrdevRegion is alloc_chrdev_region(): it reserves count minors from
// baseminor on a dynamic major (254 downward, then 511 downward) and
// returns that major.
func AllocChrdevRegion(c *kernel.Ctx, baseminor, count uint32, name string) (uint32, error) {
	r, err := stateOf(c.Kernel()).registerRegion(c, 0, baseminor, count, name)
	if err != nil {
		return 0, err
	}
	return r.major, nil
}

// UnregisterChrdevRegion is unregister_chrdev_region(MKDEV(major, minor),
// count). Ranges that were not registered exactly so are ignored.
func UnregisterChrdevRegion(c *kernel.Ctx, major, minor, count uint32) {
	st := stateOf(c.Kernel())
	from := uint64(MkDev(major, minor))
	to := from + uint64(count)
	st.mu.Lock()
	defer st.mu.Unlock()
	for n := from; n < to; {
		next := uint64(MkDev(Devt(n).Major()+1, 0))
		if next > to || next == 0 {
			next = to
		}
		st.unregisterRegionLocked(Devt(n).Major(), Devt(n).Minor(), uint32(next-n))
		n = next
	}
}

// CdevAdd is cdev_add(cd, MKDEV(major, minor), count): the device numbers
// go live at once (it does not check that a region was registered, like
// the kernel). A cdev added twice fails with EBUSY; count 0 with EINVAL.
func CdevAdd(c *kernel.Ctx, cd *Cdev, major, minor, count uint32) error {
	if count == 0 || major >= 1<<(32-MinorBits) || minor > MinorMask {
		return kernel.EINVAL
	}
	st := stateOf(c.Kernel())
	st.mu.Lock()
	defer st.mu.Unlock()
	if cd.added {
		return kernel.EBUSY
	}
	cd.dev, cd.count, cd.added = MkDev(major, minor), count, true
	cd.owner = st.thisModuleLocked(c)
	st.cdevAddLocked(cd)
	return nil
}

// cdevAddLocked is kobj_map(): probes are kept with the smallest range
// first and, among equal ranges, the newest first.
func (st *kstate) cdevAddLocked(cd *Cdev) {
	i := 0
	for i < len(st.cdevs) && st.cdevs[i].count < cd.count {
		i++
	}
	st.cdevs = append(st.cdevs, nil)
	copy(st.cdevs[i+1:], st.cdevs[i:])
	st.cdevs[i] = cd
}

func (st *kstate) cdevRemoveLocked(cd *Cdev) {
	for i, o := range st.cdevs {
		if o == cd {
			st.cdevs = append(st.cdevs[:i], st.cdevs[i+1:]...)
			break
		}
	}
	cd.added = false
}

// lookupCdevLocked is kobj_lookup(cdev_map, dev).
func (st *kstate) lookupCdevLocked(d Devt) *Cdev {
	for _, cd := range st.cdevs {
		if cd.contains(d) {
			return cd
		}
	}
	return nil
}

// CdevDel is cdev_del(): new opens of its numbers fail with ENXIO; files
// already open keep working until closed.
func CdevDel(c *kernel.Ctx, cd *Cdev) {
	st := stateOf(c.Kernel())
	st.mu.Lock()
	defer st.mu.Unlock()
	if cd.added {
		st.cdevRemoveLocked(cd)
	}
}

// RegisterChrdev is register_chrdev(major, name, fops): it registers minors
// 0..255 of major (0: a dynamic major) and a cdev with fops on them. It
// returns the major in use; the kernel returns 0 for a static major and the
// major for a dynamic one.
func RegisterChrdev(c *kernel.Ctx, major uint32, name string, fops *FileOps) (uint32, error) {
	st := stateOf(c.Kernel())
	r, err := st.registerRegion(c, major, 0, 256, name)
	if err != nil {
		return 0, err
	}
	cd := &Cdev{Ops: fops, dev: MkDev(r.major, 0), count: 256, added: true}
	st.mu.Lock()
	r.cdev = cd
	cd.owner = st.thisModuleLocked(c)
	st.cdevAddLocked(cd)
	st.mu.Unlock()
	return r.major, nil
}

// UnregisterChrdev is unregister_chrdev(major, name): it removes the
// region of minors 0..255 of major and its cdev.
func UnregisterChrdev(c *kernel.Ctx, major uint32, name string) {
	st := stateOf(c.Kernel())
	st.mu.Lock()
	defer st.mu.Unlock()
	if r := st.unregisterRegionLocked(major, 0, 256); r != nil && r.cdev != nil && r.cdev.added {
		st.cdevRemoveLocked(r.cdev)
	}
}

// ProcDevices returns /proc/devices: the registered char device regions by
// major ("%3d %s"), then the (empty) block device list.
func ProcDevices(k *kernel.Kernel) string {
	st := stateOf(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	b.WriteString("Character devices:\n")
	for _, r := range st.regions {
		fmt.Fprintf(&b, "%3d %s\n", r.major, r.name)
	}
	b.WriteString("\nBlock devices:\n")
	return b.String()
}
