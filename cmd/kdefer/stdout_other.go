//go:build !linux

package main

import "errors"

var errStdoutClosed = errors.New("standard output is closed")

// stdoutClosedAtStart cannot tell on this system; see stdout_linux.go.
func stdoutClosedAtStart() bool { return false }
