package jiffies

// The comparisons below treat jiffies values as points on a circle of 2^64
// ticks: a is after b when the signed 64-bit difference b-a is negative. They
// stay correct across any wrap as long as the two values are less than 2^63
// ticks apart, and give the opposite answer beyond that.

// TimeAfter reports whether time a is after time b: the kernel's
// time_after(a, b), ((long)((b) - (a)) < 0).
func TimeAfter(a, b uint64) bool { return int64(b-a) < 0 }

// TimeBefore reports whether time a is before time b: the kernel's
// time_before(a, b), time_after(b, a).
func TimeBefore(a, b uint64) bool { return TimeAfter(b, a) }

// TimeAfterEq reports whether time a is after or equal to time b: the
// kernel's time_after_eq(a, b), ((long)((a) - (b)) >= 0).
func TimeAfterEq(a, b uint64) bool { return int64(a-b) >= 0 }

// TimeBeforeEq reports whether time a is before or equal to time b: the
// kernel's time_before_eq(a, b), time_after_eq(b, a).
func TimeBeforeEq(a, b uint64) bool { return TimeAfterEq(b, a) }

// TimeInRange reports whether a lies in the closed interval [b, c]: the
// kernel's time_in_range(a, b, c).
func TimeInRange(a, b, c uint64) bool { return TimeAfterEq(a, b) && TimeBeforeEq(a, c) }

// TimeInRangeOpen reports whether a lies in the half-open interval [b, c):
// the kernel's time_in_range_open(a, b, c).
func TimeInRangeOpen(a, b, c uint64) bool { return TimeAfterEq(a, b) && TimeBefore(a, c) }

// TimeIsBeforeJiffies reports whether a is before the current jiffies now:
// the kernel's time_is_before_jiffies(a), time_after(jiffies, a), with
// jiffies passed in as now.
func TimeIsBeforeJiffies(now, a uint64) bool { return TimeAfter(now, a) }

// TimeIsAfterJiffies reports whether a is after the current jiffies now, that
// is, still in the future: the kernel's time_is_after_jiffies(a),
// time_before(jiffies, a), with jiffies passed in as now.
func TimeIsAfterJiffies(now, a uint64) bool { return TimeBefore(now, a) }

// TimeIsBeforeEqJiffies reports whether a is before or equal to the current
// jiffies now: the kernel's time_is_before_eq_jiffies(a),
// time_after_eq(jiffies, a), with jiffies passed in as now.
func TimeIsBeforeEqJiffies(now, a uint64) bool { return TimeAfterEq(now, a) }

// TimeIsAfterEqJiffies reports whether a is after or equal to the current
// jiffies now: the kernel's time_is_after_eq_jiffies(a),
// time_before_eq(jiffies, a), with jiffies passed in as now.
func TimeIsAfterEqJiffies(now, a uint64) bool { return TimeBeforeEq(now, a) }
