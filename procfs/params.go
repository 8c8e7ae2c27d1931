package procfs

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
)

// ModuleParam returns the text of /sys/module/MOD/parameters/NAME: the
// parameter's value as its getter formats it, and a newline
// (param_attr_show). It fails with kernel.ENOENT when the module is not
// loaded or has no such parameter in sysfs (perm 0), and with
// kernel.EACCES when the permission has no read bit.
func ModuleParam(k *kernel.Kernel, mod, name string) (string, error) {
	v, err := module.Loader(k, nil).ParamGet(mod, name)
	if err != nil {
		return "", err
	}
	return v + "\n", nil
}

// SetModuleParam writes data to /sys/module/MOD/parameters/NAME from
// process context c, as `echo VALUE > FILE` does (param_attr_store): data
// goes to the parameter's setter as written, trailing newline included
// (the number and bool parsers accept it; a charp keeps it, as in the
// kernel). It fails with kernel.ENOENT as ModuleParam, with kernel.EACCES
// when the permission has no write bit (sysfs refuses to open the file
// for writing, even for root), and with the setter's errno (EINVAL,
// ERANGE, ENOSPC) for a bad value, which leaves the parameter unchanged.
func SetModuleParam(c *kernel.Ctx, mod, name, data string) error {
	return module.Loader(c.Kernel(), nil).ParamSet(c, mod, name, data)
}

// ModuleParams returns the names of the files of
// /sys/module/MOD/parameters (the parameters with a sysfs permission), in
// declaration order, or nil if MOD is not loaded.
func ModuleParams(k *kernel.Kernel, mod string) []string {
	return module.Loader(k, nil).ParamNames(mod)
}
