package printk

import "strconv"

// FormatTimestamp returns the bracketed timestamp dmesg prints before each
// line, "[%5d.%06d]": whole seconds since boot, right-aligned in at least
// five columns, then the microseconds, truncated as the kernel's print_time
// truncates them. 420000000 gives "[    0.420000]"; from 100000 s on the
// seconds field widens ("[123456.000000]"). A negative ns is treated as 0.
func FormatTimestamp(ns int64) string {
	if ns < 0 {
		ns = 0
	}
	secs := ns / 1_000_000_000
	micros := ns % 1_000_000_000 / 1_000

	b := make([]byte, 0, 16)
	b = append(b, '[')
	s := strconv.AppendInt(make([]byte, 0, 20), secs, 10)
	for i := len(s); i < 5; i++ {
		b = append(b, ' ')
	}
	b = append(b, s...)
	b = append(b, '.')
	u := strconv.AppendInt(make([]byte, 0, 6), micros, 10)
	for i := len(u); i < 6; i++ {
		b = append(b, '0')
	}
	b = append(b, u...)
	b = append(b, ']')
	return string(b)
}

// FormatDmesg returns rec as plain dmesg prints it: the [FormatTimestamp]
// bracket, one space, then the text, "[%5d.%06d] %s". An empty record
// still gets the space: "[    0.420000] ". The level, CPU and PID are not
// shown.
func FormatDmesg(rec Record) string {
	return FormatTimestamp(rec.TimeNs) + " " + rec.Text
}
