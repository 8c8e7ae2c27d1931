package printk

import (
	"context"
	"encoding"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// HandlerOptions configures a [Handler].
type HandlerOptions struct {
	// Level is the minimum slog level logged. Nil means slog.LevelInfo,
	// as for the standard library's handlers.
	Level slog.Leveler
	// Now returns the timestamp of each record, in nanoseconds since boot.
	// Nil means every record is stamped 0: the handler reads no clock, and
	// slog.Record.Time is wall-clock time, not time since boot.
	Now func() int64
	// CPU and PID identify the handler's records as their caller.
	CPU int
	PID int
}

// A Handler is a log/slog.Handler that writes each log record into a
// [Ring] as one committed kernel log line: the message, then " key=value"
// for each attribute. Keys inside groups are dotted ("req.id=7"); values
// are quoted with strconv.Quote when they are empty or contain spaces,
// '=', '"' or unprintable characters. The slog level is mapped with
// [FromSlogLevel].
//
// A trailing newline of the message is dropped (so pr_info-style messages
// such as "done\n" work); any other newline in the message splits it into
// several records, as in [Ring.Emit].
//
// A Handler is safe for concurrent use.
type Handler struct {
	ring *Ring
	opts HandlerOptions
	// attrs is the preformatted " key=value" text of WithAttrs calls.
	attrs string
	// prefix is the dotted group prefix ("a.b.") of WithGroup calls.
	prefix string
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a handler that writes into r. It panics if r is nil.
func NewHandler(r *Ring, opts HandlerOptions) *Handler {
	if r == nil {
		panic("printk: NewHandler with nil Ring")
	}
	return &Handler{ring: r, opts: opts}
}

// Enabled reports whether level is at least the handler's minimum level.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	minLevel := slog.LevelInfo
	if h.opts.Level != nil {
		minLevel = h.opts.Level.Level()
	}
	return level >= minLevel
}

// Handle formats rec and emits it into the ring as a complete line (or
// several, if the message holds newlines). It always returns nil.
func (h *Handler) Handle(_ context.Context, rec slog.Record) error {
	buf := make([]byte, 0, 128)
	buf = append(buf, strings.TrimSuffix(rec.Message, "\n")...)
	buf = append(buf, h.attrs...)
	rec.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.prefix, a)
		return true
	})
	buf = append(buf, '\n')
	var now int64
	if h.opts.Now != nil {
		now = h.opts.Now()
	}
	h.ring.Emit(now, FromSlogLevel(rec.Level), h.opts.CPU, h.opts.PID, string(buf))
	return nil
}

// WithAttrs returns a handler whose records carry attrs after their
// message, before the record's own attributes.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	buf := []byte(h.attrs)
	for _, a := range attrs {
		buf = appendAttr(buf, h.prefix, a)
	}
	h2.attrs = string(buf)
	return &h2
}

// WithGroup returns a handler that qualifies the keys of later attributes
// with name and a dot. An empty name returns h unchanged.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

// appendAttr appends " key=value" for a, following the slog handler rules:
// values are resolved, empty attributes are dropped, empty groups are
// dropped, and a group with an empty key is inlined.
func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		group := a.Value.Group()
		if len(group) == 0 {
			return buf
		}
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range group {
			buf = appendAttr(buf, prefix, g)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendString(buf, prefix+a.Key)
	buf = append(buf, '=')
	return appendValue(buf, a.Value)
}

func appendValue(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(buf, v.String())
	case slog.KindTime:
		return v.Time().AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
	case slog.KindDuration:
		return append(buf, v.Duration().String()...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case encoding.TextMarshaler:
			text, err := x.MarshalText()
			if err != nil {
				return appendString(buf, "!ERROR:"+err.Error())
			}
			return appendString(buf, string(text))
		case []byte:
			return append(buf, strconv.Quote(string(x))...)
		default:
			return appendString(buf, fmt.Sprintf("%+v", x))
		}
	default: // bool, ints, floats: never need quoting
		return append(buf, v.String()...)
	}
}

func appendString(buf []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '=' || r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
