package main

import "github.com/kdefer/kdefer/cmd/kdefer/internal/shellwords"

// splitCommand splits --exec's command line into words (see
// shellwords.Split).
func splitCommand(s string) ([]string, error) { return shellwords.Split(s) }
