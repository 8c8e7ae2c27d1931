// Package plots draws kdefer's pictures with gonum/plot (pure Go: PNG and
// SVG without cgo): histograms of how long the sleep APIs really slept,
// timer lateness per wheel level from a recorded trace, and a per-CPU
// activity strip of a recorded trace.
//
// There is no kernel counterpart: these are the charts people draw from
// trace-cmd and cyclictest output.
package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kdefer/kdefer/trace"
	"github.com/kdefer/kdefer/trace/perfetto"
)

// ErrFormat is returned for an output name that is neither .png nor .svg.
var ErrFormat = errors.New("plots: want a .png or .svg file name")

// ErrNoData is returned when a trace holds nothing to draw.
var ErrNoData = errors.New("plots: nothing to draw")

// Series is one named set of values.
type Series struct {
	Name   string
	Values []float64
}

// palette colours the series in order.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// Histograms returns one histogram plot per series, titled by the series
// and by title, sharing the x range so that they compare at a glance.
func Histograms(series []Series, title, xlabel string) ([]*plot.Plot, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, v := range s.Values {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return nil, ErrNoData
	}
	if hi == lo {
		hi = lo + 1
	}
	// Shared bins: the same 40 bins over the common range for every
	// series, so that the bars compare.
	const nbins = 40
	pad := (hi - lo) * 0.02
	lo, hi = lo-pad, hi+pad
	width := (hi - lo) / nbins
	var out []*plot.Plot
	for i, s := range series {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s (n=%d)", s.Name, title, len(s.Values))
		p.X.Label.Text = xlabel
		p.Y.Label.Text = "count"
		p.X.Min, p.X.Max = lo, hi
		bins := make([]plotter.HistogramBin, nbins)
		for b := range bins {
			bins[b].Min, bins[b].Max = lo+float64(b)*width, lo+float64(b+1)*width
		}
		for _, v := range s.Values {
			b := min(int((v-lo)/width), nbins-1)
			bins[b].Weight++
		}
		h := &plotter.Histogram{Bins: bins, Width: width, FillColor: palette[i%len(palette)]}
		h.LineStyle.Width = 0
		p.Add(h)
		out = append(out, p)
	}
	return out, nil
}

