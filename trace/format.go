package trace

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
)

// Formatter turns records into text in the layout `trace-cmd report`
// prints:
//
//	<idle>-0     [001]     0.424000: timer_expire_entry:   timer=000000005d3a0c1e function=ding now=4294892402 baseclk=4294892402
//
// that is "%16s-%-5d [%03d] %5d.%06d: " (comm, pid, CPU, time in seconds
// and microseconds, rounded to the nearest µs), the event name and a colon
// padded to 20 columns, then the event's fields as its TP_printk prints
// them. The idle tasks (pid 0) show as <idle>, a record without a comm as
// <...>.
//
// Pointers (%p) are printed as the kernel's hashed pointers are, 16 hex
// digits of which the top 8 are zero, but the value is a token numbered by
// the pointer's first appearance in this Formatter's output: the same
// records give the same text in every run, as a virtual-time run needs.
// Functions (%ps) are printed by name (the Go function's name without
// package, receiver or closure suffix); interned strings are looked up in
// the table given to NewFormatter.
//
// A Formatter is not safe for concurrent use.
type Formatter struct {
	strs   func(id uint64) string
	syms   func(pc uint64) string
	tokens map[uint64]uint64
	symc   map[uint64]string
	buf    []byte
}

// NewFormatter returns a Formatter resolving interned strings with strs
// (Tracer.String, or a lookup in a saved Tracer.Strings table); nil
// resolves every string to "".
func NewFormatter(strs func(id uint64) string) *Formatter {
	if strs == nil {
		strs = func(uint64) string { return "" }
	}
	return &Formatter{strs: strs, syms: SymbolName, tokens: map[uint64]uint64{}, symc: map[uint64]string{}}
}

// SetSymbolizer replaces how function PCs are named (SymbolName by
// default), for records read in a process other than the one that took
// them.
func (f *Formatter) SetSymbolizer(syms func(pc uint64) string) { f.syms = syms; clear(f.symc) }

// Pointer returns the token printed for address p.
func (f *Formatter) Pointer(p Ptr) string {
	if p == 0 {
		return "0000000000000000"
	}
	n, ok := f.tokens[uint64(p)]
	if !ok {
		n = uint64(len(f.tokens)) + 1
		f.tokens[uint64(p)] = n
	}
	return fmt.Sprintf("%016x", mix32(n))
}

// mix32 scrambles a token number into 32 bits that look like a hash
// (the splitmix64 finalizer), so that tokens read like the kernel's.
func mix32(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return x & 0xffffffff
}

// Symbol returns the name printed for the function at pc ("0x0" for 0).
func (f *Formatter) Symbol(pc Sym) string {
	if pc == 0 {
		return "0x0"
	}
	if s, ok := f.symc[uint64(pc)]; ok {
		return s
	}
	s := f.syms(uint64(pc))
	f.symc[uint64(pc)] = s
	return s
}

// String returns the interned string id.
func (f *Formatter) String(id Str) string { return f.strs(uint64(id)) }

// SymbolName names the Go function whose entry is pc as %ps names a kernel
// symbol: its name without import path, receiver or closure suffix
// ("ding" for timersimple.ding, "tick" for a method value (*blinker).tick,
// the enclosing function for a closure). Unknown PCs print in hex.
func SymbolName(pc uint64) string {
	fn := runtime.FuncForPC(uintptr(pc))
	if fn == nil {
		return "0x" + strconv.FormatUint(pc, 16)
	}
	name := strings.TrimSuffix(fn.Name(), "-fm")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	parts := strings.Split(name, ".")
	for i := len(parts) - 1; i >= 1; i-- {
		p := parts[i]
		if isDigits(p) || (strings.HasPrefix(p, "func") && isDigits(p[4:])) {
			continue
		}
		return strings.Trim(p, "()*")
	}
	return parts[len(parts)-1]
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Info returns r's event fields formatted by the event's TP_printk.
func (f *Formatter) Info(r *Record) string {
	if r.Event >= NumEvents {
		return fmt.Sprintf("[unknown event %d]", uint16(r.Event))
	}
	d := &events[r.Event]
	args := d.args
	if args == nil {
		args = d.values
	}
	return string(f.printf(nil, d.format, args(r)))
}

// Line returns r as one line of trace-cmd report, without a newline.
func (f *Formatter) Line(r *Record) string { return string(f.AppendLine(nil, r)) }

// AppendLine appends r as one line of trace-cmd report, without a newline.
func (f *Formatter) AppendLine(dst []byte, r *Record) []byte {
	comm := r.CommString()
	switch {
	case r.PID == 0:
		comm = "<idle>"
	case comm == "":
		comm = "<...>"
	}
	dst = fmt.Appendf(dst, "%16s-%-5d [%03d] ", comm, r.PID, r.CPU)
	us := (uint64(r.TS) + 500) / 1000
	dst = fmt.Appendf(dst, "%5d.%06d: ", us/1e6, us%1e6)
	name := r.Event.Name()
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	for i := len(name); i < 20; i++ {
		dst = append(dst, ' ')
	}
	if r.Event >= NumEvents {
		return fmt.Appendf(dst, "[unknown event %d]", uint16(r.Event))
	}
	d := &events[r.Event]
	args := d.args
	if args == nil {
		args = d.values
	}
	return f.printf(dst, d.format, args(r))
}

// DroppedLine is the line trace-cmd report prints before the first record
// of a CPU after n of its records were lost.
func DroppedLine(cpu int, n uint64) string {
	return fmt.Sprintf("CPU:%d [%d EVENTS DROPPED]", cpu, n)
}

// WriteReport writes records in trace-cmd report's layout: a "cpus=N"
// line, then one line per record. recs should be in time order (see
// SortRecords); lost[cpu] > 0 prints a dropped-events line before that
// CPU's first record.
func (f *Formatter) WriteReport(w io.Writer, cpus int, recs []Record, lost []uint64) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "cpus=%d\n", cpus)
	seen := make([]bool, len(lost))
	for i := range recs {
		r := &recs[i]
		if c := int(r.CPU); c < len(lost) && !seen[c] {
			seen[c] = true
			if lost[c] > 0 {
				bw.WriteString(DroppedLine(c, lost[c]))
				bw.WriteByte('\n')
			}
		}
		f.buf = f.AppendLine(f.buf[:0], r)
		f.buf = append(f.buf, '\n')
		bw.Write(f.buf)
	}
	return bw.Flush()
}

