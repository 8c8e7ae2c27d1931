package main

import (
	"io"
	"sync"
)

// checkedWriter is kdefer's standard output: it remembers the first write
// error (a full disk, a closed descriptor) and then writes nothing more,
// so that execute can turn lost output into an error exit.
type checkedWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// Write writes p, or returns the first error without writing.
func (c *checkedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

// Err returns the first write error, or nil.
func (c *checkedWriter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// failingWriter fails every write with err.
type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }
