package printk

import (
	"log/slog"
	"strconv"
)

// A Level is a kernel log level, KERN_EMERG (0, most severe) to KERN_DEBUG
// (7, least severe), from include/linux/kern_levels.h.
type Level int

// The kernel log levels, LOGLEVEL_EMERG .. LOGLEVEL_DEBUG.
const (
	LevelEmerg   Level = 0 // KERN_EMERG: system is unusable
	LevelAlert   Level = 1 // KERN_ALERT: action must be taken immediately
	LevelCrit    Level = 2 // KERN_CRIT: critical conditions
	LevelErr     Level = 3 // KERN_ERR: error conditions
	LevelWarning Level = 4 // KERN_WARNING: warning conditions
	LevelNotice  Level = 5 // KERN_NOTICE: normal but significant condition
	LevelInfo    Level = 6 // KERN_INFO: informational
	LevelDebug   Level = 7 // KERN_DEBUG: debug-level messages
)

// String returns the level's name as dmesg -x prints it: "emerg", "alert",
// "crit", "err", "warn", "notice", "info" or "debug". A level outside
// [LevelEmerg, LevelDebug] gives "Level(n)".
func (l Level) String() string {
	switch l {
	case LevelEmerg:
		return "emerg"
	case LevelAlert:
		return "alert"
	case LevelCrit:
		return "crit"
	case LevelErr:
		return "err"
	case LevelWarning:
		return "warn"
	case LevelNotice:
		return "notice"
	case LevelInfo:
		return "info"
	case LevelDebug:
		return "debug"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

func (l Level) valid() bool { return l >= LevelEmerg && l <= LevelDebug }

// normalize maps a level outside the kernel's range to LevelInfo, the level
// this package uses where the kernel uses default_message_loglevel.
func (l Level) normalize() Level {
	if l.valid() {
		return l
	}
	return LevelInfo
}

// SlogLevel returns the slog level that corresponds to l:
//
//	LevelDebug   → slog.LevelDebug   (-4)
//	LevelInfo    → slog.LevelInfo    (0)
//	LevelNotice  → slog.LevelInfo+2  (2)
//	LevelWarning → slog.LevelWarn    (4)
//	LevelErr     → slog.LevelError   (8)
//	LevelCrit    → slog.LevelError+2 (10)
//	LevelAlert   → slog.LevelError+4 (12)
//	LevelEmerg   → slog.LevelError+6 (14)
//
// A level outside [LevelEmerg, LevelDebug] maps as [LevelInfo] does.
// FromSlogLevel(SlogLevel(l)) == l for every valid l.
func SlogLevel(l Level) slog.Level {
	switch l.normalize() {
	case LevelEmerg:
		return slog.LevelError + 6
	case LevelAlert:
		return slog.LevelError + 4
	case LevelCrit:
		return slog.LevelError + 2
	case LevelErr:
		return slog.LevelError
	case LevelWarning:
		return slog.LevelWarn
	case LevelNotice:
		return slog.LevelInfo + 2
	case LevelDebug:
		return slog.LevelDebug
	default:
		return slog.LevelInfo
	}
}

// FromSlogLevel returns the kernel level for an slog level. Each kernel
// level covers the slog levels from its own [SlogLevel] value up to the next
// more severe one: below slog.LevelInfo is LevelDebug, [Info, Info+2) is
// LevelInfo, [Info+2, Warn) is LevelNotice, [Warn, Error) is LevelWarning,
// [Error, Error+2) is LevelErr, [Error+2, Error+4) is LevelCrit,
// [Error+4, Error+6) is LevelAlert, and Error+6 and above is LevelEmerg.
func FromSlogLevel(l slog.Level) Level {
	switch {
	case l < slog.LevelInfo:
		return LevelDebug
	case l < slog.LevelInfo+2:
		return LevelInfo
	case l < slog.LevelWarn:
		return LevelNotice
	case l < slog.LevelError:
		return LevelWarning
	case l < slog.LevelError+2:
		return LevelErr
	case l < slog.LevelError+4:
		return LevelCrit
	case l < slog.LevelError+6:
		return LevelAlert
	default:
		return LevelEmerg
	}
}
