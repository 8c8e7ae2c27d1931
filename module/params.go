package module

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// maxCharpLen is the longest value param_set_charp accepts (1024 bytes).
const maxCharpLen = 1024

// Params is the parameter table of one module instance: the module's
// struct kernel_param array (__param section) together with the lock that
// guards the values, kernel_param_lock(THIS_MODULE).
//
// Info.New declares each parameter by binding it to a field of the new
// instance, as module_param() binds a static variable:
//
//	p.Int(&m.makeItFail, "make_it_fail", 0, 0660, "set to 1 to make the op miss its deadline")
//
// Declaring stores the default in the field. insmod arguments and writes to
// /sys/module/<mod>/parameters/<name> (ModLoader.ParamSet) store into the
// field while holding the lock. A module whose parameter is writable at
// runtime (a perm with a write bit) and that reads it from its own tasks
// while the kernel runs in real time must read it under Lock/Unlock, or the
// Go race detector will see what the kernel tolerates; in virtual time only
// one task runs at a time and no lock is needed.
type Params struct {
	mu     sync.Mutex
	params []*kparam
	err    error // first declaration error (reported by Registry.Register)
}

// kparam is struct kernel_param with its kernel_param_ops.
type kparam struct {
	name, typ, desc string
	perm            uint32
	noarg           bool // KERNEL_PARAM_OPS_FL_NOARG: "name" alone is accepted
	set             func(val string, bare bool) kernel.Errno
	get             func() string
}

// Lock is kernel_param_lock(THIS_MODULE): it excludes concurrent stores by
// insmod and by sysfs writes. Do not call into the kernel while holding it.
func (p *Params) Lock() { p.mu.Lock() }

// Unlock is kernel_param_unlock(THIS_MODULE).
func (p *Params) Unlock() { p.mu.Unlock() }

// ParamInfo describes one declared parameter, as modinfo and
// /sys/module/<mod>/parameters show it.
type ParamInfo struct {
	// Name is the parameter's name.
	Name string
	// Type is the kernel's type name: "int", "uint", "long", "ulong",
	// "short", "ushort", "byte", "bool", "invbool" or "charp".
	Type string
	// Perm is the sysfs permission (0: not in sysfs).
	Perm uint32
	// Description is the MODULE_PARM_DESC text.
	Description string
	// Default is the value right after declaration, formatted as sysfs
	// shows it (without the trailing newline).
	Default string
}

// String formats the parameter as modinfo's "parm:" field does:
// "name:description (type)".
func (pi ParamInfo) String() string {
	return pi.Name + ":" + pi.Description + " (" + pi.Type + ")"
}

// List returns the declared parameters in declaration order, with their
// current values as Default.
func (p *Params) List() []ParamInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ParamInfo, 0, len(p.params))
	for _, kp := range p.params {
		out = append(out, ParamInfo{Name: kp.name, Type: kp.typ, Perm: kp.perm, Description: kp.desc, Default: kp.get()})
	}
	return out
}

func (p *Params) lookup(name string) *kparam {
	for _, kp := range p.params {
		if kp.name == name {
			return kp
		}
	}
	return nil
}

func (p *Params) add(kp *kparam) {
	if p.err != nil {
		return
	}
	switch {
	case kp.name == "" || strings.ContainsAny(kp.name, "= \t\n\"/"):
		p.err = fmt.Errorf("module_param: invalid name %q", kp.name)
		return
	case verifyOctalPermissions(kp.perm) != "":
		p.err = fmt.Errorf("module_param %s: perm %#o: %s", kp.name, kp.perm, verifyOctalPermissions(kp.perm))
		return
	}
	for _, o := range p.params {
		if parameq(o.name, kp.name) {
			p.err = fmt.Errorf("module_param %s: declared twice", kp.name)
			return
		}
	}
	p.params = append(p.params, kp)
}

// verifyOctalPermissions is VERIFY_OCTAL_PERMISSIONS(): the kernel refuses
// to build a module_param with such a perm. It returns "" when perm is fine.
func verifyOctalPermissions(perm uint32) string {
	switch {
	case perm > 0777:
		return "not an octal permission"
	case (perm>>6)&4 < (perm>>3)&4 || (perm>>3)&4 < perm&4:
		return "USER_READABLE >= GROUP_READABLE >= OTHER_READABLE violated"
	case (perm>>6)&2 < (perm>>3)&2:
		return "USER_WRITABLE >= GROUP_WRITABLE violated"
	case perm&2 != 0:
		return "OTHER_WRITABLE is not allowed"
	}
	return ""
}

