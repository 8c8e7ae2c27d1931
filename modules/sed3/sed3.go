// Package sed3 is the seed demo sed3 (Linux Kernel Programming Part 2,
// ch5/sed3, book-era tree f947bc9: the sed3_drv driver and its
// sed_common.h): sed2's "simple encrypt decrypt" misc device,
// /dev/sed3_drv, with the work done by a work item on the kernel-global
// workqueue (schedule_work) — in a kworker — instead of a kthread of the
// driver. The device protocol is sed2's, and so is the application: the
// book runs userapp_sed2 against /dev/sed3_drv.
//
// # The driver, module sed3_drv
//
// One shared buffer, a struct sed_ds (524 bytes: data_xform, len,
// timed_out, shmem[512]), holds the message. The ioctls, all declared
// _IOR(0xA9, n, int) in the book-era header (0x8004A901..0x8004A904):
//
//   - IOCTL_LLKD_SED_IOC_ENCRYPT_MSG: EBADRQC ("encrypt op: message is
//     currently encrypted; aborting op...") when the message is encrypted
//     already; otherwise the application's sed_ds is copied into the
//     buffer (a len of 0 is EINVAL, "no data passed (len is 0)"),
//     hex-dumped, and the work scheduled on the kernel-global workqueue
//     ("work already on the kernel-global wq?" if it was pending).
//   - IOCTL_LLKD_SED_IOC_DECRYPT_MSG: EBADRQC ("decrypt op: message is
//     currently decrypted; aborting op...") when decrypted already;
//     otherwise data_xform becomes XF_DECRYPT and the work is scheduled.
//   - IOCTL_LLKD_SED_IOC_RETRIEVE_MSG: ETIMEDOUT if the last operation
//     missed its deadline; otherwise the buffer is copied out.
//   - IOCTL_LLKD_SED_IOC_DESTROY_MSG: the buffer is zeroed and the state
//     reset.
//
// A command of another magic logs "ioctl fail; magic # mismatch" and one
// numbered above 4 "ioctl fail; invalid cmd?", both ENOTTY.
//
// The work function sed3_worker runs once per encrypt or decrypt in a
// kworker (PRINT_CTX: [kworker/N:M] ...0): it arms the 10 ms deadline timer
// (mod_timer(jiffies + msecs_to_jiffies(10))), logs "[PID] work task about
// to execute work!", transforms the buffer as sed1 does, records the
// message's state, cancels the timer — "processing complete, timeout
// cancelled" or "cancelled the timer while it's inactive! (deadline
// missed?)" — logs SHOW_DELTA and "[PID] FYI, work task done,
// leaving...". The timer callback timesup() (softirq, ..s1) logs "***
// Timer expired! ***" and marks the message timed out until it is
// destroyed.
//
// Exit logs "waiting for our work task to finish...", cancels the work
// with cancel_work_sync — which takes a queued operation off the workqueue
// ("yes, there was indeed some pending work; now done...") or waits for a
// running one — then stops the timer and deregisters the device.
//
// Parameters:
//
//	make_it_fail  int,  0, 0660  1: msleep(TIMER_EXPIRE_MS+10) in the work,
//	                             so that the 10 ms deadline is missed
//	                             (writable at runtime through sysfs)
//	debug         bool, Y, 0444  pr_debug, dev_dbg, PRINT_CTX and the hex
//	                             dumps (the book builds with -DDEBUG)
//
// # The application
//
//	kdefer run sed3 --exec "userapp_sed2 /dev/sed3_drv hello 1 2 3 2 7"
//
// (userapp_sed2 is package sed2's program; choices as its arguments.)
//
// # Deliberate differences
//
// As kdefer's sed2: the ioctls wait for the operation in progress
// (flush_work, where C polls work_done with msleep_interruptible) before
// they look at the state or touch the shared buffer, retrieve and destroy
// included, and they hold a mutex of the driver; a len outside 0..512 is
// EINVAL ("ioctl fail; invalid payload len %d"); SHOW_DELTA is the
// book-era form; in virtual time the transform is charged a nominal
// XformCostNs of CPU time; the driver context is per instance (the C
// global gpriv).
package sed3

import (
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/modules/internal/hexdump"
	"github.com/kdefer/kdefer/modules/sed1"
	"github.com/kdefer/kdefer/timekeeping"
	"github.com/kdefer/kdefer/timer"
	"github.com/kdefer/kdefer/workqueue"
)

// DrvName is DRVNAME: the module's and the misc device's name.
const DrvName = "sed3_drv"

