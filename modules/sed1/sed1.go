// Package sed1 is the seed demo sed1 (Linux Kernel Programming Part 2,
// ch5/sed1: the sed1_drv driver, sed_common.h and the userapp_sed1
// program): a "simple encrypt decrypt" misc device, /dev/sed1_drv, whose
// ioctl transforms a payload under a 1 ms kernel-timer deadline.
//
// # The driver, module sed1_drv
//
// The application passes a struct sed_ds (SedDs) with an ioctl:
// IOCTL_LLKD_SED_IOC_ENCRYPT_MSG (_IOR(0xA9, 1, int) = 0x8004A901) or
// IOCTL_LLKD_SED_IOC_DECRYPT_MSG (_IOR(0xA9, 2, int) = 0x8004A902); the
// driver copies the whole 524-byte structure both ways, whatever the size
// encoded in the command. A command of another magic logs "ioctl fail;
// magic # mismatch" and one numbered above 2 "ioctl fail; invalid cmd?",
// both ENOTTY; any other command not one of the two is ENOTTY.
//
// The transform depends on the structure's data_xform field (not on the
// command): XF_ENCRYPT XORs each byte with CRYPT_OFFSET (63) and adds 63,
// XF_DECRYPT undoes it, XF_NONE returns a zeroed structure. Before it
// starts, the driver arms its timer with mod_timer(jiffies +
// msecs_to_jiffies(1)); the callback timesup() runs in timer softirq
// context, logs "*** Timer expired! ***" (pr_notice) and PRINT_CTX, and
// marks the operation timed out. After the transform, del_timer() tells
// whether the deadline was kept ("processing complete, timeout cancelled")
// or missed ("cancelled the timer while it's inactive! (deadline
// missed?)"), and SHOW_DELTA logs the processing time; a timed-out
// operation has timed_out set in the structure returned and logs "** timed
// out **". The payload and the result are hex-dumped with
// print_hex_dump_bytes (DUMP_PREFIX_OFFSET).
//
// Parameters:
//
//	make_it_fail  int,  0, 0660  1: msleep(TIMER_EXPIRE_MS+1) during the
//	                             transform so that the deadline is missed
//	                             (writable at runtime through sysfs)
//	debug         bool, Y, 0444  pr_debug, dev_dbg, PRINT_CTX and the hex
//	                             dumps (the book builds with -DDEBUG; N is
//	                             HEAD's MYDEBUG=n without dynamic debug)
//
// # The application, userapp_sed1
//
// UserappSed1 is the program: "userapp_sed1 DEVICE MESSAGE" opens DEVICE,
// encrypts MESSAGE through the driver, sleeps one second, decrypts it back
// and prints each step; a timed-out operation prints "*** Operation Timed
// Out ***" on stderr and exits with status 1.
//
// # Deliberate differences
//
//   - timed_out is reset at the start of every ioctl (seed-demos §4's
//     recommendation). The C driver never resets it, so after one timeout
//     every later operation reports a timeout until the module is
//     reloaded.
//   - A len outside 0..512 is refused with EINVAL and a pr_warn ("ioctl
//     fail; invalid payload len %d"): the C driver trusts it and overruns
//     its buffers.
//   - SHOW_DELTA is the book-era convenient.h form, "delta: N ns (= U us =
//     M ms)", matching the book-era timer_simple this project follows.
//   - In virtual time code runs in no time at all, so the transform is
//     charged a nominal CPU time (XformCostNs) to keep t2 after t1 (the
//     real one takes a few hundred ns); otherwise SHOW_DELTA would warn
//     "*invalid* earlier > later?".
//   - The driver context is per instance (the C code keeps it in the
//     global gpriv), so two kernels in one process do not share it. As in
//     C, concurrent ioctls on one instance share its single timer.
package sed1

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/modules/internal/hexdump"
	"github.com/kdefer/kdefer/timekeeping"
	"github.com/kdefer/kdefer/timer"
)

// Names, from sed_common.h and sed1_drv.c.
const (
	// DrvName is DRVNAME: the module's and the misc device's name.
	DrvName = "sed1_drv"
	// AppName is the application's name.
	AppName = "userapp_sed1"
)

