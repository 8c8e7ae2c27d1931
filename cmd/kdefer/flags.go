package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
)

// Flag values with a type are parsed once, into that type, as pflag.Values:
// a bad value is reported by pflag as
// `invalid argument "7" for "--hz" flag: want 100, 250, 300 or 1000`,
// whatever is wrong with it.

// hzFlag is --hz: a tick rate the kernel can be built with.
type hzFlag struct{ hz jiffies.HZ }

var errHZ = fmt.Errorf("want %d, %d, %d or %d", jiffies.HZ100, jiffies.HZ250, jiffies.HZ300, jiffies.HZ1000)

func (f *hzFlag) String() string { return strconv.FormatUint(uint64(f.hz), 10) }
func (f *hzFlag) Type() string   { return "HZ" }
func (f *hzFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || jiffies.HZ(n).Valid() != nil {
		return errHZ
	}
	f.hz = jiffies.HZ(n)
	return nil
}

// cpusFlag is --cpus: a CPU count, 1..NR_CPUS (0, the default, stands
// for the host's cores and cannot be given).
type cpusFlag struct{ n int }

func (f *cpusFlag) String() string { return strconv.Itoa(f.n) }
func (f *cpusFlag) Type() string   { return "N" }
func (f *cpusFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > kernel.NRCPUs {
		return fmt.Errorf("want 1..%d", kernel.NRCPUs)
	}
	f.n = n
	return nil
}

// durationFlag is a non-negative time.Duration with a unit.
type durationFlag struct{ d time.Duration }

var errDuration = errors.New("want a duration with a unit: ns, us, ms, s, m or h, as in 500ms, 2s or 1m30s (0 for no limit)")

func (f *durationFlag) String() string {
	if f.d == 0 {
		return "0" // what pflag recognises as a zero default
	}
	return f.d.String()
}
func (f *durationFlag) Type() string { return "DURATION" }
func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if s == "0" {
		d, err = 0, nil // "0" needs no unit, as in time.ParseDuration
	}
	switch {
	case err != nil:
		return errDuration
	case d < 0:
		return errors.New("want a duration that is not negative")
	}
	f.d = d
	return nil
}

// execFlag is --exec: a command line split into words as a shell would
// (splitCommand), so that an empty or malformed one is refused at once.
type execFlag struct {
	line string
	argv []string // nil: not given
}

func (f *execFlag) String() string { return f.line }
func (f *execFlag) Type() string   { return "\"APP ARGS\"" }
func (f *execFlag) Set(s string) error {
	argv, err := splitCommand(s)
	if err != nil {
		return err
	}
	if len(argv) == 0 || argv[0] == "" {
		return errors.New(`empty command: want "APP [ARGS]", as 'kdefer modules' lists them`)
	}
	f.line, f.argv = s, argv
	return nil
}