// The ioctl interface (the book-era sed_common.h of sed2 and sed3).
const (
	// Magic is IOCTL_LLKD_SED_MAGIC.
	Magic = 0xA9
	// MaxIoctl is IOCTL_LLKD_SED_MAXIOCTL, the highest command number.
	MaxIoctl = 4
	// CmdEncryptMsg is IOCTL_LLKD_SED_IOC_ENCRYPT_MSG, _IOR(Magic, 1, int).
	CmdEncryptMsg uint32 = 0x8004A901
	// CmdRetrieveMsg is IOCTL_LLKD_SED_IOC_RETRIEVE_MSG, _IOR(Magic, 2, int).
	CmdRetrieveMsg uint32 = 0x8004A902
	// CmdDecryptMsg is IOCTL_LLKD_SED_IOC_DECRYPT_MSG, _IOR(Magic, 3, int).
	CmdDecryptMsg uint32 = 0x8004A903
	// CmdDestroyMsg is IOCTL_LLKD_SED_IOC_DESTROY_MSG, _IOR(Magic, 4, int).
	CmdDestroyMsg uint32 = 0x8004A904
	// MaxData is MAX_DATA, the payload capacity.
	MaxData = sed1.MaxData
	// SedDsSize is sizeof(struct sed_ds).
	SedDsSize = sed1.SedDsSize
)

// enum xform of sed2 and sed3: the data_xform values.
const (
	XfNone     = 0 // XF_NONE
	XfRetrieve = 1 // XF_RETRIEVE
	XfEncrypt  = 2 // XF_ENCRYPT
	XfDecrypt  = 3 // XF_DECRYPT
)

// TimerExpireMs is TIMER_EXPIRE_MS, the deadline of an operation.
const TimerExpireMs = 10

// XformCostNs is the CPU time a transform is charged in virtual time.
const XformCostNs = sed1.XformCostNs

// SedDs is struct sed_ds: sed1's layout (the payload field is shmem in
// sed3's header, Data here).
type SedDs = sed1.SedDs

