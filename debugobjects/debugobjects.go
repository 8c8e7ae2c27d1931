// Package debugobjects is kdefer's lib/debugobjects.c: the reports of
// objects (timers, hrtimers, work items) used in a state that does not
// allow it — a timer set up again while it is armed, one armed without
// being set up — as CONFIG_DEBUG_OBJECTS_TIMERS and _WORK print them.
//
// Only the reporting is modelled: each subsystem tracks its objects'
// states itself and calls Report, and applies the kernel's fixup.
package debugobjects

import (
	"sync/atomic"

	"github.com/kdefer/kdefer/kernel"
)

// MaxReports is how many reports a kernel prints, for all object types
// together (debug_print_object's static limit).
const MaxReports = 5

var countKey kernel.LocalKey

// Report is debug_print_object(): the WARN
//
//	ODEBUG: msg state (active state 0) object: object object type: objType hint: hint
//
// for an object used in a state that does not allow it (msg is the
// operation: init, activate, deactivate, destroy, free, assert_init; state
// one of none, initialized, inactive, active, destroyed, not available;
// objType timer_list, hrtimer or work_struct; hint the object's function,
// %pS-style). As in the kernel only the first MaxReports reports of a
// kernel are printed; it reports whether this one was.
func Report(c *kernel.Ctx, msg, state, object, objType, hint string) bool {
	n := c.Kernel().Local(&countKey, func(*kernel.Kernel) any { return new(atomic.Int32) }).(*atomic.Int32)
	if n.Add(1) > MaxReports {
		return false
	}
	kernel.Warn(c, "ODEBUG: %s %s (active state 0) object: %s object type: %s hint: %s\n",
		msg, state, object, objType, hint)
	return true
}
