package module

import (
	"testing"

	"github.com/kdefer/kdefer/kernel"
)

func TestNextArgSplitsLikeTheKernel(t *testing.T) {
	tests := []struct {
		in, param, val string
		hasVal         bool
		rest           string
	}{
		{"a=1 b=2", "a", "1", true, "b=2"},
		{"flag rest", "flag", "", false, "rest"},
		{`s="a b" x`, "s", "a b", true, "x"},
		{`"s=a b" x`, "s", "a b", true, "x"},
		{`"quoted flag" x`, "quoted flag", "", false, "x"},
		{`s=a"b c"d e`, "s", `a"b c"d`, true, "e"},
		{`s=""`, "s", "", true, ""},
		{`s="`, "s", "", true, ""},
		{"=v", "=v", "", false, ""}, // an '=' at index 0 does not count
		{"a==b", "a", "=b", true, ""},
		{"a=1\t\n b", "a", "1", true, "b"},
		{"a=1\xa0b", "a", "1", true, "b"}, // NBSP is a space to the kernel
	}
	for _, tc := range tests {
		p, v, hv, r := nextArg(tc.in)
		if p != tc.param || v != tc.val || hv != tc.hasVal || r != tc.rest {
			t.Errorf("nextArg(%q) = %q, %q, %v, %q; want %q, %q, %v, %q", tc.in, p, v, hv, r, tc.param, tc.val, tc.hasVal, tc.rest)
		}
	}
}

func TestKstrtollFollowsKstrtox(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  kernel.Errno
	}{
		{"0", 0, 0},
		{"42", 42, 0},
		{"+42", 42, 0},
		{"-42", -42, 0},
		{"0x1F", 31, 0},
		{"0X1f", 31, 0},
		{"017", 15, 0},
		{"42\n", 42, 0},
		{"42\n\n", 0, kernel.EINVAL},
		{"42 ", 0, kernel.EINVAL},
		{"", 0, kernel.EINVAL},
		{"-", 0, kernel.EINVAL},
		{"+-1", 0, kernel.EINVAL},
		{"-+1", 0, kernel.EINVAL},
		{"0x", 0, kernel.EINVAL},
		{"0xg", 0, kernel.EINVAL},
		{"09", 0, kernel.EINVAL},
		{"1e3", 0, kernel.EINVAL},
		{"9223372036854775807", 9223372036854775807, 0},
		{"9223372036854775808", 0, kernel.ERANGE},
		{"-9223372036854775808", -9223372036854775808, 0},
		{"-9223372036854775809", 0, kernel.ERANGE},
		{"18446744073709551616", 0, kernel.ERANGE},
		{"-0", 0, 0},
	}
	for _, tc := range tests {
		got, err := kstrtoll(tc.in)
		if got != tc.want || err != tc.err {
			t.Errorf("kstrtoll(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if v, err := kstrtoull("18446744073709551615"); v != 1<<64-1 || err != 0 {
		t.Errorf("kstrtoull(max) = %d, %v", v, err)
	}
	if _, err := kstrtoull("-1"); err != kernel.EINVAL {
		t.Errorf("kstrtoull(-1) err = %v", err)
	}
}

func TestKstrtoboolAcceptsTheKernelsSpellings(t *testing.T) {
	for in, want := range map[string]bool{"y": true, "Yes": true, "1": true, "true": true, "T": true, "on": true, "ON": true,
		"n": false, "No": false, "0": false, "false": false, "off": false, "oFF": false, "nonsense": false} {
		if got, err := kstrtobool(in); got != want || err != 0 {
			t.Errorf("kstrtobool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "o", "ox", "2", "maybe", " y"} {
		if _, err := kstrtobool(in); err != kernel.EINVAL {
			t.Errorf("kstrtobool(%q) err = %v, want EINVAL", in, err)
		}
	}
}

func TestVerifyOctalPermissions(t *testing.T) {
	for _, p := range []uint32{0, 0400, 0444, 0644, 0660, 0600, 0640, 0200, 0220, 0664} {
		if msg := verifyOctalPermissions(p); msg != "" {
			t.Errorf("%#o refused: %s", p, msg)
		}
	}
	for _, p := range []uint32{0666, 0662, 01000, 0044, 0404, 0020, 0400 | 0040 | 0020 | 0002} {
		if verifyOctalPermissions(p) == "" {
			t.Errorf("%#o accepted", p)
		}
	}
}
