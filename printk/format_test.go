package printk_test

import (
	"math"
	"testing"

	"github.com/kdefer/kdefer/printk"
)

func TestFormatTimestampMatchesDmesg(t *testing.T) {
	cases := []struct {
		ns   int64
		want string
	}{
		{0, "[    0.000000]"},
		{1, "[    0.000000]"},
		{999, "[    0.000000]"},
		{1_000, "[    0.000001]"},
		{420_000_000, "[    0.420000]"},
		{123_456_789, "[    0.123456]"}, // truncated, not rounded
		{999_999_999, "[    0.999999]"},
		{1_000_000_000, "[    1.000000]"},
		{3_723_500_000_000, "[ 3723.500000]"},
		{99_999_999_999_999, "[99999.999999]"},
		{100_000_000_000_000, "[100000.000000]"}, // the seconds field widens
		{123_456_000_001_000, "[123456.000001]"},
		{math.MaxInt64, "[9223372036.854775]"},
		{-5, "[    0.000000]"},
	}
	for _, tc := range cases {
		if got := printk.FormatTimestamp(tc.ns); got != tc.want {
			t.Errorf("FormatTimestamp(%d) = %q, want %q", tc.ns, got, tc.want)
		}
	}
}

func TestFormatDmesg(t *testing.T) {
	cases := []struct {
		rec  printk.Record
		want string
	}{
		{printk.Record{TimeNs: 420_000_000, Text: "timer_simple:ding(): timed out... data=3"},
			"[    0.420000] timer_simple:ding(): timed out... data=3"},
		{printk.Record{TimeNs: 420_000_000}, "[    0.420000] "},
		{printk.Record{TimeNs: 3_723_500_000_000, Level: printk.LevelErr, CPU: 3, PID: 9, Seq: 7, Text: "x"},
			"[ 3723.500000] x"},
		{printk.Record{TimeNs: 100_000_000_000_000, Text: "late"}, "[100000.000000] late"},
	}
	for _, tc := range cases {
		if got := printk.FormatDmesg(tc.rec); got != tc.want {
			t.Errorf("FormatDmesg(%+v) = %q, want %q", tc.rec, got, tc.want)
		}
	}
}
