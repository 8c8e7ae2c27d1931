package module

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/kdefer/kdefer/kernel"
)

// ModuleNameLen is MODULE_NAME_LEN: a module name holds at most
// ModuleNameLen-1 bytes.
const ModuleNameLen = 56

// Info defines a loadable module: its modinfo strings and the constructor
// of its instances. An Info is a plain value; the same Info can be loaded
// into any number of kernels, each getting its own instance.
type Info struct {
	// Name is the module's name (KBUILD_MODNAME): lsmod, the pr_fmt
	// prefix and the parse_args messages use it.
	Name string
	// Description, License, Author and Version are MODULE_DESCRIPTION,
	// MODULE_LICENSE, MODULE_AUTHOR and MODULE_VERSION. License is
	// required, as modpost requires MODULE_LICENSE().
	Description, License, Author, Version string
	// New allocates a fresh instance (the module's data section) and
	// declares its parameters on p, bound to the instance's fields, with
	// their defaults. It must have no other effect: it is also called to
	// list the parameters (Info.Params) and by Registry.Register to check
	// them.
	New func(p *Params) Instance
}

// Instance is one loaded copy of a module.
type Instance interface {
	// Init is module_init: it runs in process context of the task that
	// called Insmod, after the parameters were parsed. A non-nil error
	// fails the load; the kernel prints nothing for it (the module prints
	// what it wants) and Insmod returns it.
	Init(c *kernel.Ctx) error
	// Exit is module_exit: it runs in process context of the task that
	// called Rmmod, once no file of the module is open.
	Exit(c *kernel.Ctx)
}

// Params returns the parameters New declares, with their defaults. It
// returns nil if New is nil.
func (i Info) Params() []ParamInfo {
	if i.New == nil {
		return nil
	}
	p := &Params{}
	i.New(p)
	return p.List()
}

// Registry is a set of module definitions: the modules "installed" under
// /lib/modules that insmod can find. It has no global default; a program
// builds its own and hands it to Loader. A Registry is safe for concurrent
// use.
type Registry struct {
	mu   sync.RWMutex
	mods map[string]Info
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{mods: make(map[string]Info)} }

// ErrDuplicate is wrapped by Register's error for a name already registered.
var ErrDuplicate = errors.New("module: duplicate module name")

// Register adds a module definition. It fails for a duplicate name, an
// invalid name (empty, longer than ModuleNameLen-1 bytes, or holding a
// character other than letters, digits and '_'), a missing License or New,
// and for parameters the kernel would refuse to build (bad perm, duplicate
// or invalid names); to check the parameters it calls New once.
func (r *Registry) Register(info Info) error {
	if err := validName(info.Name); err != nil {
		return err
	}
	if info.New == nil {
		return fmt.Errorf("module %s: Info.New is nil", info.Name)
	}
	if info.License == "" {
		return fmt.Errorf("module %s: missing MODULE_LICENSE()", info.Name)
	}
	p := &Params{}
	if inst := info.New(p); inst == nil {
		return fmt.Errorf("module %s: Info.New returned nil", info.Name)
	}
	if p.err != nil {
		return fmt.Errorf("module %s: %w", info.Name, p.err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.mods[info.Name]; dup {
		return fmt.Errorf("module %s: %w", info.Name, ErrDuplicate)
	}
	r.mods[info.Name] = info
	return nil
}

func validName(name string) error {
	if name == "" || len(name) >= ModuleNameLen {
		return fmt.Errorf("module: invalid name %q: want 1..%d bytes", name, ModuleNameLen-1)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(b == '_' || b >= '0' && b <= '9' || b|0x20 >= 'a' && b|0x20 <= 'z') {
			return fmt.Errorf("module: invalid name %q: only letters, digits and '_'", name)
		}
	}
	return nil
}

// Lookup returns the definition named name.
func (r *Registry) Lookup(name string) (Info, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, ok := r.mods[name]
	return i, ok
}

// List returns every definition, sorted by name.
func (r *Registry) List() []Info {
	r.mu.RLock()
	out := make([]Info, 0, len(r.mods))
	for _, i := range r.mods {
		out = append(out, i)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}