// The ioctl interface (sed_common.h).
const (
	// Magic is IOCTL_LLKD_SED_MAGIC.
	Magic = 0xA9
	// MaxIoctl is IOCTL_LLKD_SED_MAXIOCTL, the highest command number.
	MaxIoctl = 2
	// CmdEncryptMsg is IOCTL_LLKD_SED_IOC_ENCRYPT_MSG, _IOR(Magic, 1, int).
	CmdEncryptMsg uint32 = 0x8004A901
	// CmdDecryptMsg is IOCTL_LLKD_SED_IOC_DECRYPT_MSG, _IOR(Magic, 2, int).
	CmdDecryptMsg uint32 = 0x8004A902
	// MaxData is MAX_DATA, the payload capacity.
	MaxData = 512
	// SedDsSize is sizeof(struct sed_ds).
	SedDsSize = 12 + MaxData
)

// enum xform: the data_xform values.
const (
	XfNone    = 0 // XF_NONE
	XfDecrypt = 1 // XF_DECRYPT
	XfEncrypt = 2 // XF_ENCRYPT
)

// Driver constants (sed1_drv.c).
const (
	// TimerExpireMs is TIMER_EXPIRE_MS, the deadline of an operation.
	TimerExpireMs = 1
	// CryptOffset is CRYPT_OFFSET.
	CryptOffset = 63
	// XformCostNs is the CPU time a transform is charged in virtual time.
	XformCostNs = 200
)

// SedDs is struct sed_ds, the ioctl's argument: little-endian C ints and
// the payload, SedDsSize bytes, no padding.
type SedDs struct {
	DataXform int32         // the transform to apply (XfNone, XfDecrypt, XfEncrypt)
	Len       int32         // payload length in bytes
	TimedOut  int32         // 1 if the operation timed out
	Data      [MaxData]byte // the payload
}

// Encode returns d's wire form.
func (d *SedDs) Encode() []byte {
	b := make([]byte, SedDsSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(d.DataXform))
	binary.LittleEndian.PutUint32(b[4:], uint32(d.Len))
	binary.LittleEndian.PutUint32(b[8:], uint32(d.TimedOut))
	copy(b[12:], d.Data[:])
	return b
}

// DecodeSedDs parses a SedDs from the first SedDsSize bytes of b (missing
// bytes read as zero).
func DecodeSedDs(b []byte) SedDs {
	var w [SedDsSize]byte
	copy(w[:], b)
	var d SedDs
	d.DataXform = int32(binary.LittleEndian.Uint32(w[0:]))
	d.Len = int32(binary.LittleEndian.Uint32(w[4:]))
	d.TimedOut = int32(binary.LittleEndian.Uint32(w[8:]))
	copy(d.Data[:], w[12:])
	return d
}

// Encrypt transforms p in place as the driver's encrypt does: each byte
// is XORed with CryptOffset, then CryptOffset is added (mod 256).
func Encrypt(p []byte) {
	for i := range p {
		p[i] ^= CryptOffset
		p[i] += CryptOffset
	}
}

// Decrypt is Encrypt's inverse.
func Decrypt(p []byte) {
	for i := range p {
		p[i] -= CryptOffset
		p[i] ^= CryptOffset
	}
}

// Info defines the module.
var Info = module.Info{
	Name:        DrvName,
	Description: "sed1: simple encrypt-decrypt driver; demo misc driver for kernel timers (and ioctl)",
	License:     "Dual MIT/GPL",
	Author:      "Kaiwan N Billimoria",
	Version:     "0.1",
	New:         newDrv,
}

// The work types of encrypt_decrypt_payload.
const (
	workIsEncrypt = 1 // WORK_IS_ENCRYPT
	workIsDecrypt = 2 // WORK_IS_DECRYPT
)

// stMyCtx is struct stMyCtx, the driver context, plus the module's
// logger for the timer callback.
type stMyCtx struct {
	dev      *module.Device
	fake     uint32
	timedOut atomic.Int32
	timr     timer.Timer
	pr       kernel.Logger
}

// sed1Drv is one loaded copy of the module.
type sed1Drv struct {
	makeItFail int // guarded by params' lock: sysfs may write it
	debug      bool
	params     *module.Params

	pr      kernel.Logger
	fops    module.FileOps
	miscdev module.MiscDevice
	gpriv   *stMyCtx
}

func newDrv(p *module.Params) module.Instance {
	m := &sed1Drv{params: p}
	p.Int(&m.makeItFail, "make_it_fail", 0, 0660,
		"Deliberately ensure that the kernel timeout occurs before processing completes (default=0)")
	p.Bool(&m.debug, "debug", true, 0444, "pr_debug, dev_dbg, PRINT_CTX and hex dump output (default=Y)")
	return m
}

