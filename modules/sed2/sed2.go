// Package sed2 is the seed demo sed2 (Linux Kernel Programming Part 2,
// ch5/sed2, book-era tree f947bc9: the sed2_drv driver, sed_common.h and
// the userapp_sed2 program): sed1's "simple encrypt decrypt" misc device,
// /dev/sed2_drv, with the work moved out of the ioctl into a kernel
// thread of the driver, sed2_drv/worker, under a 10 ms kernel-timer
// deadline. The operations are asynchronous: encrypt and decrypt queue the
// work and return; the application retrieves the result with another
// ioctl.
//
// # The driver, module sed2_drv
//
// One shared buffer, a struct sed_ds (SedDs, 524 bytes: data_xform, len,
// timed_out, shmem[512]), holds the message. The ioctls, all declared
// _IOR(0xA9, n, int) as in the book-era header (0x8004A901..0x8004A904):
//
//   - IOCTL_LLKD_SED_IOC_ENCRYPT_MSG: refused with EBADRQC ("encrypt op:
//     message is currently encrypted; aborting op...") when the message is
//     encrypted already; otherwise the application's sed_ds is copied into
//     the buffer (a len of 0 is EINVAL, "no data passed (len is 0)"),
//     hex-dumped ("payload: "), and the work queued to the worker.
//   - IOCTL_LLKD_SED_IOC_DECRYPT_MSG: EBADRQC ("decrypt op: message is
//     currently decrypted; aborting op...") when decrypted already;
//     otherwise data_xform becomes XF_DECRYPT and the work is queued.
//   - IOCTL_LLKD_SED_IOC_RETRIEVE_MSG: ETIMEDOUT if the last operation
//     missed its deadline; otherwise the buffer is copied to the
//     application.
//   - IOCTL_LLKD_SED_IOC_DESTROY_MSG: the buffer is zeroed and the state
//     (encrypted/decrypted, timed out) reset.
//
// A command of another magic logs "ioctl fail; magic # mismatch" and one
// numbered above 4 "ioctl fail; invalid cmd?", both ENOTTY.
//
// The work (worker_kthread, in the worker's process context: PRINT_CTX
// shows [sed2_drv/worker] ...0) arms the timer with mod_timer(jiffies +
// msecs_to_jiffies(10)), transforms the buffer as sed1 does (XOR 63, add
// 63; the inverse to decrypt), records the message's state, and cancels
// the timer: del_timer() tells whether the deadline was kept ("processing
// complete, timeout cancelled") or missed ("cancelled the timer while it's
// inactive! (deadline missed?)"); SHOW_DELTA logs the time taken, and
// "[PID] FYI, work done, going to sleep now...". The timer callback
// timesup() runs in timer softirq context, logs "*** Timer expired! ***"
// and PRINT_CTX (..s1), and marks the message timed out, which stays so
// until it is destroyed (as in C).
//
// Parameters:
//
//	make_it_fail  int,  0, 0660  1: msleep(TIMER_EXPIRE_MS+10) in the work,
//	                             so that the 10 ms deadline is missed
//	                             (writable at runtime through sysfs)
//	debug         bool, Y, 0444  pr_debug, dev_dbg, PRINT_CTX and the hex
//	                             dumps (the book builds with -DDEBUG)
//
// # The application, userapp_sed2
//
// UserappSed2 is the program: "userapp_sed2 DEVICE MESSAGE [CHOICE...]"
// opens DEVICE, prints the banner, probes the driver for a message it
// holds already, and runs the book's menu (1 encrypt, 2 retrieve, 3
// decrypt, 4 destroy, 5 view the kernel log, 6 clear it, 7 quit), with the
// book's messages and guards. kdefer's programs have no standard input:
// the choices are the arguments after MESSAGE, each echoed after the
// prompt as a terminal shows what is typed:
//
//	kdefer run sed2 --exec "userapp_sed2 /dev/sed2_drv hello 1 2 3 2 7"
//
// UserappSed2Input is the same program reading its choices from a reader,
// without echo (as from a pipe), for a caller that has one.
//
// # Deliberate differences
//
//   - The worker is a kthread_worker (kthread_create_worker, "%s/%s" of
//     "sed2_drv" and "worker"), and an operation is a kthread_work queued
//     to it: the C driver wakes a hand-made kthread with wake_up_process,
//     and a wake-up that comes while the thread is in msleep is lost. The
//     work's function keeps the C thread's name, worker_kthread, and its
//     log lines. Exit runs kthread_destroy_worker where C runs
//     kthread_stop.
//   - The ioctls wait for the operation in progress (kthread_flush_work,
//     where C polls work_done with msleep_interruptible) before they look
//     at the state or touch the shared buffer; C checks the state and
//     overwrites the buffer first, and sets work_done before the
//     make_it_fail sleep. Retrieve and destroy wait too (C does not, and
//     may return the message half transformed). So encrypting twice gets
//     EBADRQC whatever the timing, and retrieve after a missed deadline
//     gets ETIMEDOUT.
//   - The ioctls hold a mutex of the driver: two applications at once do
//     not corrupt the shared buffer (the book leaves the locking for its
//     synchronisation chapters).
//   - A len outside 0..512 is refused with EINVAL and a pr_warn ("ioctl
//     fail; invalid payload len %d"), as in kdefer's sed1.
//   - SHOW_DELTA is the book-era form; in virtual time the transform is
//     charged sed1.XformCostNs of CPU time.
//   - The driver context is per instance (the C global gpriv).
package sed2