// Info defines the module.
var Info = module.Info{
	Name:        DrvName,
	Description: "sed3: simple encrypt-decrypt driver; demo misc driver for workqueue usage, kernel timers (and ioctl)",
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

// stMyCtx is struct stMyCtx, the driver context: the message's state, the
// deadline timer, the work item and the shared buffer. sedWork is found
// from the work function with container_of.
type stMyCtx struct {
	dev      *module.Device
	msgState atomic.Int32 // state of msg: encrypted or decrypted
	timedOut atomic.Int32
	timr     timer.Timer
	sedWork  workqueue.Work
	kdata    SedDs
	t1, t2   int64
	drv      *sed3Drv
	// ioctlLock serialises the ioctls (kdefer's; see the package doc).
	ioctlLock kernel.Mutex
}

// sed3Drv is one loaded copy of the module.
type sed3Drv struct {
	makeItFail int // guarded by params' lock: sysfs may write it
	debug      bool
	params     *module.Params

	pr      kernel.Logger
	fops    module.FileOps
	miscdev module.MiscDevice
	gpriv   *stMyCtx
}

func newDrv(p *module.Params) module.Instance {
	m := &sed3Drv{params: p}
	p.Int(&m.makeItFail, "make_it_fail", 0, 0660,
		"Deliberately ensure that the kernel timeout occurs before processing completes (default=0)")
	p.Bool(&m.debug, "debug", true, 0444, "pr_debug, dev_dbg, PRINT_CTX and hex dump output (default=Y)")
	return m
}

func (m *sed3Drv) makeItFailNow() int {
	m.params.Lock()
	defer m.params.Unlock()
	return m.makeItFail
}

// devDbg is dev_dbg, silenced with debug=N.
func (m *sed3Drv) devDbg(c *kernel.Ctx, dev *module.Device, format string, args ...any) {
	if m.debug {
		module.DevDbg(c, dev, format, args...)
	}
}

// printHexDumpBytes is print_hex_dump_bytes(prefix, DUMP_PREFIX_OFFSET,
// buf, len), a debug print.
func (m *sed3Drv) printHexDumpBytes(c *kernel.Ctx, prefix string, buf []byte) {
	if m.debug {
		hexdump.PrintHexDumpBytes(c, prefix, hexdump.PrefixOffset, buf)
	}
}

// timesup is the timer callback: it runs in timer softirq context.
func timesup(c *kernel.Ctx, t *timer.Timer) {
	priv := timer.ContainerOf[stMyCtx](t, unsafe.Offsetof(stMyCtx{}.timr))
	priv.timedOut.Store(1)
	priv.drv.pr.Notice(c, "*** Timer expired! ***\n")
	convenient.PrintCtx(c, priv.drv.pr)
}

// payload returns kd's payload, len bytes (clamped to the buffer).
func payload(kd *SedDs) []byte {
	return kd.Data[:min(max(kd.Len, 0), MaxData)]
}

// encrypt_decrypt_payload is the actual work on the shared buffer.
func (m *sed3Drv) encrypt_decrypt_payload(c *kernel.Ctx, work int, kd *SedDs) {
	m.printHexDumpBytes(c, "kdata->shmem: ", payload(kd))

	// Perform the actual processing on the payload
	switch work {
	case workIsEncrypt:
		sed1.Encrypt(payload(kd))
	case workIsDecrypt:
		sed1.Decrypt(payload(kd))
	}
	if c.Kernel().Virtual() {
		kernel.Spin(c, XformCostNs) // what the loop above costs a real CPU
	}
}

// sed3_worker is the work function: it runs in a kworker of the
// kernel-global workqueue, once for each encrypt or decrypt ioctl.
func sed3_worker(c *kernel.Ctx, work *workqueue.Work) {
	priv := workqueue.FromWork[stMyCtx](work, unsafe.Offsetof(stMyCtx{}.sedWork))
	m := priv.drv
	k := c.Kernel()
	pid := c.Current().PID()

	m.pr.Debug(c, "starting timer + processing now ...\n")
	// Start - the timer; set it to expire in TIMER_EXPIRE_MS ms
	if timer.Mod(c, &priv.timr, c.Jiffies()+k.HZ().MsecsToJiffies(TimerExpireMs)) != 0 {
		m.pr.Alert(c, "timer already active?\n")
	}

	priv.t1 = timekeeping.KtimeGetRealNs(c)

	//--------------- Critical section begins --------------------------
	m.pr.Debug(c, "[%d] work task about to execute work!\n", pid)
	convenient.PrintCtx(c, m.pr)

	switch priv.kdata.DataXform {
	case XfNone:
		m.pr.Debug(c, "data transform type: XF_NONE\n")
		// nothing to do
	case XfEncrypt:
		m.pr.Debug(c, "data transform type: XF_ENCRYPT\n")
		m.encrypt_decrypt_payload(c, workIsEncrypt, &priv.kdata)
		priv.msgState.Store(XfEncrypt)
	case XfDecrypt:
		m.pr.Debug(c, "data transform type: XF_DECRYPT\n")
		m.encrypt_decrypt_payload(c, workIsDecrypt, &priv.kdata)
		priv.msgState.Store(XfDecrypt)
	default:
		m.pr.Warn(c, "unknown transform passed (%d)\n", priv.kdata.DataXform)
	}

	if m.makeItFailNow() == 1 {
		delay.Msleep(c, TimerExpireMs+10)
	}
	//--------------- Critical section ends ----------------------------

	priv.t2 = timekeeping.KtimeGetRealNs(c)
	// work done, cancel the timeout
	if timer.Delete(&priv.timr) == 0 {
		m.pr.Info(c, "cancelled the timer while it's inactive! (deadline missed?)\n")
	} else {
		m.pr.Info(c, "processing complete, timeout cancelled\n")
	}
	convenient.ShowDeltaBook(c, m.pr, priv.t2, priv.t1)

	m.pr.Info(c, "[%d] FYI, work task done, leaving...\n", pid)
}

// scheduleWork hands the operation to the kernel-global workqueue.
func (m *sed3Drv) scheduleWork(c *kernel.Ctx, priv *stMyCtx) {
	if !workqueue.ScheduleWork(c, &priv.sedWork) {
		m.pr.Warn(c, "work already on the kernel-global wq?\n")
	}
}

// ioctl_miscdrv is the driver's unlocked_ioctl.
func (m *sed3Drv) ioctl_miscdrv(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
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

	priv.ioctlLock.Lock(c)
	defer priv.ioctlLock.Unlock(c)

	switch cmd {
	case CmdEncryptMsg: // work: encrypts the msg passed in
		m.pr.Debug(c, "In ioctl 'encrypt' cmd option; arg=0x%x\n", arg.Value())
		workqueue.FlushWork(c, &priv.sedWork)  // POLL_ON_WORK_DONE
		if priv.msgState.Load() == XfEncrypt { // already encrypted?
			m.pr.Notice(c, "encrypt op: message is currently encrypted; aborting op...\n")
			return 0, kernel.EBADRQC // 'Invalid request code'
		}
		var raw [SedDsSize]byte
		if err := arg.CopyFromUser(raw[:]); err != nil {
			m.pr.Warn(c, "copy_from_user() failed\n")
			return 0, kernel.EFAULT
		}
		priv.kdata = sed1.DecodeSedDs(raw[:])
		kd := &priv.kdata
		m.pr.Debug(c, "xform=%d, len=%d\n", kd.DataXform, kd.Len)
		if kd.Len == 0 {
			m.pr.Warn(c, "no data passed (len is 0)\n")
			return 0, kernel.EINVAL
		}
		if kd.Len < 0 || kd.Len > MaxData {
			m.pr.Warn(c, "ioctl fail; invalid payload len %d\n", kd.Len)
			kd.Len = 0
			return 0, kernel.EINVAL
		}
		m.printHexDumpBytes(c, "payload: ", payload(kd))
		// Have the kernel-global workqueue encrypt the message !
		m.scheduleWork(c, priv)
	case CmdDecryptMsg: // work: decrypts the encrypted msg
		m.pr.Debug(c, "In ioctl 'decrypt' cmd option\n")
		workqueue.FlushWork(c, &priv.sedWork)  // POLL_ON_WORK_DONE
		if priv.msgState.Load() == XfDecrypt { // already decrypted?
			m.pr.Notice(c, "decrypt op: message is currently decrypted; aborting op...\n")
			return 0, kernel.EBADRQC
		}
		priv.kdata.DataXform = XfDecrypt
		m.scheduleWork(c, priv)
	case CmdRetrieveMsg: // ioctl: retrieves the encrypted msg
		m.pr.Debug(c, "In ioctl 'retrieve' cmd option; arg=0x%x\n", arg.Value())
		workqueue.FlushWork(c, &priv.sedWork) // kdefer: the operation in progress first
		if priv.timedOut.Load() == 1 {
			m.pr.Debug(c, "the encrypt op had timed out! retruning -ETIMEDOUT\n")
			return 0, kernel.ETIMEDOUT
		}
		if err := arg.CopyToUser(priv.kdata.Encode()); err != nil {
			m.pr.Warn(c, "copy_to_user() failed\n")
			return 0, kernel.EFAULT
		}
	case CmdDestroyMsg: // ioctl: destroys the msg
		m.pr.Debug(c, "In ioctl 'destroy' cmd option\n")
		workqueue.FlushWork(c, &priv.sedWork)
		priv.kdata = SedDs{}
		priv.msgState.Store(0)
		priv.timedOut.Store(0)
		priv.t1, priv.t2 = 0, 0
	default:
		return 0, kernel.ENOTTY
	}
	return 0, nil
}

// open_miscdrv is the driver's open.
func (m *sed3Drv) open_miscdrv(c *kernel.Ctx, f *module.File) error {
	convenient.PrintCtx(c, m.pr) // displays process (or atomic) context info
	m.pr.Info(c, "opening \"%s\" now\n", f.Name())
	return nil // nonseekable_open
}

// read_miscdrv is the driver's (dummy) read.
func (m *sed3Drv) read_miscdrv(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
	m.pr.Info(c, "to read %d bytes\n", len(buf))
	return len(buf), nil
}

// write_miscdrv is the driver's (dummy) write.
func (m *sed3Drv) write_miscdrv(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
	m.pr.Info(c, "to write %d bytes\n", len(data))
	return len(data), nil
}

// close_miscdrv is the driver's release.
func (m *sed3Drv) close_miscdrv(c *kernel.Ctx, f *module.File) error {
	m.pr.Info(c, "closing \"%s\"\n", f.Name())
	return nil
}

// Init is module_init(sed3_drv_init).
func (m *sed3Drv) Init(c *kernel.Ctx) error { return m.sed3_drv_init(c) }

// Exit is module_exit(sed3_drv_exit).
func (m *sed3Drv) Exit(c *kernel.Ctx) { m.sed3_drv_exit(c) }

// sed3_drv_init is named as the C function: pr_fmt prints the name.
func (m *sed3Drv) sed3_drv_init(c *kernel.Ctx) error {
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

	priv := &stMyCtx{dev: dev, drv: m} // devm_kzalloc
	m.gpriv = priv

	// Initialize our work task on the kernel-global workqueue
	workqueue.Init(&priv.sedWork, sed3_worker)
	m.pr.Info(c, "Our work task on the kernel-global workqueue is initialized\n")

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

// sed3_drv_exit is named as the C function.
func (m *sed3Drv) sed3_drv_exit(c *kernel.Ctx) {
	priv := m.gpriv
	m.pr.Debug(c, "waiting for our work task to finish...\n")
	if workqueue.CancelWorkSync(c, &priv.sedWork) {
		m.pr.Info(c, "yes, there was indeed some pending work; now done...\n")
	}

	m.devDbg(c, priv.dev, "unloading\n")
	timer.DeleteSync(c, &priv.timr)
	module.MiscDeregister(c, &m.miscdev)
}