func (m *sed1Drv) makeItFailNow() int {
	m.params.Lock()
	defer m.params.Unlock()
	return m.makeItFail
}

// devDbg is dev_dbg, silenced with debug=N.
func (m *sed1Drv) devDbg(c *kernel.Ctx, dev *module.Device, format string, args ...any) {
	if m.debug {
		module.DevDbg(c, dev, format, args...)
	}
}

// printHexDumpBytes is print_hex_dump_bytes(prefix, DUMP_PREFIX_OFFSET,
// buf, len), a debug print.
func (m *sed1Drv) printHexDumpBytes(c *kernel.Ctx, prefix string, buf []byte) {
	if m.debug {
		hexdump.PrintHexDumpBytes(c, prefix, hexdump.PrefixOffset, buf)
	}
}

// timesup is the timer callback: it runs in timer softirq context.
func timesup(c *kernel.Ctx, t *timer.Timer) {
	priv := timer.ContainerOf[stMyCtx](t, unsafe.Offsetof(stMyCtx{}.timr))
	priv.timedOut.Store(1)
	priv.pr.Notice(c, "*** Timer expired! ***\n")
	convenient.PrintCtx(c, priv.pr)
}

// encrypt_decrypt_payload transforms kd's payload into kdret under the
// TIMER_EXPIRE_MS deadline.
func (m *sed1Drv) encrypt_decrypt_payload(c *kernel.Ctx, work int, kd, kdret *SedDs) {
	k := c.Kernel()
	priv := m.gpriv

	m.pr.Debug(c, "starting timer + processing now ...\n")

	// Start - the timer; set it to expire in TIMER_EXPIRE_MS ms
	timer.Mod(c, &priv.timr, c.Jiffies()+k.HZ().MsecsToJiffies(TimerExpireMs))

	t1 := timekeeping.KtimeGetRealNs(c)

	// perform the actual processing on the payload
	*kdret = *kd
	switch work {
	case workIsEncrypt:
		Encrypt(kdret.Data[:kd.Len])
	case workIsDecrypt:
		Decrypt(kdret.Data[:kd.Len])
	}
	kdret.Len = kd.Len
	if k.Virtual() {
		kernel.Spin(c, XformCostNs) // what the loop above costs a real CPU
	}
	// work done!

	if m.makeItFailNow() == 1 {
		delay.Msleep(c, TimerExpireMs+1)
	}
	t2 := timekeeping.KtimeGetRealNs(c)

	// work done, cancel the timeout
	if timer.Delete(&priv.timr) == 0 {
		m.pr.Debug(c, "cancelled the timer while it's inactive! (deadline missed?)\n")
	} else {
		m.pr.Debug(c, "processing complete, timeout cancelled\n")
	}

	convenient.ShowDeltaBook(c, m.pr, t2, t1)
}

// process_it kicks off the "processing" work.
func (m *sed1Drv) process_it(c *kernel.Ctx, kd, kdret *SedDs) {
	switch kd.DataXform {
	case XfNone:
		m.pr.Debug(c, "data transform type: XF_NONE\n")
		// nothing to do
	case XfEncrypt:
		m.pr.Debug(c, "data transform type: XF_ENCRYPT\n")
		m.encrypt_decrypt_payload(c, workIsEncrypt, kd, kdret)
	case XfDecrypt:
		m.pr.Debug(c, "data transform type: XF_DECRYPT\n")
		m.encrypt_decrypt_payload(c, workIsDecrypt, kd, kdret)
	}
}