import (
	"errors"
	"sync/atomic"
	"unsafe"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/kthread"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/internal/convenient"
	"github.com/kdefer/kdefer/modules/internal/hexdump"
	"github.com/kdefer/kdefer/modules/sed1"
	"github.com/kdefer/kdefer/timekeeping"
	"github.com/kdefer/kdefer/timer"
)

// Names, from sed2_drv.c and userapp_sed2.c.
const (
	// DrvName is DRVNAME: the module's and the misc device's name.
	DrvName = "sed2_drv"
	// AppName is the application's name.
	AppName = "userapp_sed2"
	// KthreadName is KTHREAD_NAME; the worker is DrvName + "/" + it.
	KthreadName = "worker"
	// WorkerComm is the worker thread's name.
	WorkerComm = DrvName + "/" + KthreadName
)

// The ioctl interface (the book-era sed_common.h of sed2).
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

// enum xform of sed2: the data_xform values.
const (
	XfNone     = 0 // XF_NONE
	XfRetrieve = 1 // XF_RETRIEVE
	XfEncrypt  = 2 // XF_ENCRYPT
	XfDecrypt  = 3 // XF_DECRYPT
)

// Driver constants (sed2_drv.c).
const (
	// TimerExpireMs is TIMER_EXPIRE_MS, the deadline of an operation.
	TimerExpireMs = 10
)

// SedDs is struct sed_ds: sed1's layout, the payload field named shmem in
// sed2's header (Data here).
type SedDs = sed1.SedDs

