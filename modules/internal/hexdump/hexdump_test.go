package hexdump

import (
	"strings"
	"testing"
)

func TestToBufferMatchesTheKernel(t *testing.T) {
	for _, tc := range []struct {
		buf            string
		rowsize, gsize int
		ascii          bool
		want           string
	}{
		{"hello", 16, 1, true, "68 65 6c 6c 6f" + strings.Repeat(" ", 49-14) + "hello"},
		{"0123456789abcdef", 16, 1, true, "30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66  0123456789abcdef"},
		{"\x96\x99\x92\x92\x8f", 16, 1, true, "96 99 92 92 8f" + strings.Repeat(" ", 35) + "....."},
		{"\x00\x1f\x7e\x7f", 16, 1, false, "00 1f 7e 7f"},
		{"\x01\x02\x03\x04\x05\x06\x07\x08", 16, 4, false, "04030201 08070605"},
		{"\x01\x02\x03\x04\x05\x06\x07\x08", 16, 8, true, "0807060504030201" + strings.Repeat(" ", 35-16) + "........"},
		{"\x01\x02\x03", 16, 2, false, "01 02 03"}, // not a multiple: bytes
		{"", 16, 1, true, ""},
	} {
		if got := ToBuffer([]byte(tc.buf), tc.rowsize, tc.gsize, tc.ascii); got != tc.want {
			t.Errorf("ToBuffer(%q, %d, %d, %v) =\n%q, want\n%q", tc.buf, tc.rowsize, tc.gsize, tc.ascii, got, tc.want)
		}
	}
}

func TestLinesSplitsRowsWithOffsets(t *testing.T) {
	got := Lines("payload: ", PrefixOffset, 16, 1, []byte("The quick brown fox jumps"), true)
	want := []string{
		"payload: 00000000: 54 68 65 20 71 75 69 63 6b 20 62 72 6f 77 6e 20  The quick brown ",
		"payload: 00000010: 66 6f 78 20 6a 75 6d 70 73" + strings.Repeat(" ", 49-26) + "fox jumps",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Lines =\n%q\nwant\n%q", got, want)
	}
	if got := Lines("x", PrefixOffset, 16, 1, nil, true); len(got) != 0 {
		t.Errorf("Lines of nothing = %q", got)
	}
	if got := Lines("p: ", PrefixNone, 7, 1, []byte("ab"), false); len(got) != 1 || got[0] != "p: 61 62" {
		t.Errorf("Lines(PrefixNone) = %q", got)
	}
}