// signedParam declares a parameter of a signed C type parsed by kstrtoll
// and range-checked to [lo, hi] (ERANGE outside).
func signedParam[T ~int | ~int16 | ~int32 | ~int64](p *Params, v *T, typ, name string, def T, perm uint32, desc string, lo, hi int64) {
	*v = def
	p.add(&kparam{name: name, typ: typ, perm: perm, desc: desc,
		set: func(s string, _ bool) kernel.Errno {
			n, e := kstrtoll(s)
			if e == 0 && (n < lo || n > hi) {
				e = kernel.ERANGE
			}
			if e == 0 {
				*v = T(n)
			}
			return e
		},
		get: func() string { return strconv.FormatInt(int64(*v), 10) }})
}

// unsignedParam declares a parameter of an unsigned C type parsed by
// kstrtoull and range-checked to [0, hi].
func unsignedParam[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](p *Params, v *T, typ, name string, def T, perm uint32, desc string, hi uint64) {
	*v = def
	p.add(&kparam{name: name, typ: typ, perm: perm, desc: desc,
		set: func(s string, _ bool) kernel.Errno {
			n, e := kstrtoull(s)
			if e == 0 && n > hi {
				e = kernel.ERANGE
			}
			if e == 0 {
				*v = T(n)
			}
			return e
		},
		get: func() string { return strconv.FormatUint(uint64(*v), 10) }})
}

// Int is module_param(name, int, perm) with MODULE_PARM_DESC(name, desc):
// values are parsed by kstrtoint (base 0: "0x" hex, leading "0" octal) and
// must fit a C int.
func (p *Params) Int(v *int, name string, def int, perm uint32, desc string) {
	signedParam(p, v, "int", name, def, perm, desc, math.MinInt32, math.MaxInt32)
}

// Uint is module_param(name, uint, perm): kstrtouint, a C unsigned int.
func (p *Params) Uint(v *uint, name string, def uint, perm uint32, desc string) {
	unsignedParam(p, v, "uint", name, def, perm, desc, math.MaxUint32)
}

// Long is module_param(name, long, perm): kstrtol, a 64-bit C long.
func (p *Params) Long(v *int64, name string, def int64, perm uint32, desc string) {
	signedParam(p, v, "long", name, def, perm, desc, math.MinInt64, math.MaxInt64)
}

// Ulong is module_param(name, ulong, perm): kstrtoul, a 64-bit C unsigned
// long.
func (p *Params) Ulong(v *uint64, name string, def uint64, perm uint32, desc string) {
	unsignedParam(p, v, "ulong", name, def, perm, desc, math.MaxUint64)
}

// Short is module_param(name, short, perm): kstrtos16.
func (p *Params) Short(v *int16, name string, def int16, perm uint32, desc string) {
	signedParam(p, v, "short", name, def, perm, desc, math.MinInt16, math.MaxInt16)
}

// Ushort is module_param(name, ushort, perm): kstrtou16.
func (p *Params) Ushort(v *uint16, name string, def uint16, perm uint32, desc string) {
	unsignedParam(p, v, "ushort", name, def, perm, desc, math.MaxUint16)
}

// Byte is module_param(name, byte, perm): kstrtou8, a C unsigned char.
func (p *Params) Byte(v *uint8, name string, def uint8, perm uint32, desc string) {
	unsignedParam(p, v, "byte", name, def, perm, desc, math.MaxUint8)
}

// Bool is module_param(name, bool, perm): param_set_bool, which accepts the
// bare name (true) and whatever kstrtobool accepts: a first character of
// y Y t T 1 (true) or n N f F 0 (false), or "on"/"off" in any case. sysfs
// shows Y or N.
func (p *Params) Bool(v *bool, name string, def bool, perm uint32, desc string) {
	*v = def
	p.add(&kparam{name: name, typ: "bool", perm: perm, desc: desc, noarg: true,
		set: func(s string, bare bool) kernel.Errno {
			if bare {
				s = "1"
			}
			b, e := kstrtobool(s)
			if e == 0 {
				*v = b
			}
			return e
		},
		get: func() string { return yn(*v) }})
}

