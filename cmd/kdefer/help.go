package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// newHelpCmd is `kdefer help [COMMAND]`. Unlike cobra's own, an unknown
// topic is a usage error (exit 2), not a page of help.
func newHelpCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Show the help of kdefer or of one of its commands",
		Long:  "Shows the help of kdefer, or of COMMAND: what it does, its arguments, flags and exit status.",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				return &usageErr{cmd: c, err: fmt.Errorf("unknown command %q", strings.Join(args, " ")), hint: "see 'kdefer help'"}
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}