// Info defines the module.
var Info = module.Info{
	Name:        DrvName,
	Description: "sed2: simple encrypt-decrypt driver; demo misc driver for kernel thread usage, kernel timers (and ioctl)",
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
// deadline timer, the worker and its work, the shared buffer.
type stMyCtx struct {
	dev      *module.Device
	msgState atomic.Int32 // state of msg: encrypted or decrypted
	timedOut atomic.Int32
	timr     timer.Timer
	worker   *kthread.Worker // kthrd_work
	work     kthread.Work
	kdata    SedDs
	t1, t2   int64
	pr       kernel.Logger
	// ioctlLock serialises the ioctls (kdefer's; see the package doc).
	ioctlLock kernel.Mutex
}

// sed2Drv is one loaded copy of the module.
type sed2Drv struct {
	makeItFail int // guarded by params' lock: sysfs may write it
	debug      bool
	params     *module.Params

	pr      kernel.Logger
	fops    module.FileOps
	miscdev module.MiscDevice
	gpriv   *stMyCtx
}

func newDrv(p *module.Params) module.Instance {
	m := &sed2Drv{params: p}
	p.Int(&m.makeItFail, "make_it_fail", 0, 0660,
		"Deliberately ensure that the kernel timeout occurs before processing completes (default=0)")
	p.Bool(&m.debug, "debug", true, 0444, "pr_debug, dev_dbg, PRINT_CTX and hex dump output (default=Y)")
	return m
}

func (m *sed2Drv) makeItFailNow() int {
	m.params.Lock()
	defer m.params.Unlock()
	return m.makeItFail
}

// devDbg is dev_dbg, silenced with debug=N.
func (m *sed2Drv) devDbg(c *kernel.Ctx, dev *module.Device, format string, args ...any) {
	if m.debug {
		module.DevDbg(c, dev, format, args...)
	}
}

// printHexDumpBytes is print_hex_dump_bytes(prefix, DUMP_PREFIX_OFFSET,
// buf, len), a debug print.
func (m *sed2Drv) printHexDumpBytes(c *kernel.Ctx, prefix string, buf []byte) {
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

// payload returns the kd's payload, len bytes (clamped to the buffer).
func payload(kd *SedDs) []byte {
	return kd.Data[:min(max(kd.Len, 0), MaxData)]
}

// encrypt_decrypt_payload is the actual work on the shared buffer.
func (m *sed2Drv) encrypt_decrypt_payload(c *kernel.Ctx, work int, kd *SedDs) {
	m.printHexDumpBytes(c, "kdata->shmem: ", payload(kd))

	// Perform the actual processing on the payload
	switch work {
	case workIsEncrypt:
		sed1.Encrypt(payload(kd))
	case workIsDecrypt:
		sed1.Decrypt(payload(kd))
	}
	if c.Kernel().Virtual() {
		kernel.Spin(c, sed1.XformCostNs) // what the loop above costs a real CPU
	}
}

// worker_kthread is the work: it runs in the worker kthread,
// sed2_drv/worker, once for each encrypt or decrypt ioctl.
func (m *sed2Drv) worker_kthread(c *kernel.Ctx, w *kthread.Work) {
	priv := kthread.FromWork[stMyCtx](w, unsafe.Offsetof(stMyCtx{}.work))
	k := c.Kernel()
	pid := c.Current().PID()

	m.pr.Debug(c, "starting timer + processing now ...\n")
	// Start - the timer; set it to expire in TIMER_EXPIRE_MS ms
	if timer.Mod(c, &priv.timr, c.Jiffies()+k.HZ().MsecsToJiffies(TimerExpireMs)) != 0 {
		m.pr.Alert(c, "timer already active?\n")
	}

	priv.t1 = timekeeping.KtimeGetRealNs(c)

	//--------------- Critical section begins --------------------------
	m.pr.Debug(c, "[%d] worker kthread ready to execute work!\n", pid)
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

	m.pr.Info(c, "[%d] FYI, work done, going to sleep now...\n", pid)
}

// queueWork hands the operation to the worker (the C code's
// wake_up_process of its kthread).
func (m *sed2Drv) queueWork(c *kernel.Ctx, priv *stMyCtx) {
	if !kthread.QueueWork(c, priv.worker, &priv.work) {
		m.pr.Warn(c, "worker kthread already running when awoken?\n")
	}
}

// ioctl_miscdrv is the driver's unlocked_ioctl.
func (m *sed2Drv) ioctl_miscdrv(c *kernel.Ctx, f *module.File, cmd uint32, arg *module.UserArg) (int64, error) {
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
	case CmdEncryptMsg: // kthread: encrypts the msg passed in
		m.pr.Debug(c, "In ioctl 'encrypt' cmd option; arg=0x%x\n", arg.Value())
		kthread.FlushWork(c, &priv.work)       // POLL_ON_WORK_DONE
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
		// Wake up our kernel thread and have it encrypt the message !
		m.queueWork(c, priv)
	case CmdDecryptMsg: // kthread: decrypts the encrypted msg
		m.pr.Debug(c, "In ioctl 'decrypt' cmd option\n")
		kthread.FlushWork(c, &priv.work)       // POLL_ON_WORK_DONE
		if priv.msgState.Load() == XfDecrypt { // already decrypted?
			m.pr.Notice(c, "decrypt op: message is currently decrypted; aborting op...\n")
			return 0, kernel.EBADRQC
		}
		priv.kdata.DataXform = XfDecrypt
		m.queueWork(c, priv)
	case CmdRetrieveMsg: // ioctl: retrieves the encrypted msg
		m.pr.Debug(c, "In ioctl 'retrieve' cmd option; arg=0x%x\n", arg.Value())
		kthread.FlushWork(c, &priv.work) // kdefer: the operation in progress first
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
		kthread.FlushWork(c, &priv.work)
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
func (m *sed2Drv) open_miscdrv(c *kernel.Ctx, f *module.File) error {
	convenient.PrintCtx(c, m.pr) // displays process (or atomic) context info
	m.pr.Info(c, "opening \"%s\" now\n", f.Name())
	return nil // nonseekable_open
}

// read_miscdrv is the driver's (dummy) read.
func (m *sed2Drv) read_miscdrv(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
	m.pr.Info(c, "to read %d bytes\n", len(buf))
	return len(buf), nil
}

// write_miscdrv is the driver's (dummy) write.
func (m *sed2Drv) write_miscdrv(c *kernel.Ctx, f *module.File, data []byte, off *int64) (int, error) {
	m.pr.Info(c, "to write %d bytes\n", len(data))
	return len(data), nil
}

// close_miscdrv is the driver's release.
func (m *sed2Drv) close_miscdrv(c *kernel.Ctx, f *module.File) error {
	m.pr.Info(c, "closing \"%s\"\n", f.Name())
	return nil
}

// Init is module_init(sed2_drv_init).
func (m *sed2Drv) Init(c *kernel.Ctx) error { return m.sed2_drv_init(c) }

// Exit is module_exit(sed2_drv_exit).
func (m *sed2Drv) Exit(c *kernel.Ctx) { m.sed2_drv_exit(c) }

// sed2_drv_init is named as the C function: pr_fmt prints the name.
func (m *sed2Drv) sed2_drv_init(c *kernel.Ctx) error {
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

	// Create our 'worker' kernel thread: a kthread_worker
	w, err := kthread.RunWorker(c, 0, "%s/%s", DrvName, KthreadName)
	if err != nil {
		ret := -int(kernel.ENOMEM) // it's usually -ENOMEM
		var e kernel.Errno
		if errors.As(err, &e) {
			ret = -int(e)
		}
		module.DevErr(c, dev, "kthread creation failed (%d)\n", ret)
		module.MiscDeregister(c, &m.miscdev)
		return err
	}
	priv.worker = w
	kthread.InitWork(&priv.work, m.worker_kthread)
	m.pr.Info(c, "worker kthread created... (PID %d)\n", w.Task().PID())

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

// sed2_drv_exit is named as the C function.
func (m *sed2Drv) sed2_drv_exit(c *kernel.Ctx) {
	priv := m.gpriv
	m.pr.Debug(c, "waiting for our worker kthread to stop...\n")
	kthread.DestroyWorker(c, priv.worker)

	m.devDbg(c, priv.dev, "unloading\n")
	timer.DeleteSync(c, &priv.timr)
	module.MiscDeregister(c, &m.miscdev)
}