// Invbool is module_param(name, invbool, perm): the field holds the
// inverse of the parameter, so "name=1" stores false. Unlike bool, a bare
// "name" is -EINVAL: param_ops_invbool lacks KERNEL_PARAM_OPS_FL_NOARG.
// def is the field's initial value; sysfs shows the parameter (the
// inverse), Y or N.
func (p *Params) Invbool(v *bool, name string, def bool, perm uint32, desc string) {
	*v = def
	p.add(&kparam{name: name, typ: "invbool", perm: perm, desc: desc,
		set: func(s string, _ bool) kernel.Errno {
			b, e := kstrtobool(s)
			if e == 0 {
				*v = !b
			}
			return e
		},
		get: func() string { return yn(!*v) }})
}

// Charp is module_param(name, charp, perm): a string of at most 1024 bytes
// (longer: "string parameter too long", -ENOSPC). The value is stored as
// given; a sysfs write through "echo" keeps echo's newline, as in the
// kernel.
func (p *Params) Charp(v *string, name string, def string, perm uint32, desc string) {
	*v = def
	p.add(&kparam{name: name, typ: "charp", perm: perm, desc: desc,
		set: func(s string, _ bool) kernel.Errno {
			if len(s) > maxCharpLen {
				return kernel.ENOSPC
			}
			*v = s
			return 0
		},
		get: func() string { return *v }})
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// parameq is parameqn(): dashes and underscores are the same.
func parameq(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '-' {
			x = '_'
		}
		if y == '-' {
			y = '_'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isspace is the kernel's isspace() (lib/ctype.c, Latin-1: NBSP counts).
func isspace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0:
		return true
	}
	return false
}

func skipSpaces(s string) string {
	i := 0
	for i < len(s) && isspace(s[i]) {
		i++
	}
	return s[i:]
}

// nextArg is next_arg() of lib/cmdline.c: it splits the first
// "param[=value]" off args, honouring double quotes ("a b" may be the whole
// argument or the value), and returns the rest with leading spaces skipped.
func nextArg(args string) (param, val string, hasVal bool, rest string) {
	quoted, inQuote := false, false
	if len(args) > 0 && args[0] == '"' {
		args = args[1:]
		quoted, inQuote = true, true
	}
	equals := 0
	i := 0
	for ; i < len(args); i++ {
		if isspace(args[i]) && !inQuote {
			break
		}
		if equals == 0 && args[i] == '=' {
			equals = i
		}
		if args[i] == '"' {
			inQuote = !inQuote
		}
	}
	end := i // the token is args[:end]; the kernel writes NULs to shorten it
	valStart := 0
	if equals != 0 {
		hasVal = true
		valStart = equals + 1
		if valStart < len(args) && args[valStart] == '"' {
			valStart++
			if args[i-1] == '"' {
				end = i - 1
			}
		}
	}
	if quoted && i > 0 && args[i-1] == '"' && end == i {
		end = i - 1
	}
	if hasVal {
		param = args[:equals]
		if valStart < end {
			val = args[valStart:end]
		}
	} else {
		param = args[:end]
	}
	if i < len(args) {
		rest = args[i+1:]
	}
	return param, val, hasVal, skipSpaces(rest)
}

// parseArgs is parse_args() for a module (doing is the module's name) with
// unknown_module_param_cb: unknown parameters are reported and ignored, a
// bad value is reported and remembered, and parsing goes on. It returns the
// errno of the last failure (0 if none). Arguments after a bare "--" are
// ignored with a warning, as load_module does.
func parseArgs(c *kernel.Ctx, doing, args string, p *Params) kernel.Errno {
	var last kernel.Errno
	args = skipSpaces(args)
	for args != "" {
		param, val, hasVal, rest := nextArg(args)
		args = rest
		if !hasVal && param == "--" {
			if last == 0 {
				kernel.Printk(c, printk.LevelWarning, "%s: parameters '%s' after `--' ignored\n", doing, args)
			}
			return last
		}
		ret := parseOne(c, doing, param, val, hasVal, p)
		switch ret {
		case 0:
			continue
		case kernel.ENOSPC:
			kernel.Printk(c, printk.LevelErr, "%s: `%s' too large for parameter `%s'\n", doing, val, param)
		default:
			kernel.Printk(c, printk.LevelErr, "%s: `%s' invalid for parameter `%s'\n", doing, val, param)
		}
		last = ret
	}
	return last
}

// parseOne is parse_one(): find the parameter and run its setter.
func parseOne(c *kernel.Ctx, doing, param, val string, hasVal bool, p *Params) kernel.Errno {
	for _, kp := range p.params {
		if !parameq(param, kp.name) {
			continue
		}
		if !hasVal && !kp.noarg {
			return kernel.EINVAL
		}
		p.mu.Lock()
		e := kp.set(val, !hasVal)
		p.mu.Unlock()
		if e == kernel.ENOSPC && kp.typ == "charp" {
			kernel.Printk(c, printk.LevelErr, "%s: string parameter too long\n", kp.name)
		}
		return e
	}
	// unknown_module_param_cb: async_probe and dyndbg are the kernel's own.
	if param == "async_probe" || param == "dyndbg" {
		return 0
	}
	kernel.Printk(c, printk.LevelWarning, "%s: unknown parameter '%s' ignored\n", doing, param)
	return 0
}

// kstrtobool is lib/kstrtox.c's kstrtobool() (Linux 6.1).
func kstrtobool(s string) (bool, kernel.Errno) {
	if s == "" {
		return false, kernel.EINVAL
	}
	switch s[0] {
	case 'y', 'Y', 't', 'T', '1':
		return true, 0
	case 'n', 'N', 'f', 'F', '0':
		return false, 0
	case 'o', 'O':
		if len(s) > 1 {
			switch s[1] {
			case 'n', 'N':
				return true, 0
			case 'f', 'F':
				return false, 0
			}
		}
	}
	return false, kernel.EINVAL
}

// parseInteger is _parse_integer_fixup_radix() plus _parse_integer() with
// base 0: it returns the value of the leading digits, how many bytes they
// took (prefix included) and whether the value overflowed 64 bits.
func parseInteger(s string) (res uint64, n int, overflow bool) {
	base := uint64(10)
	i := 0
	if len(s) > 0 && s[0] == '0' {
		base = 8
		if len(s) > 2 && (s[1] == 'x' || s[1] == 'X') && isxdigit(s[2]) {
			base = 16
			i = 2
		}
	}
	start := i
	for ; i < len(s); i++ {
		var d uint64
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9':
			d = uint64(ch - '0')
		case ch|0x20 >= 'a' && ch|0x20 <= 'f':
			d = uint64(ch|0x20-'a') + 10
		default:
			d = 16
		}
		if d >= base {
			break
		}
		if res > (math.MaxUint64-d)/base {
			overflow = true
		}
		res = res*base + d
	}
	if i == start {
		return 0, 0, false
	}
	return res, i, overflow
}