// ioctl_miscdrv is the driver's unlocked_ioctl.
func (m *sed1Drv) ioctl_miscdrv(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
	priv := m.gpriv

	// Verify stuff: is the ioctl's for us? etc..
	if module.IOCType(cmd) != Magic {
		m.pr.Warn(c, "ioctl fail; magic # mismatch\n")
		return 0, kernel.ENOTTY
	}
	if module.IOCNr(cmd) > MaxIoctl {
		m.pr.Warn(c, "ioctl fail; invalid cmd?\n")
		return 0, kernel.ENOTTY
	}

	switch cmd {
	case CmdEncryptMsg, CmdDecryptMsg:
		op := "decrypt"
		if cmd == CmdEncryptMsg {
			op = "encrypt"
		}
		m.pr.Debug(c, "In ioctl cmd option: %s\narg=0x%x\n", op, arg.Value())
		var raw [SedDsSize]byte
		if err := arg.CopyFromUser(raw[:]); err != nil {
			m.pr.Warn(c, "copy_from_user() failed\n")
			return 0, kernel.EFAULT
		}
		kd := DecodeSedDs(raw[:])
		var kdret SedDs // kzalloc'ed
		m.pr.Debug(c, "xform=%d, len=%d\n", kd.DataXform, kd.Len)
		if kd.Len < 0 || kd.Len > MaxData {
			m.pr.Warn(c, "ioctl fail; invalid payload len %d\n", kd.Len)
			return 0, kernel.EINVAL
		}
		m.printHexDumpBytes(c, "payload: ", kd.Data[:kd.Len])
		priv.timedOut.Store(0) // kdefer: a fresh deadline for every operation
		m.process_it(c, &kd, &kdret)
		if priv.timedOut.Load() == 1 {
			kdret.TimedOut = 1
			m.pr.Debug(c, "** timed out **\n")
		}
		m.printHexDumpBytes(c, "ret payload: ", kdret.Data[:kdret.Len])

		// write back processed payload to the user space process
		if err := arg.CopyToUser(kdret.Encode()); err != nil {
			m.pr.Warn(c, "copy_to_user() failed\n")
			return 0, kernel.EFAULT
		}
	default:
		return 0, kernel.ENOTTY
	}
	return 0, nil
}

// open_miscdrv is the driver's open.
func (m *sed1Drv) open_miscdrv(c *kernel.Ctx, f *module.File) error {
	convenient.PrintCtx(c, m.pr) // displays process (or atomic) context info
	m.pr.Info(c, "opening \"%s\" now\n", f.Name())
	return nil // nonseekable_open
}

// read_miscdrv is the driver's (dummy) read.
func (m *sed1Drv) read_miscdrv(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
	m.pr.Info(c, "to read %d bytes\n", len(buf))
	return len(buf), nil
}

// write_miscdrv is the driver's (dummy) write.
func (m *sed1Drv) write_miscdrv(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
	m.pr.Info(c, "to write %d bytes\n", len(data))
	return len(data), nil
}

// close_miscdrv is the driver's release.
func (m *sed1Drv) close_miscdrv(c *kernel.Ctx, f *module.File) error {
	m.pr.Info(c, "closing \"%s\"\n", f.Name())
	return nil
}

// Init is module_init(sed1_drv_init).
func (m *sed1Drv) Init(c *kernel.Ctx) error { return m.sed1_drv_init(c) }

// Exit is module_exit(sed1_drv_exit).
func (m *sed1Drv) Exit(c *kernel.Ctx) { m.sed1_drv_exit(c) }

// sed1_drv_init is named as the C function: pr_fmt prints the name.
func (m *sed1Drv) sed1_drv_init(c *kernel.Ctx) error {
	m.pr = kernel.Logger{Module: DrvName, NoDebug: !m.debug}
	m.fops = module.FileOps{
		Open:          m.open_miscdrv,
		UnlockedIoctl: m.ioctl_miscdrv,
		Read:          m.read_miscdrv,
		Write:         m.write_miscdrv,
		Release:       m.close_miscdrv,
	}
	m.miscdev = module.MiscDevice{
		Name:  DrvName,
		Minor: module.MiscDynamicMinor, // kernel dynamically assigns a free minor#
		Mode:  0666,
		Fops:  &m.fops,
	}

	//--- Register with misc kernel framework
	if err := module.MiscRegister(c, &m.miscdev); err != nil {
		m.pr.Notice(c, "misc device registration failed, aborting\n")
		return err
	}
	dev := m.miscdev.ThisDevice()

	module.DevInfo(c, dev, "LLKD %s misc driver (major # 10) registered, minor# = %d,\n"+
		"dev node is /dev/%s\n", DrvName, m.miscdev.Minor, DrvName)

	priv := &stMyCtx{dev: dev, pr: m.pr} // devm_kzalloc
	m.gpriv = priv
	priv.timedOut.Store(0)

	// Initialize our kernel timer
	timer.Setup(c, &priv.timr, timesup, 0)

	state := "off"
	if m.makeItFailNow() == 1 {
		state = "*on*"
	}
	m.pr.Info(c, "init done (make_it_fail is %s)\n", state)
	m.devDbg(c, dev, "loaded.\n")
	return nil
}

// sed1_drv_exit is named as the C function.
func (m *sed1Drv) sed1_drv_exit(c *kernel.Ctx) {
	priv := m.gpriv
	m.devDbg(c, priv.dev, "unloading\n")
	timer.DeleteSync(c, &priv.timr)
	module.MiscDeregister(c, &m.miscdev)
}
