//go:build !linux

package main

import "os"

// consoleInput says whether kdefer run reads console commands from f, its
// standard input. On this system only a pipe is read: a terminal cannot be
// told from /dev/null, nor the foreground from the background, without
// the ioctls of stdin_linux.go.
func consoleInput(f *os.File) (ok, terminal bool) {
	if f == nil {
		return false, false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0, false
}
