package printk_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kdefer/kdefer/printk"
)

// handlerLines returns the text of every record in r.
func handlerLines(r *printk.Ring) []string {
	recs, _ := r.Records(0)
	var out []string
	for _, rec := range recs {
		out = append(out, rec.Text)
	}
	return out
}

type secret string

func (secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

func TestHandlerFormatsMessageAndAttrs(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 9, 0, 500_000_000, time.UTC)
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{"message only", func(l *slog.Logger) { l.Info("hello") }, "hello"},
		{"attrs", func(l *slog.Logger) { l.Info("timed out", "data", 3, "ok", true) }, "timed out data=3 ok=true"},
		{"quoting", func(l *slog.Logger) { l.Info("m", "s", "a b", "e", "", "q", `x"y`, "eq", "a=b", "nl", "a\nb") },
			`m s="a b" e="" q="x\"y" eq="a=b" nl="a\nb"`},
		{"quoted key", func(l *slog.Logger) { l.Info("m", "a key", 1) }, `m "a key"=1`},
		{"kinds", func(l *slog.Logger) {
			l.Info("m", "d", 1500*time.Millisecond, "f", 0.5, "u", uint64(7), "t", at, "err", errors.New("bad thing"), "b", []byte("hi"))
		}, `m d=1.5s f=0.5 u=7 t=2026-11-22T16:09:00.500Z err="bad thing" b="hi"`},
		{"LogValuer is resolved", func(l *slog.Logger) { l.Info("m", "pw", secret("hunter2")) }, "m pw=REDACTED"},
		{"group attr is dotted", func(l *slog.Logger) {
			l.Info("m", slog.Group("req", "id", 7, slog.Group("user", "name", "bob")))
		}, "m req.id=7 req.user.name=bob"},
		{"empty group is dropped", func(l *slog.Logger) { l.Info("m", slog.Group("g"), "a", 1) }, "m a=1"},
		{"group with empty key is inlined", func(l *slog.Logger) { l.Info("m", slog.Group("", "a", 1)) }, "m a=1"},
		{"empty attr is dropped", func(l *slog.Logger) { l.Info("m", slog.Attr{}, "a", 1) }, "m a=1"},
		{"WithGroup qualifies later attrs", func(l *slog.Logger) {
			l.With("a", 1).WithGroup("g").With("b", 2).WithGroup("h").Info("m", "c", 3)
		}, "m a=1 g.b=2 g.h.c=3"},
		{"WithGroup without attrs prints nothing", func(l *slog.Logger) { l.WithGroup("g").Info("m") }, "m"},
		{"empty WithGroup is ignored", func(l *slog.Logger) { l.WithGroup("").Info("m", "a", 1) }, "m a=1"},
		{"trailing newline of message is dropped", func(l *slog.Logger) { l.Info("done\n", "a", 1) }, "done a=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := printk.NewRing(16)
			tc.log(slog.New(printk.NewHandler(r, printk.HandlerOptions{})))
			got := handlerLines(r)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %q, want [%q]", got, tc.want)
			}
		})
	}
}

func TestHandlerWithAttrsDoesNotAffectParent(t *testing.T) {
	r := printk.NewRing(16)
	parent := slog.New(printk.NewHandler(r, printk.HandlerOptions{}))
	child := parent.With("child", 1).WithGroup("g")
	child.Info("c", "x", 1)
	parent.Info("p", "x", 1)
	want := []string{"c child=1 g.x=1", "p x=1"}
	if got := handlerLines(r); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestHandlerMultilineMessageGivesOneRecordPerLine(t *testing.T) {
	r := printk.NewRing(16)
	slog.New(printk.NewHandler(r, printk.HandlerOptions{})).Info("first\nsecond", "a", 1)
	want := []string{"first", "second a=1"}
	if got := handlerLines(r); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestHandlerStampsRecordsWithNowCPUAndPID(t *testing.T) {
	r := printk.NewRing(16)
	now := int64(420_000_000)
	h := printk.NewHandler(r, printk.HandlerOptions{Now: func() int64 { return now }, CPU: 2, PID: 77})
	slog.New(h).Warn("w")
	recs, _ := r.Records(0)
	want := printk.Record{Seq: 0, TimeNs: now, Level: printk.LevelWarning, CPU: 2, PID: 77, Text: "w"}
	if len(recs) != 1 || recs[0] != want {
		t.Fatalf("got %+v, want %+v", recs, want)
	}
}

func TestHandlerCommitsCallersOpenLine(t *testing.T) {
	r := printk.NewRing(16)
	r.Emit(1, printk.LevelInfo, 0, 5, "open")
	slog.New(printk.NewHandler(r, printk.HandlerOptions{PID: 6})).Info("log")
	if got := handlerLines(r); len(got) != 2 || got[0] != "open" || got[1] != "log" {
		t.Fatalf("got %q", got)
	}
}

func TestHandlerMapsSlogLevels(t *testing.T) {
	r := printk.NewRing(16)
	h := printk.NewHandler(r, printk.HandlerOptions{Level: slog.Level(-100)})
	l := slog.New(h)
	ctx := context.Background()
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelInfo + 2, slog.LevelWarn,
		slog.LevelError, slog.LevelError + 2, slog.LevelError + 4, slog.LevelError + 6}
	for _, lv := range levels {
		l.Log(ctx, lv, lv.String())
	}
	want := []printk.Level{printk.LevelDebug, printk.LevelInfo, printk.LevelNotice, printk.LevelWarning,
		printk.LevelErr, printk.LevelCrit, printk.LevelAlert, printk.LevelEmerg}
	recs, _ := r.Records(0)
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		if rec.Level != want[i] {
			t.Errorf("slog %v logged at %v, want %v", levels[i], rec.Level, want[i])
		}
	}
}

