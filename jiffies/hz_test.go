package jiffies

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidAcceptsOnlyKconfigChoices(t *testing.T) {
	for _, hz := range allHZ() {
		if err := hz.Valid(); err != nil {
			t.Errorf("HZ(%d).Valid() = %v, want nil", hz, err)
		}
	}
	if DefaultHZ != HZ250 {
		t.Errorf("DefaultHZ = %d, want 250", DefaultHZ)
	}
	for _, hz := range []HZ{0, 1, 24, 99, 101, 128, 200, 256, 500, 512, 1024, 2000, math.MaxUint32} {
		err := hz.Valid()
		if !errors.Is(err, ErrInvalidHZ) {
			t.Errorf("HZ(%d).Valid() = %v, want an error wrapping ErrInvalidHZ", hz, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "100, 250, 300, 1000") {
			t.Errorf("HZ(%d).Valid() = %q, want it to list the allowed values", hz, msg)
		}
	}
}

func TestMethodsPanicOnInvalidHZ(t *testing.T) {
	calls := map[string]func(HZ){
		"InitialJiffies":         func(hz HZ) { hz.InitialJiffies() },
		"TickNsec":               func(hz HZ) { hz.TickNsec() },
		"TickUsec":               func(hz HZ) { hz.TickUsec() },
		"MsecsToJiffies":         func(hz HZ) { hz.MsecsToJiffies(1) },
		"UsecsToJiffies":         func(hz HZ) { hz.UsecsToJiffies(1) },
		"NsecsToJiffies":         func(hz HZ) { hz.NsecsToJiffies(1) },
		"NsecsToJiffies64":       func(hz HZ) { hz.NsecsToJiffies64(1) },
		"JiffiesToMsecs":         func(hz HZ) { hz.JiffiesToMsecs(1) },
		"JiffiesToUsecs":         func(hz HZ) { hz.JiffiesToUsecs(1) },
		"JiffiesToNsecs":         func(hz HZ) { hz.JiffiesToNsecs(1) },
		"SecsToJiffies":          func(hz HZ) { hz.SecsToJiffies(1) },
		"RoundJiffies":           func(hz HZ) { hz.RoundJiffies(0, 1, 0) },
		"RoundJiffiesRelative":   func(hz HZ) { hz.RoundJiffiesRelative(0, 1, 0) },
		"RoundJiffiesUp":         func(hz HZ) { hz.RoundJiffiesUp(0, 1, 0) },
		"RoundJiffiesUpRelative": func(hz HZ) { hz.RoundJiffiesUpRelative(0, 1, 0) },
		"timeconst":              func(hz HZ) { hz.timeconst() },
	}
	for name, call := range calls {
		for _, hz := range []HZ{0, 1024} {
			func() {
				defer func() {
					r := recover()
					msg, _ := r.(string)
					if !strings.HasPrefix(msg, "jiffies: invalid HZ") {
						t.Errorf("HZ(%d).%s: recovered %v, want a panic starting with %q", hz, name, r, "jiffies: invalid HZ")
					}
				}()
				call(hz)
			}()
		}
	}
}

func TestInitialJiffiesIsKernelValue(t *testing.T) {
	// Values from kernel-semantics.md §5: ((unsigned long)(unsigned int)(-300*HZ)).
	want := map[HZ]uint64{
		HZ1000: 4294667296, // 0xFFFB6C20
		HZ250:  4294892296, // 0xFFFEDB08
		HZ300:  4294877296, // 0xFFFEA070
		HZ100:  4294937296, // 0xFFFF8AD0
	}
	for hz, w := range want {
		if got := hz.InitialJiffies(); got != w {
			t.Errorf("HZ(%d).InitialJiffies() = %d (%#x), want %d (%#x)", hz, got, got, w, w)
		}
		if got := hz.InitialJiffies(); got>>32 != 0 {
			t.Errorf("HZ(%d).InitialJiffies() = %#x, want a 32-bit value", hz, got)
		}
	}
}

func TestLimitsMatchKernel(t *testing.T) {
	if MaxJiffyOffset != 0x3FFFFFFFFFFFFFFE {
		t.Errorf("MaxJiffyOffset = %#x, want 0x3FFFFFFFFFFFFFFE", MaxJiffyOffset)
	}
	if MaxScheduleTimeout != math.MaxInt64 {
		t.Errorf("MaxScheduleTimeout = %d, want LONG_MAX", MaxScheduleTimeout)
	}
	if UserHZ != 100 {
		t.Errorf("UserHZ = %d, want 100", UserHZ)
	}
	// MAX_JIFFY_OFFSET+1 must still be positive as a signed long.
	if int64(MaxJiffyOffset+1) <= 0 {
		t.Errorf("MaxJiffyOffset+1 is not positive as int64")
	}
}

func TestTickNsecAndTickUsecRoundToNearest(t *testing.T) {
	tests := []struct {
		hz         HZ
		nsec, usec int64
	}{
		{HZ100, 10000000, 10000},
		{HZ250, 4000000, 4000},
		{HZ300, 3333333, 3333},
		{HZ1000, 1000000, 1000},
	}
	for _, tt := range tests {
		if got := tt.hz.TickNsec(); got != tt.nsec {
			t.Errorf("HZ(%d).TickNsec() = %d, want %d", tt.hz, got, tt.nsec)
		}
		if got := tt.hz.TickUsec(); got != tt.usec {
			t.Errorf("HZ(%d).TickUsec() = %d, want %d", tt.hz, got, tt.usec)
		}
	}
}

func TestTimeconstMatchesTimeconstBC(t *testing.T) {
	for _, hz := range allHZ() {
		if got, want := hz.timeconst(), bcTimeconst(hz); got != want {
			t.Errorf("HZ(%d).timeconst() = %+v, want (timeconst.bc) %+v", hz, got, want)
		}
	}
	// The values in a real include/generated/timeconst.h for HZ=300.
	tc := HZ300.timeconst()
	if tc.msecToHZMul32 != 0x9999999A || tc.msecToHZAdj32 != 0x1CCCCCCCC || tc.msecToHZShr32 != 33 {
		t.Errorf("HZ=300 MSEC_TO_HZ = %#x/%#x/%d, want 0x9999999A/0x1CCCCCCCC/33",
			tc.msecToHZMul32, tc.msecToHZAdj32, tc.msecToHZShr32)
	}
}
