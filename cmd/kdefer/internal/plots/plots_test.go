package plots_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/kdefer/kdefer/cmd/kdefer/internal/plots"
	"github.com/kdefer/kdefer/internal/leakcheck"
	"github.com/kdefer/kdefer/trace"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func rec(seq uint64, e trace.Event, flags uint8, args ...uint64) trace.Record {
	r := trace.Record{TS: int64(seq) * 1_000_000, Seq: seq, Event: e, Flags: flags, PID: 1}
	copy(r.Args[:], args)
	return r
}

func TestLatenessGroupsExpiriesByTheLevelOfTheirArm(t *testing.T) {
	lvl1 := uint64(64+5) << trace.TimerArrayShift // idx 69: level 1
	f := &trace.File{Header: trace.FileHeader{CPUs: 1}, Records: []trace.Record{
		rec(1, trace.TimerStart, 0, 0xa, 0, 1000, 1001, 990, 3<<trace.TimerArrayShift),
		rec(2, trace.TimerStart, 0, 0xb, 0, 2000, 2008, 1900, lvl1),
		rec(3, trace.TimerExpireEntry, trace.FlagSoftirq, 0xa, 1001),
		rec(4, trace.TimerExpireEntry, trace.FlagSoftirq, 0xb, 2007),
		rec(5, trace.TimerExpireEntry, trace.FlagSoftirq, 0xc, 3000), // armed before the recording
	}}
	got := plots.Lateness(f)
	if len(got) != 2 || got[0].Name != "wheel level 0 (buckets of 1 jiffies)" || got[0].Values[0] != 1 ||
		got[1].Name != "wheel level 1 (buckets of 8 jiffies)" || got[1].Values[0] != 7 {
		t.Errorf("Lateness = %+v", got)
	}
}

func TestSlicesNestPerCPU(t *testing.T) {
	f := &trace.File{Header: trace.FileHeader{CPUs: 2}, Records: []trace.Record{
		rec(1, trace.SoftirqEntry, trace.FlagSoftirq, 1),
		rec(2, trace.TimerExpireEntry, trace.FlagSoftirq, 0xa, 5, 0, 5),
		rec(3, trace.TimerExpireExit, trace.FlagSoftirq, 0xa),
		rec(4, trace.SoftirqExit, trace.FlagSoftirq, 1),
	}}
	sl := plots.Slices(f)
	if len(sl) != 2 || sl[0].Cat != "softirq" || sl[0].Depth != 0 || sl[1].Cat != "timer" || sl[1].Depth != 1 ||
		sl[0].Start != 1 || sl[0].End != 4 {
		t.Errorf("Slices = %+v", sl)
	}
}

func TestSaveWantsPNGOrSVGAndSomethingToDraw(t *testing.T) {
	ps, err := plots.Histograms([]plots.Series{{Name: "a", Values: []float64{1, 2, 2}}, {Name: "b", Values: []float64{3}}}, "t", "x")
	if err != nil || len(ps) != 2 {
		t.Fatalf("Histograms: %v, %d plots", err, len(ps))
	}
	if ps[0].X.Min != ps[1].X.Min || ps[0].X.Max != ps[1].X.Max {
		t.Error("the histograms do not share their x range")
	}
	if err := plots.Save(filepath.Join(t.TempDir(), "x.pdf"), ps, 100, 100); !errors.Is(err, plots.ErrFormat) {
		t.Errorf("Save .pdf: %v, want ErrFormat", err)
	}
	if _, err := plots.Histograms([]plots.Series{{Name: "empty"}}, "t", "x"); !errors.Is(err, plots.ErrNoData) {
		t.Errorf("Histograms of nothing: %v, want ErrNoData", err)
	}
	if _, err := plots.Timeline(&trace.File{}, "t"); !errors.Is(err, plots.ErrNoData) {
		t.Errorf("Timeline of nothing: %v, want ErrNoData", err)
	}
}
