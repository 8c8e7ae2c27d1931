// Package modules gathers kdefer's built-in loadable modules — the seed
// demos and the test module — into a registry for the CLI and for tests.
package modules

import (
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/testmod"
)

// All returns the definitions of every built-in module.
func All() []module.Info {
	return []module.Info{
		testmod.Info,
	}
}

// Registry returns a new registry holding every built-in module.
func Registry() *module.Registry {
	r := module.NewRegistry()
	for _, info := range All() {
		if err := r.Register(info); err != nil {
			panic("modules: " + err.Error())
		}
	}
	return r
}