// Report writes every record in the rings (Snapshot: nothing is consumed)
// in trace-cmd report's layout, with a fresh Formatter, so that the same
// records give the same text.
func (t *Tracer) Report(w io.Writer) error {
	recs, lost := t.Snapshot()
	return NewFormatter(t.String).WriteReport(w, len(t.cpus), recs, lost)
}

// printf formats args by a TP_printk format: the C conversions the
// kernel's event formats use (%d %i %u %x %s %c %p %ps %pS %%), with the
// flags '-' and '0', a width, and the length modifiers h, l, ll and z,
// which do not matter here.
func (f *Formatter) printf(dst []byte, format string, args []any) []byte {
	ai := 0
	next := func() any {
		if ai >= len(args) {
			return nil
		}
		a := args[ai]
		ai++
		return a
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(format) {
			break
		}
		if format[i] == '%' {
			dst = append(dst, '%')
			continue
		}
		left, zero := false, false
		for ; i < len(format) && (format[i] == '-' || format[i] == '0'); i++ {
			if format[i] == '-' {
				left = true
			} else {
				zero = true
			}
		}
		width := 0
		for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
			width = width*10 + int(format[i]-'0')
		}
		for i < len(format) && (format[i] == 'l' || format[i] == 'h' || format[i] == 'z' || format[i] == 'L') {
			i++
		}
		if i >= len(format) {
			break
		}
		var s string
		switch format[i] {
		case 'd', 'i':
			s = strconv.FormatInt(toInt(next()), 10)
		case 'u':
			s = strconv.FormatUint(toUint(next()), 10)
		case 'x':
			s = strconv.FormatUint(toUint(next()), 16)
		case 'c':
			s = string(rune(toUint(next())))
		case 's':
			s = f.toString(next())
		case 'p':
			a := next()
			if i+1 < len(format) && (format[i+1] == 's' || format[i+1] == 'S') {
				i++
				if p, ok := a.(Ptr); ok {
					// %ps of a data object (a tasklet): no symbol of
					// kdefer's names it, so it prints as its token.
					s = f.Pointer(p)
					break
				}
				s = f.Symbol(Sym(toUint(a)))
				break
			}
			s = f.Pointer(Ptr(toUint(a)))
		default:
			s = "%!" + string(format[i])
		}
		dst = pad(dst, s, width, left, zero)
	}
	return dst
}

func pad(dst []byte, s string, width int, left, zero bool) []byte {
	n := width - len(s)
	if n <= 0 {
		return append(dst, s...)
	}
	if left {
		dst = append(dst, s...)
		for ; n > 0; n-- {
			dst = append(dst, ' ')
		}
		return dst
	}
	fill := byte(' ')
	if zero {
		fill = '0'
		if len(s) > 0 && s[0] == '-' {
			dst = append(dst, '-')
			s = s[1:]
		}
	}
	for ; n > 0; n-- {
		dst = append(dst, fill)
	}
	return append(dst, s...)
}

func (f *Formatter) toString(a any) string {
	switch v := a.(type) {
	case string:
		return v
	case Str:
		return f.String(v)
	case nil:
		return "(null)"
	}
	return fmt.Sprint(a)
}

func toInt(a any) int64 {
	switch v := a.(type) {
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	case uint32:
		return int64(int32(v))
	case uint64:
		return int64(v)
	case Ptr:
		return int64(v)
	case Sym:
		return int64(v)
	}
	return 0
}

func toUint(a any) uint64 {
	switch v := a.(type) {
	case int:
		return uint64(v)
	case int32:
		return uint64(uint32(v))
	case int64:
		return uint64(v)
	case uint32:
		return uint64(v)
	case uint64:
		return v
	case Ptr:
		return uint64(v)
	case Sym:
		return uint64(v)
	case Str:
		return uint64(v)
	}
	return 0
}
