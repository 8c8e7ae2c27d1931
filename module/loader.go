package module

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// State is a loaded module's state (enum module_state).
type State int32

// Module states. A module is Coming while its parameters are parsed and its
// Init runs, Live once Init succeeded, and Going while Exit runs (or after
// a failed Init).
const (
	StateLive   State = 0 // MODULE_STATE_LIVE
	StateComing State = 1 // MODULE_STATE_COMING
	StateGoing  State = 2 // MODULE_STATE_GOING
)

// String returns the state as /proc/modules shows it: "Live", "Loading" or
// "Unloading".
func (s State) String() string {
	switch s {
	case StateLive:
		return "Live"
	case StateComing:
		return "Loading"
	case StateGoing:
		return "Unloading"
	}
	return "Unformed"
}

// moduleRefBase is MODULE_REF_BASE: the count a removable module holds so
// that unloading can take it to zero atomically (try_release_module_ref).
const moduleRefBase = 1

// Module is a module loaded into one kernel (struct module).
type Module struct {
	info   Info
	inst   Instance
	params *Params
	taints uint32 // mod->taints; set before the module is listed
	state  atomic.Int32
	refcnt atomic.Int64
}

// Name returns the module's name.
func (m *Module) Name() string { return m.info.Name }

// Info returns the module's definition.
func (m *Module) Info() Info { return m.info }

// Instance returns the module's instance (what Info.New returned).
func (m *Module) Instance() Instance { return m.inst }

// Params returns the module's parameter table.
func (m *Module) Params() *Params { return m.params }

// State returns the module's state.
func (m *Module) State() State { return State(m.state.Load()) }

// Refcount is module_refcount(): the number of references held, by open
// files of the module's devices (lsmod's "Used by" count).
func (m *Module) Refcount() int { return int(m.refcnt.Load()) - moduleRefBase }

