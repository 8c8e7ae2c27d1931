package module

import (
	"path"
	"sort"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
)

// Open flags (include/uapi/asm-generic/fcntl.h).
const (
	ORdOnly   = 00       // O_RDONLY
	OWrOnly   = 01       // O_WRONLY
	ORdWr     = 02       // O_RDWR
	OAccMode  = 03       // O_ACCMODE
	ONonblock = 04000    // O_NONBLOCK
	OCloexec  = 02000000 // O_CLOEXEC
)

// Kernel-internal errnos a driver may return; userspace never sees them.
const (
	// ERESTARTNOINTR, ERESTARTNOHAND and ERESTARTRestartblock, like
	// kernel.ERESTARTSYS, become EINTR at the system call boundary (kdefer
	// has no signal handlers to restart after).
	ERESTARTNOINTR       kernel.Errno = 513
	ERESTARTNOHAND       kernel.Errno = 514
	ERESTARTRestartblock kernel.Errno = 516
	// ENOIOCTLCMD is what an ioctl handler returns for a command it does
	// not know; vfs_ioctl turns it into ENOTTY.
	ENOIOCTLCMD kernel.Errno = 515
)

// PollMask is a poll event mask (__poll_t, EPOLL* bits).
type PollMask uint32

// Poll events (include/uapi/linux/eventpoll.h).
const (
	PollIn     PollMask = 0x0001 // EPOLLIN
	PollPri    PollMask = 0x0002 // EPOLLPRI
	PollOut    PollMask = 0x0004 // EPOLLOUT
	PollErr    PollMask = 0x0008 // EPOLLERR
	PollHup    PollMask = 0x0010 // EPOLLHUP
	PollNval   PollMask = 0x0020 // EPOLLNVAL
	PollRdNorm PollMask = 0x0040 // EPOLLRDNORM
	PollRdBand PollMask = 0x0080 // EPOLLRDBAND
	PollWrNorm PollMask = 0x0100 // EPOLLWRNORM
	PollWrBand PollMask = 0x0200 // EPOLLWRBAND

	// DefaultPollMask is DEFAULT_POLLMASK, what a file without a poll
	// operation reports: always readable and writable.
	DefaultPollMask = PollIn | PollOut | PollRdNorm | PollWrNorm
)

// FileOps is struct file_operations. Every operation runs in process
// context of the calling user task (c.Current() is the caller: its pid and
// comm are the kernel's current->pid and current->comm). A nil operation
// behaves as in the kernel: Open and Release succeed, Read and Write fail
// with EINVAL, UnlockedIoctl with ENOTTY, Poll reports DefaultPollMask.
//
// Operations return kernel.Errno errors (kernel.EINVAL for -EINVAL). Any
// other error reaches the application as EIO; ERESTARTSYS and its siblings
// reach it as EINTR.
type FileOps struct {
	// Open is called when a file is opened on the device. For a misc
	// device f.Private already holds the *MiscDevice, as misc_open sets
	// it. An error fails the open (Release is then not called).
	Open func(c *kernel.Ctx, f *File) error
	// Release is called once, when the file is closed. Its error is
	// ignored, as close(2) ignores ->release's.
	Release func(c *kernel.Ctx, f *File) error
	// Read fills buf, a kernel buffer of the size the application asked
	// for (the bytes are copied to the application when Read returns, as
	// copy_to_user would), from position *off, advances *off and returns
	// the count.
	Read func(c *kernel.Ctx, f *File, buf []byte, off *int64) (int, error)
	// Write consumes data, a kernel copy of the application's buffer
	// (copy_from_user already done), at position *off, advances *off and
	// returns the count. data must not be kept after Write returns
	// without copying it.
	Write func(c *kernel.Ctx, f *File, data []byte, off *int64) (int, error)
	// UnlockedIoctl handles ioctl(fd, cmd, arg). arg is valid only until
	// it returns.
	UnlockedIoctl func(c *kernel.Ctx, f *File, cmd uint32, arg *UserArg) (int64, error)
	// Poll reports the file's ready events (vfs_poll without a wait).
	Poll func(c *kernel.Ctx, f *File) PollMask
}

