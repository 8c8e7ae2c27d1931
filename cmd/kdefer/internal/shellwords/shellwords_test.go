package shellwords_test

import (
	"strings"
	"testing"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/shellwords"
	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestSplitFollowsTheShellsQuotingRules(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"kill -INT 7", []string{"kill", "-INT", "7"}},
		{"  a\tb  ", []string{"a", "b"}},
		{`app 'two words' "and \"more\"" x\ y ''`, []string{"app", "two words", `and "more"`, "x y", ""}},
		{`a "b\n"`, []string{"a", `b\n`}},
		{"", nil},
	} {
		got, err := shellwords.Split(tc.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSplitRefusesAnUnterminatedQuote(t *testing.T) {
	for _, bad := range []string{`'x`, `"x`, `a "b`} {
		if _, err := shellwords.Split(bad); err == nil || !strings.Contains(err.Error(), "unterminated") {
			t.Errorf("Split(%q): %v, want an unterminated-quote error", bad, err)
		}
	}
}