func isxdigit(b byte) bool {
	return b >= '0' && b <= '9' || b|0x20 >= 'a' && b|0x20 <= 'f'
}

// kstrtoullNoSign is _kstrtoull(s, 0): digits, then at most one newline.
func kstrtoullNoSign(s string) (uint64, kernel.Errno) {
	v, n, overflow := parseInteger(s)
	if overflow {
		return 0, kernel.ERANGE
	}
	if n == 0 {
		return 0, kernel.EINVAL
	}
	s = s[n:]
	if len(s) > 0 && s[0] == '\n' {
		s = s[1:]
	}
	if s != "" {
		return 0, kernel.EINVAL
	}
	return v, 0
}

// kstrtoull is kstrtoull(s, 0): an optional '+', never a '-'.
func kstrtoull(s string) (uint64, kernel.Errno) {
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	return kstrtoullNoSign(s)
}

// kstrtoll is kstrtoll(s, 0).
func kstrtoll(s string) (int64, kernel.Errno) {
	if len(s) > 0 && s[0] == '-' {
		v, e := kstrtoullNoSign(s[1:])
		if e != 0 {
			return 0, e
		}
		if int64(-v) > 0 {
			return 0, kernel.ERANGE
		}
		return int64(-v), 0
	}
	v, e := kstrtoull(s)
	if e != 0 {
		return 0, e
	}
	if int64(v) < 0 {
		return 0, kernel.ERANGE
	}
	return int64(v), 0
}
