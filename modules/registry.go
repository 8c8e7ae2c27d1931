// Package modules gathers kdefer's built-in loadable modules — the seed
// demos and the test module — into a registry for the CLI and for tests,
// together with the demos' userspace programs and the short names the CLI
// accepts for them.
package modules

import (
	"io"
	"sort"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/delayssleeps"
	"github.com/kdefer/kdefer/modules/kt"
	"github.com/kdefer/kdefer/modules/kthreadsimple"
	"github.com/kdefer/kdefer/modules/lab12timer"
	"github.com/kdefer/kdefer/modules/lab345deferred"
	"github.com/kdefer/kdefer/modules/lab6kthread"
	"github.com/kdefer/kdefer/modules/sed1"
	"github.com/kdefer/kdefer/modules/sed2"
	"github.com/kdefer/kdefer/modules/sed3"
	"github.com/kdefer/kdefer/modules/slpywq"
	"github.com/kdefer/kdefer/modules/taskletdriver"
	"github.com/kdefer/kdefer/modules/testmod"
	"github.com/kdefer/kdefer/modules/timersimple"
	"github.com/kdefer/kdefer/modules/umhdemo"
	"github.com/kdefer/kdefer/modules/workqsimple"
	"github.com/kdefer/kdefer/modules/workqueuedriver"
)

// All returns the definitions of every built-in module.
func All() []module.Info {
	return []module.Info{
		testmod.Info,
		delayssleeps.Info,
		timersimple.Info,
		sed1.Info,
		lab12timer.Info,
		sed2.Info,
		kthreadsimple.Info,
		lab6kthread.Info,
		taskletdriver.Info,
		kt.Kt1,
		kt.Kt2,
		umhdemo.Info,
		workqsimple.Info,
		workqueuedriver.Info,
		slpywq.Info,
		lab345deferred.Info,
		sed3.Info,
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

// aliases maps short names to module names (a function, so that no
// package-level map exists that anything could change).
func aliases() map[string]string {
	return map[string]string{
		"sed1": sed1.DrvName, // the demo's directory, ch5/sed1
		"sed2": sed2.DrvName, // ch5/sed2
		"sed3": sed3.DrvName, // ch5/sed3
	}
}

// Resolve returns the name of the built-in module that name designates:
// the name itself if a module has it, else the module of that alias ("sed1"
// for "sed1_drv"), else name with its dashes read as underscores, as
// modprobe does ("1-2-timer" for "1_2_timer"). It returns ok false if none
// matches.
func Resolve(name string) (string, bool) {
	known := func(n string) bool {
		for _, info := range All() {
			if info.Name == n {
				return true
			}
		}
		return false
	}
	switch {
	case known(name):
		return name, true
	case aliases()[name] != "":
		return aliases()[name], true
	}
	if u := strings.ReplaceAll(name, "-", "_"); known(u) {
		return u, true
	}
	return "", false
}

// Aliases returns the short names Resolve accepts besides the modules'
// names, with the module each designates, sorted by alias.
func Aliases() [][2]string {
	var out [][2]string
	for a, m := range aliases() {
		out = append(out, [2]string{a, m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// App is a demo's userspace program, run as a user task (kernel.RunTask)
// by `kdefer run MODULE --exec "APP ARGS…"` once the module is loaded.
type App struct {
	// Name is the program's name: argv[0] and the task's comm.
	Name string
	// Module is the name of the module whose device the program uses.
	Module string
	// Args describes the arguments after the program's name.
	Args string
	// Main runs the program in process context c of its task with argv
	// (argv[0] is Name) and returns its exit status; the program prints
	// to stdout and stderr.
	Main func(c *kernel.Ctx, argv []string, stdout, stderr io.Writer) int
}

// Apps returns the demos' userspace programs.
func Apps() []App {
	return []App{
		{Name: sed1.AppName, Module: sed1.DrvName, Args: "DEVICE MESSAGE", Main: sed1.UserappSed1},
		{Name: sed2.AppName, Module: sed2.DrvName, Args: "DEVICE MESSAGE [CHOICE...] (the menu's choices, 1-7)", Main: sed2.UserappSed2},
		{Name: slpywq.AppName, Module: slpywq.Name, Args: "DEVICE [READERS]", Main: slpywq.Sleepy},
		{Name: lab345deferred.AppName, Module: lab345deferred.Name, Args: "s SECONDS | c | a SECONDS | p PID", Main: lab345deferred.Test},
	}
}

// LookupApp returns the program named name.
func LookupApp(name string) (App, bool) {
	for _, a := range Apps() {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}