// Save writes plots stacked in one column to path, as PNG or SVG by its
// extension, each row rowHeight high.
func Save(path string, plots []*plot.Plot, width, rowHeight vg.Length) error {
	if len(plots) == 0 {
		return ErrNoData
	}
	h := rowHeight * vg.Length(len(plots))
	var c interface {
		vg.CanvasWriterTo
	}
	switch filepath.Ext(path) {
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.New(width, h)}
	case ".svg":
		c = vgsvg.New(width, h)
	default:
		return fmt.Errorf("%w: %q", ErrFormat, path)
	}
	dc := draw.New(c)
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Millimeter, PadBottom: vg.Millimeter,
		PadLeft: vg.Millimeter, PadRight: 2 * vg.Millimeter, PadY: 3 * vg.Millimeter}
	for i, cs := range plot.Align(rows, tiles, dc) {
		plots[i].Draw(cs[0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Lateness returns, per timer-wheel level, the lateness in jiffies of each
// timer expiry in f: the jiffy its callback ran (timer_expire_entry's now)
// minus the expires of its latest timer_start, the level being that
// timer_start's bucket (idx / LVL_SIZE). Levels without expiries are left
// out. It needs the timer_start and timer_expire_entry events.
func Lateness(f *trace.File) []Series {
	recs := append([]trace.Record(nil), f.Records...)
	trace.SortRecords(recs)
	type arm struct {
		expires uint64
		level   int
	}
	armed := map[uint64]arm{}
	byLevel := map[int][]float64{}
	for i := range recs {
		r := &recs[i]
		switch r.Event {
		case trace.TimerStart:
			armed[r.Args[0]] = arm{expires: r.Args[2], level: int(r.Args[5]>>trace.TimerArrayShift) / 64}
		case trace.TimerExpireEntry:
			if a, ok := armed[r.Args[0]]; ok {
				byLevel[a.level] = append(byLevel[a.level], float64(int64(r.Args[1]-a.expires)))
				delete(armed, r.Args[0])
			}
		}
	}
	levels := make([]int, 0, len(byLevel))
	for l := range byLevel {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	var out []Series
	for _, l := range levels {
		out = append(out, Series{Name: fmt.Sprintf("wheel level %d (buckets of %d jiffies)", l, 1<<(3*l)), Values: byLevel[l]})
	}
	return out
}

// Slice is one bar of the timeline: what ran on a CPU from Start to End
// (ms since boot), at nesting Depth (0: outermost), of category Cat
// (irq, softirq, timer, hrtimer, tasklet).
type Slice struct {
	CPU        int
	Start, End float64
	Depth      int
	Cat, Name  string
}

// Slices returns what ran on each CPU in f, as the Perfetto export's CPU
// tracks show it (see package perfetto).
func Slices(f *trace.File) []Slice {
	tl := perfetto.Build(f.Records, perfetto.FromFile(f))
	var out []Slice
	for _, e := range tl.TraceEvents {
		if e.Ph != "X" || e.PID != perfetto.PIDCPUs {
			continue
		}
		out = append(out, Slice{CPU: e.TID, Start: e.TS / 1000, End: (e.TS + *e.Dur) / 1000, Cat: e.Cat, Name: e.Name})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].CPU != out[j].CPU {
			return out[i].CPU < out[j].CPU
		}
		if out[i].Start != out[j].Start {
			return out[i].Start < out[j].Start
		}
		return out[i].End > out[j].End
	})
	var stack []Slice
	for i := range out {
		for len(stack) > 0 && (stack[len(stack)-1].CPU != out[i].CPU || stack[len(stack)-1].End <= out[i].Start) {
			stack = stack[:len(stack)-1]
		}
		out[i].Depth = len(stack)
		stack = append(stack, out[i])
	}
	return out
}

// categories of the timeline, in legend order.
var categories = []string{"irq", "softirq", "timer", "hrtimer", "tasklet"}

func catColor(cat string) color.Color {
	for i, c := range categories {
		if c == cat {
			return palette[i]
		}
	}
	return palette[len(palette)-1]
}

// strips is a plotter drawing slices as bars, one row per CPU.
type strips struct {
	slices []Slice
	cpus   int
	t0, t1 float64
}

// DataRange is plot.DataRanger: the time span and a row per CPU.
func (s *strips) DataRange() (xmin, xmax, ymin, ymax float64) {
	return s.t0, s.t1, -0.5, float64(s.cpus) - 0.5
}

// Plot is plot.Plotter: a box per slice, at least a pixel wide.
func (s *strips) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, sl := range s.slices {
		x0, x1 := trX(sl.Start), trX(sl.End)
		if x1-x0 < 1 { // a slice of no width (virtual time) still shows
			x1 = x0 + 1
		}
		half := 0.4 - 0.08*float64(min(sl.Depth, 4))
		y0, y1 := trY(float64(sl.CPU)-half), trY(float64(sl.CPU)+half)
		c.FillPolygon(catColor(sl.Cat), []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
	}
}

// Timeline returns a per-CPU activity strip of f: a row per CPU, a bar
// for each interrupt handler, softirq, timer or hrtimer callback and
// tasklet that ran there (nested ones drawn thinner inside), coloured by
// kind.
func Timeline(f *trace.File, title string) (*plot.Plot, error) {
	sl := Slices(f)
	if len(sl) == 0 {
		return nil, fmt.Errorf("%w: no interrupt, softirq, timer or tasklet ran in the trace (record the irq and timer events)", ErrNoData)
	}
	cpus := max(f.Header.CPUs, 1)
	t0, t1 := math.Inf(1), math.Inf(-1)
	for _, s := range sl {
		t0, t1 = min(t0, s.Start), max(t1, s.End)
		cpus = max(cpus, s.CPU+1)
	}
	if t1-t0 < 1 {
		t1 = t0 + 1
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "time since boot (ms)"
	p.Y.Label.Text = "CPU"
	st := &strips{slices: sl, cpus: cpus, t0: t0, t1: t1}
	p.Add(st)
	ticks := make([]plot.Tick, cpus)
	for i := range ticks {
		ticks[i] = plot.Tick{Value: float64(i), Label: fmt.Sprintf("CPU%d", i)}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	seen := map[string]bool{}
	for _, s := range sl {
		seen[s.Cat] = true
	}
	for _, cat := range categories {
		if seen[cat] {
			p.Legend.Add(cat, swatch{catColor(cat)})
		}
	}
	p.Legend.Top = true
	return p, nil
}

// swatch is a legend entry's coloured box.
type swatch struct{ c color.Color }

// Thumbnail is plot.Thumbnailer: the legend's box.
func (s swatch) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(s.c, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}
