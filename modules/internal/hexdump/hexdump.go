// Package hexdump is lib/hexdump.c's hex_dump_to_buffer and print_hex_dump
// for the demo modules: sed1 logs its payloads with
// print_hex_dump_bytes("payload: ", DUMP_PREFIX_OFFSET, buf, len).
package hexdump

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
)

// Prefix types of PrintHexDump (enum DUMP_PREFIX_*).
const (
	PrefixNone    = iota // DUMP_PREFIX_NONE
	PrefixAddress        // DUMP_PREFIX_ADDRESS
	PrefixOffset         // DUMP_PREFIX_OFFSET
)

// ToBuffer is hex_dump_to_buffer(buf, len(buf), rowsize, groupsize, …,
// ascii) with an unbounded line buffer: one line of at most rowsize bytes
// (16 or 32; anything else is 16) as hex, in groups of groupsize bytes (1,
// 2, 4 or 8, read little-endian as on x86; 1 when len is not a multiple of
// it), then, when ascii is set, the bytes as text (printable ASCII, '.'
// otherwise) starting at column rowsize*2 + rowsize/groupsize + 1.
func ToBuffer(buf []byte, rowsize, groupsize int, ascii bool) string {
	if rowsize != 16 && rowsize != 32 {
		rowsize = 16
	}
	if len(buf) > rowsize {
		buf = buf[:rowsize]
	}
	if groupsize != 1 && groupsize != 2 && groupsize != 4 && groupsize != 8 {
		groupsize = 1
	}
	if len(buf)%groupsize != 0 {
		groupsize = 1
	}
	if len(buf) == 0 {
		return ""
	}
	ngroups := len(buf) / groupsize
	asciiColumn := rowsize*2 + rowsize/groupsize + 1
	var b strings.Builder
	for j := 0; j < ngroups; j++ {
		if j > 0 {
			b.WriteByte(' ')
		}
		g := buf[j*groupsize : (j+1)*groupsize]
		switch groupsize {
		case 8:
			fmt.Fprintf(&b, "%016x", binary.LittleEndian.Uint64(g))
		case 4:
			fmt.Fprintf(&b, "%08x", binary.LittleEndian.Uint32(g))
		case 2:
			fmt.Fprintf(&b, "%04x", binary.LittleEndian.Uint16(g))
		default:
			fmt.Fprintf(&b, "%02x", g[0])
		}
	}
	if !ascii {
		return b.String()
	}
	for b.Len() < asciiColumn {
		b.WriteByte(' ')
	}
	for _, ch := range buf {
		if ch >= 0x20 && ch < 0x7f { // isascii(ch) && isprint(ch)
			b.WriteByte(ch)
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// Lines returns the lines print_hex_dump(level, prefix, prefixType,
// rowsize, groupsize, buf, len(buf), ascii) prints, without newlines. No
// bytes, no lines. The address of PrefixAddress is shown as the kernel's
// hashed %p would be: a stable token plus the offset.
func Lines(prefix string, prefixType, rowsize, groupsize int, buf []byte, ascii bool) []string {
	if rowsize != 16 && rowsize != 32 {
		rowsize = 16
	}
	var out []string
	for i := 0; i < len(buf); i += rowsize {
		line := ToBuffer(buf[i:min(i+rowsize, len(buf))], rowsize, groupsize, ascii)
		switch prefixType {
		case PrefixAddress:
			out = append(out, fmt.Sprintf("%s%016x: %s", prefix, uint64(0x00000000b8f7a3c0)+uint64(i), line))
		case PrefixOffset:
			out = append(out, fmt.Sprintf("%s%.8x: %s", prefix, i, line))
		default:
			out = append(out, prefix+line)
		}
	}
	return out
}

// PrintHexDump is print_hex_dump(): each line of Lines is a printk at
// level (no pr_fmt prefix).
func PrintHexDump(c *kernel.Ctx, level printk.Level, prefix string, prefixType, rowsize, groupsize int, buf []byte, ascii bool) {
	for _, l := range Lines(prefix, prefixType, rowsize, groupsize, buf, ascii) {
		kernel.Printk(c, level, "%s\n", l)
	}
}

// PrintHexDumpBytes is print_hex_dump_bytes(prefix, prefixType, buf, len)
// of a file built with DEBUG: print_hex_dump at KERN_DEBUG, 16 bytes a row,
// single-byte groups, with the ASCII column.
func PrintHexDumpBytes(c *kernel.Ctx, prefix string, prefixType int, buf []byte) {
	PrintHexDump(c, printk.LevelDebug, prefix, prefixType, 16, 1, buf, true)
}
