// Package statsvar publishes kdefer's counters (package stats) as an
// expvar variable, for programs that serve /debug/vars instead of
// Prometheus metrics:
//
//	k, _ := kernel.Boot(kernel.Config{})
//	stats.Enable(k)
//	statsvar.Publish("kdefer", k) // GET /debug/vars shows "kdefer": {…}
//
// It is a package of its own because importing expvar registers
// /debug/vars on http.DefaultServeMux: a program that imports stats alone
// gets no handler.
//
// Kernel counterpart: none (the kernel's counters are files under /proc).
package statsvar

import (
	"errors"
	"expvar"
	"fmt"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/stats"
)

// ErrExists is wrapped by Publish's error when the name is taken.
var ErrExists = errors.New("statsvar: expvar name already published")

// Func returns an expvar.Func whose value is stats.Read(k): the snapshot
// as JSON, read when /debug/vars is served.
func Func(k *kernel.Kernel) expvar.Func {
	return func() any { return stats.Read(k) }
}

// Publish publishes Func(k) under name. Unlike expvar.Publish it does not
// panic when the name is taken (tests boot many kernels): it fails with an
// error wrapping ErrExists.
func Publish(name string, k *kernel.Kernel) error {
	if expvar.Get(name) != nil {
		return fmt.Errorf("%w: %q", ErrExists, name)
	}
	expvar.Publish(name, Func(k))
	return nil
}