// tryGet is try_module_get(): it fails once the module is going. A nil
// module (code not owned by any module) always succeeds.
func (m *Module) tryGet() bool {
	if m == nil {
		return true
	}
	for {
		if m.State() == StateGoing {
			return false
		}
		n := m.refcnt.Load()
		if n == 0 {
			return false
		}
		if m.refcnt.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// put is module_put().
func (m *Module) put() {
	if m != nil {
		m.refcnt.Add(-1)
	}
}

// Taints returns the taint flags the module put on the kernel
// (mod->taints): kernel.TaintOOT for every module, since none is in-tree.
func (m *Module) Taints() uint32 { return m.taints }

// flags is module_flags(mod, buf, show_state=true): the module's taint
// letters, then "+" while loading or "-" while unloading, in parentheses:
// "(O)", "(O+)", "(O-)"; "" when there is nothing to show.
func (m *Module) flags() string {
	var b []byte
	if m.taints&kernel.TaintOOT != 0 {
		b = append(b, 'O')
	}
	switch m.State() {
	case StateGoing:
		b = append(b, '-')
	case StateComing:
		b = append(b, '+')
	}
	if len(b) == 0 {
		return ""
	}
	return "(" + string(b) + ")"
}

// ModLoader is one kernel's module loader: the modules list, insmod,
// rmmod, lsmod and /sys/module/<mod>/parameters. Get it with Loader.
type ModLoader struct {
	k   *kernel.Kernel
	reg *Registry
	st  *kstate
	// mods is the modules list, oldest first; guarded by st.mu.
	mods []*Module
}

// Loader returns k's module loader, creating it on the first call with
// registry reg (nil: an empty registry). Later calls return the same
// loader; they may pass nil or the same registry, and panic if they pass
// another one. Creating the loader installs k's module lister, so that BUG
// and WARN reports print "Modules linked in: …".
func Loader(k *kernel.Kernel, reg *Registry) *ModLoader {
	st := stateOf(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.loader != nil {
		if reg != nil && reg != st.loader.reg {
			panic("module: Loader: the kernel already has a loader with another registry")
		}
		return st.loader
	}
	if reg == nil {
		reg = NewRegistry()
	}
	ld := &ModLoader{k: k, reg: reg, st: st}
	st.loader = ld
	k.SetModuleLister(ld.linkedIn)
	return ld
}

// Registry returns the loader's registry.
func (ld *ModLoader) Registry() *Registry { return ld.reg }

// linkedIn lists the modules as print_modules() does: newest first, each
// followed by its flags ("testmod(O)", "(O+)" while loading, "(O-)" while
// unloading). It takes only the state lock, so
// a report may call it from any context.
func (ld *ModLoader) linkedIn() []string {
	ld.st.mu.Lock()
	defer ld.st.mu.Unlock()
	out := make([]string, 0, len(ld.mods))
	for i := len(ld.mods) - 1; i >= 0; i-- {
		out = append(out, ld.mods[i].Name()+ld.mods[i].flags())
	}
	return out
}

func (ld *ModLoader) findLocked(name string) *Module {
	for _, m := range ld.mods {
		if m.Name() == name {
			return m
		}
	}
	return nil
}

func (ld *ModLoader) removeLocked(m *Module) {
	for i, o := range ld.mods {
		if o == m {
			ld.mods = append(ld.mods[:i], ld.mods[i+1:]...)
			return
		}
	}
}

// Find returns the loaded (or loading, or unloading) module named name, or
// nil.
func (ld *ModLoader) Find(name string) *Module {
	ld.st.mu.Lock()
	defer ld.st.mu.Unlock()
	return ld.findLocked(name)
}

// Lsmod returns the names of the loaded modules, newest first, as lsmod
// and /proc/modules list them (the kernel adds a module at the head of its
// list). Modules still loading or already unloading are included.
func (ld *ModLoader) Lsmod() []string {
	ld.st.mu.Lock()
	defer ld.st.mu.Unlock()
	out := make([]string, 0, len(ld.mods))
	for i := len(ld.mods) - 1; i >= 0; i-- {
		out = append(out, ld.mods[i].Name())
	}
	return out
}

// Modules returns the modules list, newest first.
func (ld *ModLoader) Modules() []*Module {
	ld.st.mu.Lock()
	defer ld.st.mu.Unlock()
	out := make([]*Module, 0, len(ld.mods))
	for i := len(ld.mods) - 1; i >= 0; i-- {
		out = append(out, ld.mods[i])
	}
	return out
}

// Insmod loads module name with arguments args, as insmod(8) and
// init_module(2) do, from process context c (the insmod task).
//
// The arguments are joined with spaces into one option string, as insmod
// does with its argv, and parsed like the kernel's parse_args(): "name",
// "name=value", and double quotes around the value or the whole argument
// ("name=\"a b\"") to keep spaces; dashes and underscores in names are the
// same. An unknown parameter is reported ("<mod>: unknown parameter '<p>'
// ignored", KERN_WARNING) and ignored. A value that does not parse is
// reported ("<mod>: `<v>' invalid for parameter `<p>'", KERN_ERR), parsing
// goes on, and the load fails with that setter's errno: EINVAL, or ERANGE
// for a number out of its type's range, or ENOSPC for a string too long.
// Init is then not called.
//
// Every module is out-of-tree (none carries the "intree" modinfo): the
// first load into a kernel prints "<mod>: loading out-of-tree module
// taints kernel." (KERN_WARNING), as check_modinfo() does, before the
// parameters are parsed, and every load taints the kernel with
// kernel.TaintOOT ('O' in reports' "Tainted:" field). The taint stays after
// a failed load or an unload, as in the kernel.
//
// The returned error is an *Error (errors.Is works with the kernel.Errno):
// ENOENT when the registry has no such module, EEXIST when it is already
// loaded, and Init's own error when Init fails. Called outside process
// context it warns and fails with EINVAL.
func (ld *ModLoader) Insmod(c *kernel.Ctx, name string, args ...string) error {
	if err := syscallEntry(c, "init_module"); err != nil {
		return &Error{Op: "insmod", Module: name, Err: err}
	}
	info, ok := ld.reg.Lookup(name)
	if !ok {
		return &Error{Op: "insmod", Module: name, Err: kernel.ENOENT, notFound: true}
	}
	p := &Params{}
	m := &Module{info: info, params: p, taints: kernel.TaintOOT}
	m.inst = info.New(p)
	m.state.Store(int32(StateComing))
	m.refcnt.Store(moduleRefBase)

	// check_modinfo() taints (and warns) in layout_and_allocate(), before
	// add_unformed_module() looks for a module of the same name. The
	// test and the taint are done under st.mu, so that concurrent loads
	// warn once.
	st := ld.st
	st.mu.Lock()
	firstOOT := ld.k.Tainted()&kernel.TaintOOT == 0
	ld.k.AddTaint(kernel.TaintOOT)
	dup := ld.findLocked(name) != nil
	if !dup {
		ld.mods = append(ld.mods, m)
	}
	st.mu.Unlock()
	if firstOOT {
		kernel.Printk(c, printk.LevelWarning, "%s: loading out-of-tree module taints kernel.\n", name)
	}
	if dup {
		return &Error{Op: "insmod", Module: name, Err: kernel.EEXIST}
	}

	if e := parseArgs(c, name, strings.Join(args, " "), p); e != 0 {
		ld.unlist(m)
		return &Error{Op: "insmod", Module: name, Err: e}
	}

	st.setRunning(c.Current(), m)
	err := m.inst.Init(c)
	st.setRunning(c.Current(), nil)
	if err != nil {
		m.state.Store(int32(StateGoing))
		m.refcnt.Store(0)
		st.reapOrphans(c, m, "init")
		ld.unlist(m)
		return &Error{Op: "insmod", Module: name, Err: err}
	}
	m.state.Store(int32(StateLive))
	return nil
}

func (ld *ModLoader) unlist(m *Module) {
	ld.st.mu.Lock()
	ld.removeLocked(m)
	ld.st.mu.Unlock()
}

// Rmmod unloads module name, as rmmod(8) and delete_module(2) do, from
// process context c: Exit runs in c. It fails with ENOENT when the module
// is not loaded (or still loading, or already unloading) and with EBUSY
// while a file of one of its devices is open (rmmod: "Module X is in
// use"). Misc devices and cdevs the module left registered are removed
// with a WARN (in the kernel the next open would crash); char device
// regions stay registered, as in the kernel, until unregistered.
func (ld *ModLoader) Rmmod(c *kernel.Ctx, name string) error {
	if err := syscallEntry(c, "delete_module"); err != nil {
		return &Error{Op: "rmmod", Module: name, Err: err}
	}
	st := ld.st
	st.mu.Lock()
	m := ld.findLocked(name)
	if m == nil || m.State() != StateLive {
		st.mu.Unlock()
		return &Error{Op: "rmmod", Module: name, Err: kernel.ENOENT}
	}
	if !m.refcnt.CompareAndSwap(moduleRefBase, 0) {
		st.mu.Unlock()
		return &Error{Op: "rmmod", Module: name, Err: kernel.EBUSY}
	}
	m.state.Store(int32(StateGoing))
	st.mu.Unlock()

	st.setRunning(c.Current(), m)
	m.inst.Exit(c)
	st.setRunning(c.Current(), nil)
	st.reapOrphans(c, m, "exit")
	ld.unlist(m)
	return nil
}

// ParamGet reads /sys/module/<mod>/parameters/<name>: the value as the
// parameter's getter formats it, without the trailing newline. It fails
// with ENOENT if the module is not loaded or has no such parameter in sysfs
// (perm 0), and with EACCES if perm has no read bit.
func (ld *ModLoader) ParamGet(mod, name string) (string, error) {
	p, kp, err := ld.sysfsParam(mod, name)
	if err != nil {
		return "", err
	}
	if kp.perm&0444 == 0 {
		return "", kernel.EACCES
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return kp.get(), nil
}

// ParamSet writes value to /sys/module/<mod>/parameters/<name> from
// process context c (param_attr_store): value is parsed by the parameter's
// setter as given (a trailing newline is accepted by the number and bool
// parsers). It fails with ENOENT as ParamGet, with EACCES if perm has no
// write bit (kernfs refuses to open such a file for writing, even for
// root), and with the setter's errno (EINVAL, ERANGE, ENOSPC) for a bad
// value, which leaves the parameter unchanged. Nothing is logged.
func (ld *ModLoader) ParamSet(c *kernel.Ctx, mod, name, value string) error {
	if err := syscallEntry(c, "write"); err != nil {
		return err
	}
	p, kp, err := ld.sysfsParam(mod, name)
	if err != nil {
		return err
	}
	if kp.perm&0222 == 0 {
		return kernel.EACCES
	}
	p.mu.Lock()
	e := kp.set(value, false)
	p.mu.Unlock()
	if e != 0 {
		return e
	}
	return nil
}

// ParamNames lists the parameters of a loaded module that sysfs shows
// (perm not 0), in declaration order, or nil if mod is not loaded.
func (ld *ModLoader) ParamNames(mod string) []string {
	m := ld.Find(mod)
	if m == nil {
		return nil
	}
	var out []string
	for _, pi := range m.params.List() {
		if pi.Perm != 0 {
			out = append(out, pi.Name)
		}
	}
	return out
}

func (ld *ModLoader) sysfsParam(mod, name string) (*Params, *kparam, error) {
	m := ld.Find(mod)
	if m == nil {
		return nil, nil, kernel.ENOENT
	}
	kp := m.params.lookup(name)
	if kp == nil || kp.perm == 0 {
		return nil, nil, kernel.ENOENT
	}
	return m.params, kp, nil
}

// Error is the failure of Insmod or Rmmod. Its text is the line the kmod
// tools print, e.g.
//
//	insmod: ERROR: could not insert module testmod: Invalid parameters
//	rmmod: ERROR: Module testmod is in use
//
// and it unwraps to the errno (or to the module's own Init error).
type Error struct {
	// Op is "insmod" or "rmmod".
	Op string
	// Module is the module's name.
	Module string
	// Err is the cause: a kernel.Errno, or the error Init returned.
	Err error

	notFound bool // insmod could not find the module at all
}

// Error returns kmod's message. For insmod the errno is described by kmod's
// mod_strerror(): ENOEXEC "Invalid module format", ENOENT "Unknown symbol in
// module", ESRCH "Module has wrong symbol version", EINVAL "Invalid
// parameters", anything else strerror.
func (e *Error) Error() string {
	if e.Op == "rmmod" {
		switch {
		case isErrno(e.Err, kernel.EBUSY):
			return "rmmod: ERROR: Module " + e.Module + " is in use"
		case isErrno(e.Err, kernel.ENOENT):
			return "rmmod: ERROR: Module " + e.Module + " is not currently loaded"
		}
		return "rmmod: ERROR: could not remove module " + e.Module + ": " + e.Err.Error()
	}
	if e.notFound {
		return e.Op + ": ERROR: could not load module " + e.Module + ": " + e.Err.Error()
	}
	return e.Op + ": ERROR: could not insert module " + e.Module + ": " + modStrerror(e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func isErrno(err error, want kernel.Errno) bool {
	e, ok := kernel.AsErrno(err)
	return ok && e == want
}

// modStrerror is kmod's mod_strerror().
func modStrerror(err error) string {
	e, ok := kernel.AsErrno(err)
	if !ok {
		return err.Error()
	}
	switch e {
	case 8: // ENOEXEC
		return "Invalid module format"
	case kernel.ENOENT:
		return "Unknown symbol in module"
	case kernel.ESRCH:
		return "Module has wrong symbol version"
	case kernel.EINVAL:
		return "Invalid parameters"
	}
	return e.Error()
}

// kstate is the per-kernel state of this package: the loader, the char
// device tables, devtmpfs and the open files.
type kstate struct {
	k *kernel.Kernel

	// mu guards every field below and ModLoader.mods. It is never held
	// while calling a module, a driver or a kernel report (WARN, BUG).
	mu      sync.Mutex
	loader  *ModLoader
	running map[*kernel.Task]*Module // module whose Init/Exit runs on the task

	nodes     map[string]*inode // devtmpfs and mknod'ed nodes, by path
	misc      []*MiscDevice     // misc_list, newest first
	miscCdev  *Cdev             // the cdev of major 10 ("misc")
	dynMinors map[int]bool      // dynamic misc minors in use
	regions   []*chrdevRegion   // char device regions, by major then minor
	cdevs     []*Cdev           // cdev_map probes: smallest range first, newest first among equals
	fds       map[*kernel.Task]map[int]*Fd
}

var stateKey kernel.LocalKey

func stateOf(k *kernel.Kernel) *kstate {
	return k.Local(&stateKey, newKstate).(*kstate)
}

func newKstate(k *kernel.Kernel) any {
	st := &kstate{
		k:         k,
		running:   make(map[*kernel.Task]*Module),
		nodes:     make(map[string]*inode),
		dynMinors: make(map[int]bool),
		fds:       make(map[*kernel.Task]map[int]*Fd),
	}
	// misc_init(): register_chrdev(MISC_MAJOR, "misc", &misc_fops).
	st.miscCdev = &Cdev{isMisc: true}
	st.regions = []*chrdevRegion{{major: MiscMajor, baseminor: 0, minorct: 256, name: "misc", cdev: st.miscCdev}}
	st.miscCdev.dev, st.miscCdev.count, st.miscCdev.added = MkDev(MiscMajor, 0), 256, true
	st.cdevs = []*Cdev{st.miscCdev}
	// do_exit() → exit_files(): a task's open files are closed when it
	// exits.
	k.OnTaskExit(st.exitFiles)
	return st
}

func (st *kstate) setRunning(t *kernel.Task, m *Module) {
	st.mu.Lock()
	if m == nil {
		delete(st.running, t)
	} else {
		st.running[t] = m
	}
	st.mu.Unlock()
}

// thisModuleLocked is THIS_MODULE for code called from c: the module whose
// Init or Exit is running on c's task, or nil.
func (st *kstate) thisModuleLocked(c *kernel.Ctx) *Module {
	return st.running[c.Current()]
}

// reapOrphans removes the misc devices and cdevs that module m left
// registered after its Init failed or its Exit returned, with a WARN for
// each.
func (st *kstate) reapOrphans(c *kernel.Ctx, m *Module, phase string) {
	st.mu.Lock()
	var miscs []*MiscDevice
	for _, md := range st.misc {
		if md.owner == m {
			miscs = append(miscs, md)
		}
	}
	var cdevs []*Cdev
	for _, cd := range st.cdevs {
		if cd.owner == m {
			cdevs = append(cdevs, cd)
		}
	}
	for _, md := range miscs {
		st.miscRemoveLocked(md)
	}
	for _, cd := range cdevs {
		st.cdevRemoveLocked(cd)
	}
	st.mu.Unlock()
	for _, md := range miscs {
		kernel.Warn(c, "module %s: misc device %s still registered after %s; removed\n", m.Name(), md.Name, phase)
	}
	for _, cd := range cdevs {
		kernel.Warn(c, "module %s: cdev %s still added after %s; removed\n", m.Name(), cd.dev, phase)
	}
}

// syscallEntry checks that a system call comes from process context:
// otherwise it warns and returns EINVAL. In atomic process context it
// reports might_sleep's BUG and goes on.
func syscallEntry(c *kernel.Ctx, name string) error {
	if !c.InTask() {
		ctx := "softirq"
		if c.InHardirq() {
			ctx = "hardirq"
		}
		kernel.Warn(c, "%s() called from %s context\n", name, ctx)
		return kernel.EINVAL
	}
	if c.Kernel().ShuttingDown() {
		return kernel.ErrShutdown // no module comes or goes while the kernel stops
	}
	kernel.MightSleep(c)
	return nil
}