func TestHandlerEnabledFollowsMinimumLevel(t *testing.T) {
	ctx := context.Background()
	r := printk.NewRing(16)
	def := printk.NewHandler(r, printk.HandlerOptions{})
	if def.Enabled(ctx, slog.LevelDebug) || !def.Enabled(ctx, slog.LevelInfo) {
		t.Error("default minimum level is not slog.LevelInfo")
	}
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	h := printk.NewHandler(r, printk.HandlerOptions{Level: &lv})
	if h.Enabled(ctx, slog.LevelInfo+2) || !h.Enabled(ctx, slog.LevelWarn) {
		t.Error("minimum level Warn not applied")
	}
	lv.Set(slog.LevelDebug)
	if !h.Enabled(ctx, slog.LevelDebug) {
		t.Error("LevelVar change not seen")
	}
	slog.New(def).Debug("dropped")
	if got := handlerLines(r); len(got) != 0 {
		t.Errorf("disabled level logged %q", got)
	}
}

func TestSlogLevelRoundTrips(t *testing.T) {
	want := map[printk.Level]slog.Level{
		printk.LevelEmerg: 14, printk.LevelAlert: 12, printk.LevelCrit: 10, printk.LevelErr: 8,
		printk.LevelWarning: 4, printk.LevelNotice: 2, printk.LevelInfo: 0, printk.LevelDebug: -4,
	}
	for l, s := range want {
		if got := printk.SlogLevel(l); got != s {
			t.Errorf("SlogLevel(%v) = %v, want %v", l, got, s)
		}
		if got := printk.FromSlogLevel(s); got != l {
			t.Errorf("FromSlogLevel(%v) = %v, want %v", s, got, l)
		}
	}
	if got := printk.SlogLevel(printk.Level(42)); got != slog.LevelInfo {
		t.Errorf("SlogLevel(42) = %v, want INFO", got)
	}
}

func TestFromSlogLevelCoversRanges(t *testing.T) {
	cases := []struct {
		in   slog.Level
		want printk.Level
	}{
		{-100, printk.LevelDebug}, {-4, printk.LevelDebug}, {-1, printk.LevelDebug},
		{0, printk.LevelInfo}, {1, printk.LevelInfo},
		{2, printk.LevelNotice}, {3, printk.LevelNotice},
		{4, printk.LevelWarning}, {7, printk.LevelWarning},
		{8, printk.LevelErr}, {9, printk.LevelErr},
		{10, printk.LevelCrit}, {11, printk.LevelCrit},
		{12, printk.LevelAlert}, {13, printk.LevelAlert},
		{14, printk.LevelEmerg}, {100, printk.LevelEmerg},
	}
	for _, tc := range cases {
		if got := printk.FromSlogLevel(tc.in); got != tc.want {
			t.Errorf("FromSlogLevel(%d) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLevelStringMatchesDmesgDecode(t *testing.T) {
	want := []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}
	for l, w := range want {
		if got := printk.Level(l).String(); got != w {
			t.Errorf("Level(%d).String() = %q, want %q", l, got, w)
		}
	}
	if got := printk.Level(8).String(); got != "Level(8)" {
		t.Errorf("Level(8).String() = %q", got)
	}
	if got := printk.Level(-1).String(); got != "Level(-1)" {
		t.Errorf("Level(-1).String() = %q", got)
	}
}

func TestNewHandlerNilRingPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewHandler(nil) did not panic")
		}
	}()
	printk.NewHandler(nil, printk.HandlerOptions{})
}
