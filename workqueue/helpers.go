package workqueue

import "strconv"

func itoa(n int) string { return strconv.Itoa(n) }

func hex8(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	for len(s) < 8 {
		s = "0" + s
	}
	return "0x" + s
}
