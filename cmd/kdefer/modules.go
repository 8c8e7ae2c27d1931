package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdefer/kdefer/modules"
)

// newModulesCmd is `kdefer modules`.
func newModulesCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "modules",
		Short: "List the built-in modules, their parameters and their programs",
		Long: `Lists the built-in modules: each with its description and license, its short
names (alias), its parameters (name:type, default value, sysfs permissions and
MODULE_PARM_DESC text) and the userspace programs that 'kdefer run MODULE
--exec' can run against it.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			listModules(e)
			return nil
		},
	}
}

func listModules(e *env) {
	w := e.stdout
	infos := modules.All()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		fmt.Fprintf(w, "%-16s %s (license: %s)\n", info.Name, info.Description, info.License)
		for _, a := range modules.Aliases() {
			if a[1] == info.Name {
				fmt.Fprintf(w, "    alias: %s\n", a[0])
			}
		}
		for _, p := range info.Params() {
			fmt.Fprintf(w, "    %s:%s (default %s, perm %04o) %s\n", p.Name, p.Type, strconv.Quote(p.Default), p.Perm,
				withoutDefault(p.Description, p.Default))
		}
		for _, a := range modules.Apps() {
			if a.Module == info.Name {
				fmt.Fprintf(w, "    app: %s %s (--exec)\n", a.Name, a.Args)
			}
		}
	}
}

// descDefault matches the "(default=Y)" that many MODULE_PARM_DESC texts
// end with.
var descDefault = regexp.MustCompile(`\s*\(\s*default\s*[=:]?\s*([^)]*?)\s*\)\s*$`)

// withoutDefault drops a trailing "(default=X)" from a parameter's
// description when X is the default the line shows already, so that each
// default is shown once. A description whose default differs from the
// real one is left as it is: the difference is worth seeing.
func withoutDefault(desc, def string) string {
	m := descDefault.FindStringSubmatchIndex(desc)
	if m == nil || !strings.EqualFold(desc[m[2]:m[3]], def) {
		return desc
	}
	return desc[:m[0]]
}