// File is struct file: the driver's view of one open of a device.
type File struct {
	// Private is private_data, for the driver. For a misc device it starts
	// as the *MiscDevice.
	Private any
	// Flags are the open flags (f_flags): ORdOnly, OWrOnly, ORdWr,
	// ONonblock, ….
	Flags int

	path   string
	devt   Devt
	ops    *FileOps
	misc   *MiscDevice
	cdev   *Cdev
	owner  *Module
	pos    int64
	opener *kernel.Task
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Name returns the name of the opened node (file_dentry(f)->d_name), e.g.
// "sed1_drv" for /dev/sed1_drv.
func (f *File) Name() string { return path.Base(f.path) }

// Dev returns the device number of the opened node (inode->i_rdev).
func (f *File) Dev() Devt { return f.devt }

// Misc returns the misc device opened, or nil for other char devices.
func (f *File) Misc() *MiscDevice { return f.misc }

// Cdev returns the cdev opened (inode->i_cdev), or nil for a misc device.
func (f *File) Cdev() *Cdev { return f.cdev }

// Opener returns the task that opened the file.
func (f *File) Opener() *kernel.Task { return f.opener }

// CanRead reports FMODE_READ: the file was opened for reading.
func (f *File) CanRead() bool { return f.Flags&OAccMode == ORdOnly || f.Flags&OAccMode == ORdWr }

// CanWrite reports FMODE_WRITE: the file was opened for writing.
func (f *File) CanWrite() bool { return f.Flags&OAccMode == OWrOnly || f.Flags&OAccMode == ORdWr }

// DefaultUserAddr is the user-space address NewUserBuf gives its buffer (a
// glibc heap address, as calloc would return): what a driver sees as the
// ioctl's arg value.
const DefaultUserAddr = 0x55d0c0de02a0

// UserArg is an ioctl's "unsigned long arg" together with the user memory it
// may point to. The application builds one with NewUserArg (a value: _IO
// commands, or the seconds and pids the lab passes by value) or NewUserBuf
// (a pointer to its buffer). Fd.Ioctl hands the driver a kernel-side copy:
// the driver reaches the memory only through CopyFromUser and CopyToUser,
// and what it wrote is copied back into the application's buffer when the
// ioctl returns, so that application and driver never share memory (they
// could live in different processes).
//
// The user memory has the length of the application's buffer, which is not
// necessarily IOCSize(cmd): sed1 declares its commands with sizeof(int) and
// copies a whole struct sed_ds. Copying more than the buffer holds is
// EFAULT, as touching unmapped memory would be.
type UserArg struct {
	val    uint64
	mem    []byte
	hasMem bool
	dead   atomic.Bool // the ioctl returned: the kernel copy is no longer valid
}

// NewUserArg returns a by-value argument: there is no user memory behind
// it, so CopyFromUser and CopyToUser fail with EFAULT.
func NewUserArg(value uint64) *UserArg { return &UserArg{val: value} }

// NewUserBuf returns a pointer argument to buf, whose address is
// DefaultUserAddr. After the ioctl, buf holds what the driver copied to
// user.
func NewUserBuf(buf []byte) *UserArg { return NewUserPtr(DefaultUserAddr, buf) }

// NewUserPtr returns a pointer argument to buf at user address addr.
func NewUserPtr(addr uint64, buf []byte) *UserArg { return &UserArg{val: addr, mem: buf, hasMem: true} }

// Value returns the argument as an unsigned long: the value, or the user
// address for a pointer argument.
func (a *UserArg) Value() uint64 { return a.val }

// Bytes returns the user memory (the application's buffer), or nil. It is
// for the application side and for transports that carry the memory
// across a process boundary.
func (a *UserArg) Bytes() []byte { return a.mem }

// CopyFromUser is copy_from_user(dst, arg, len(dst)): it copies the first
// len(dst) bytes of the user memory. If there are fewer (or none, or the
// ioctl has returned) it copies what there is, zeroes the rest of dst and
// returns EFAULT.
func (a *UserArg) CopyFromUser(dst []byte) error {
	var n int
	if a.hasMem && !a.dead.Load() {
		n = copy(dst, a.mem)
	}
	if n < len(dst) {
		clear(dst[n:])
		return kernel.EFAULT
	}
	return nil
}

// CopyToUser is copy_to_user(arg, src, len(src)): it copies src to the
// start of the user memory, and returns EFAULT if that holds fewer than
// len(src) bytes (after copying what fits) or the ioctl has returned.
func (a *UserArg) CopyToUser(src []byte) error {
	if !a.hasMem || a.dead.Load() {
		if len(src) == 0 {
			return nil
		}
		return kernel.EFAULT
	}
	if n := copy(a.mem, src); n < len(src) {
		return kernel.EFAULT
	}
	return nil
}

// kernelCopy makes the kernel side of an ioctl argument.
func (a *UserArg) kernelCopy() *UserArg {
	if a == nil {
		return &UserArg{}
	}
	k := &UserArg{val: a.val, hasMem: a.hasMem}
	if a.hasMem {
		k.mem = append([]byte(nil), a.mem...)
	}
	return k
}

// SimpleReadFromBuffer is simple_read_from_buffer(): it copies from from,
// starting at *ppos, as much as fits in to, advances *ppos and returns the
// count (0 at or past the end). A negative *ppos is EINVAL.
func SimpleReadFromBuffer(to []byte, ppos *int64, from []byte) (int, error) {
	pos := *ppos
	if pos < 0 {
		return 0, kernel.EINVAL
	}
	if pos >= int64(len(from)) || len(to) == 0 {
		return 0, nil
	}
	n := copy(to, from[pos:])
	*ppos = pos + int64(n)
	return n, nil
}

// Fd is an open file descriptor of a user task: the application's handle.
// Only the task that opened it may use it (each task has its own file
// table); another task gets EBADF.
type Fd struct {
	num    int
	task   *kernel.Task
	file   *File
	closed bool // guarded by the kernel's module state lock
	st     *kstate
}

// Num returns the descriptor number: the lowest one free in the task's
// table, from 3 (0, 1 and 2 are the standard streams).
func (fd *Fd) Num() int { return fd.num }

// Open is open(2) of a device node, from process context c of the calling
// task. It fails with ENOENT when path is no node, ENXIO when no driver
// serves the node's number (or the driver's module is unloading), ENODEV
// when the number is a misc minor with no misc device, and with the
// driver's Open error. flags are the open flags; there are no permission
// checks (every task is root).
func Open(c *kernel.Ctx, p string, flags int) (*Fd, error) {
	if err := syscallEntry(c, "open"); err != nil {
		return nil, err
	}
	st := stateOf(c.Kernel())
	cp := cleanPath(p)
	st.mu.Lock()
	node := st.nodes[cp]
	if cp == "" || node == nil {
		st.mu.Unlock()
		return nil, kernel.ENOENT
	}
	f := &File{Flags: flags, path: p, devt: node.devt, opener: c.Current()}
	cd := st.lookupCdevLocked(node.devt)
	switch {
	case cd == nil:
		st.mu.Unlock()
		return nil, kernel.ENXIO
	case cd.isMisc: // misc_open
		m := st.findMiscLocked(int(node.devt.Minor()))
		if m == nil || m.Fops == nil || !m.owner.tryGet() {
			st.mu.Unlock()
			return nil, kernel.ENODEV
		}
		f.ops, f.owner, f.misc, f.Private = m.Fops, m.owner, m, m
	default: // chrdev_open
		if cd.Ops == nil || !cd.owner.tryGet() {
			st.mu.Unlock()
			return nil, kernel.ENXIO
		}
		f.ops, f.owner, f.cdev = cd.Ops, cd.owner, cd
	}
	st.mu.Unlock()

	if f.ops.Open != nil {
		if err := f.ops.Open(c, f); err != nil {
			f.owner.put()
			return nil, toErrno(err)
		}
	}
	t := c.Current()
	fd := &Fd{task: t, file: f, st: st}
	st.mu.Lock()
	tbl := st.fds[t]
	if tbl == nil {
		tbl = make(map[int]*Fd)
		st.fds[t] = tbl
	}
	n := 3
	for tbl[n] != nil {
		n++
	}
	fd.num = n
	tbl[n] = fd
	st.mu.Unlock()
	return fd, nil
}

// check validates the descriptor for a call from c.
func (fd *Fd) check(c *kernel.Ctx, name string) error {
	if err := syscallEntry(c, name); err != nil {
		return err
	}
	fd.st.mu.Lock()
	defer fd.st.mu.Unlock()
	if fd.closed || fd.task != c.Current() {
		return kernel.EBADF
	}
	return nil
}

// Read is read(2): it fails with EBADF if the file was not opened for
// reading, EINVAL if the driver has no read operation, and returns -1 with
// the errno on failure, as libc does.
func (fd *Fd) Read(c *kernel.Ctx, buf []byte) (int, error) {
	if err := fd.check(c, "read"); err != nil {
		return -1, err
	}
	f := fd.file
	if !f.CanRead() {
		return -1, kernel.EBADF
	}
	if f.ops.Read == nil {
		return -1, kernel.EINVAL
	}
	kbuf := make([]byte, len(buf))
	pos := f.pos
	n, err := f.ops.Read(c, f, kbuf, &pos)
	if err != nil {
		return -1, toErrno(err)
	}
	if n < 0 || n > len(buf) {
		kernel.Warn(c, "%s: read returned %d for a %d-byte buffer\n", f.path, n, len(buf))
		return -1, kernel.EIO
	}
	copy(buf, kbuf[:n])
	f.pos = pos
	return n, nil
}

// Write is write(2): EBADF if the file was not opened for writing, EINVAL
// if the driver has no write operation; -1 and the errno on failure.
func (fd *Fd) Write(c *kernel.Ctx, data []byte) (int, error) {
	if err := fd.check(c, "write"); err != nil {
		return -1, err
	}
	f := fd.file
	if !f.CanWrite() {
		return -1, kernel.EBADF
	}
	if f.ops.Write == nil {
		return -1, kernel.EINVAL
	}
	kdata := append([]byte(nil), data...)
	pos := f.pos
	n, err := f.ops.Write(c, f, kdata, &pos)
	if err != nil {
		return -1, toErrno(err)
	}
	if n < 0 || n > len(data) {
		kernel.Warn(c, "%s: write returned %d for %d bytes\n", f.path, n, len(data))
		return -1, kernel.EIO
	}
	f.pos = pos
	return n, nil
}

// Ioctl is ioctl(2): ENOTTY if the driver has no ioctl operation (or
// returns ENOIOCTLCMD); -1 and the errno on failure, else the driver's
// return value. arg may be nil (no argument: value 0). Whatever the driver
// copied to user is in arg's buffer when Ioctl returns, even on failure.
func (fd *Fd) Ioctl(c *kernel.Ctx, cmd uint32, arg *UserArg) (int64, error) {
	if err := fd.check(c, "ioctl"); err != nil {
		return -1, err
	}
	f := fd.file
	if f.ops.UnlockedIoctl == nil {
		return -1, kernel.ENOTTY
	}
	karg := arg.kernelCopy()
	ret, err := f.ops.UnlockedIoctl(c, f, cmd, karg)
	karg.dead.Store(true)
	if arg != nil && arg.hasMem {
		copy(arg.mem, karg.mem)
	}
	if err != nil {
		e := toErrno(err)
		if e == ENOIOCTLCMD {
			e = kernel.ENOTTY
		}
		return -1, e
	}
	return ret, nil
}

// Poll is one vfs_poll() of the file: the events ready now, without
// waiting.
func (fd *Fd) Poll(c *kernel.Ctx) (PollMask, error) {
	if err := fd.check(c, "poll"); err != nil {
		return 0, err
	}
	f := fd.file
	if f.ops.Poll == nil {
		return DefaultPollMask, nil
	}
	return f.ops.Poll(c, f), nil
}

// Close is close(2): the driver's Release runs (once) and the module
// reference the open took is dropped. Closing again is EBADF. A task that
// exits without closing its files has them closed for it, as exit_files()
// does: Release runs on the exiting task.
func (fd *Fd) Close(c *kernel.Ctx) error {
	if err := syscallEntry(c, "close"); err != nil {
		return err
	}
	st := fd.st
	st.mu.Lock()
	if fd.closed || fd.task != c.Current() {
		st.mu.Unlock()
		return kernel.EBADF
	}
	fd.closed = true
	if tbl := st.fds[fd.task]; tbl != nil {
		delete(tbl, fd.num)
		if len(tbl) == 0 {
			delete(st.fds, fd.task)
		}
	}
	st.mu.Unlock()
	fd.file.fput(c)
	return nil
}

// fput is the last fput() of a file (__fput): the driver's Release runs in
// c and the module reference the open took is dropped.
func (f *File) fput(c *kernel.Ctx) {
	if f.ops.Release != nil {
		_ = f.ops.Release(c, f)
	}
	f.owner.put()
}

// exitFiles is exit_files() → close_files(): when task t exits, the files
// it left open are closed in descriptor order, their Release running on
// t's goroutine with t as current, so that their modules can be unloaded.
// The kernel calls it (OnTaskExit) after t's function returned.
func (st *kstate) exitFiles(t *kernel.Task) {
	st.mu.Lock()
	tbl := st.fds[t]
	if len(tbl) == 0 {
		st.mu.Unlock()
		return
	}
	delete(st.fds, t)
	fds := make([]*Fd, 0, len(tbl))
	for _, fd := range tbl {
		fd.closed = true
		fds = append(fds, fd)
	}
	st.mu.Unlock()
	sort.Slice(fds, func(i, j int) bool { return fds[i].num < fds[j].num })
	c := t.Ctx()
	for _, fd := range fds {
		fd.file.fput(c)
	}
}

// toErrno turns a driver's error into what the application sees.
func toErrno(err error) kernel.Errno {
	e, ok := kernel.AsErrno(err)
	if !ok {
		return kernel.EIO
	}
	switch e {
	case kernel.ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTARTRestartblock:
		return kernel.EINTR
	}
	return e
}
