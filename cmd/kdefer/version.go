package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newVersionCmd is `kdefer version`.
func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kdefer's version and the Go toolchain it was built with",
		Long:  "Prints kdefer's version, the Go version it was built with, and the host's OS and architecture (as 'kdefer --version' does).",
		Args:  noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintln(e.stdout, versionString())
			return nil
		},
	}
}
