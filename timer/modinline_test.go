package timer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
)

// TestModInlinePathMatchesTheGenericPath: Mod's inline common case (a
// set-up timer re-armed on the calling CPU's base of its kind, tracing
// off, the base clock current, a level below the last) leaves the wheels
// exactly as mod_timer's generic path does. Two identical virtual kernels
// run the same random operations (arms to deltas on every level, past and
// capped, deletes, same-expiry re-arms, ticks), one through Mod and one
// through modTimer; after every step the return values, every timer's
// expiry and bucket, every bucket's list order (LIFO), the pending maps,
// clocks, next expiries, run floors and the callbacks run so far must be
// equal, at every HZ.
func TestModInlinePathMatchesTheGenericPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	for _, hz := range allHZ {
		t.Run(fmt.Sprint("HZ=", hz), func(t *testing.T) {
			var ks [2]*kernel.Kernel
			for i := range ks {
				k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: hz, Quiet: true})
				if err != nil {
					t.Fatal(err)
				}
				defer k.Shutdown(context.Background())
				ks[i] = k
			}
			const n = 48
			var tms [2][]Timer
			var fired [2][]int
			for s := range ks {
				c := ks[s].IdleCtx(0)
				tms[s] = make([]Timer, n)
				for i := range tms[s] {
					flags := [...]uint32{0, 0, 0, FlagPinned, FlagDeferrable}[i%5]
					Setup(c, &tms[s][i], func(*kernel.Ctx, *Timer) { fired[s] = append(fired[s], i) }, flags)
				}
			}
			deltas := deltaSamples(rng, lvlDepth(hz), 300)
			tick := time.Duration(ks[0].TickNsec())
			steps := 4000
			if raceEnabled {
				steps = 1000 // see race_on_test.go
			}
			for step := 0; step < steps; step++ {
				i := rng.IntN(n)
				var r [2]int
				what := ""
				switch op := rng.IntN(16); {
				case op < 9:
					d := deltas[rng.IntN(len(deltas))]
					if op < 4 {
						d = rng.Int64N(600) // the common case: short deltas, often the same bucket
					}
					what = fmt.Sprintf("mod timer %d to jiffies%+d", i, d)
					for s := range ks {
						c := ks[s].IdleCtx(0)
						e := c.Jiffies() + uint64(d)
						if s == 0 {
							r[s] = Mod(c, &tms[s][i], e)
						} else {
							r[s] = modTimer(c, &tms[s][i], e, modNormal, -1)
						}
					}
				case op < 11:
					what = fmt.Sprintf("mod timer %d to its own expiry", i)
					for s := range ks {
						c := ks[s].IdleCtx(0)
						e := tms[s][i].expires
						if s == 0 {
							r[s] = Mod(c, &tms[s][i], e)
						} else {
							r[s] = modTimer(c, &tms[s][i], e, modNormal, -1)
						}
					}
				case op < 13:
					what = fmt.Sprintf("delete timer %d", i)
					for s := range ks {
						r[s] = Delete(&tms[s][i])
					}
				default:
					ticks := rng.IntN(3)
					if rng.IntN(8) == 0 {
						ticks = rng.IntN(5000)
					}
					what = fmt.Sprintf("run %d ticks", ticks)
					for s := range ks {
						if err := ks[s].Run(context.Background(), time.Duration(ticks)*tick); err != nil && err != context.DeadlineExceeded {
							t.Fatal(err)
						}
					}
				}
				if r[0] != r[1] {
					t.Fatalf("step %d, %s: Mod/Delete returned %d, the generic path %d", step, what, r[0], r[1])
				}
				if !slices.Equal(fired[0], fired[1]) {
					t.Fatalf("step %d, %s: callbacks run %v, with the generic path %v", step, what, fired[0], fired[1])
				}
				if err := sameWheels(ks, tms); err != nil {
					t.Fatalf("step %d, %s: %v", step, what, err)
				}
			}
		})
	}
}

// sameWheels compares the timer bases of two kernels whose timers are
// tms[0] and tms[1], index for index.
func sameWheels(ks [2]*kernel.Kernel, tms [2][]Timer) error {
	var idx [2]map[*Timer]int
	for s := range idx {
		idx[s] = make(map[*Timer]int)
		for i := range tms[s] {
			idx[s][&tms[s][i]] = i
		}
	}
	bs := [2][]*timerBase{sysOf(ks[0]).bases, sysOf(ks[1]).bases}
	for j := range bs[0] {
		a, b := bs[0][j], bs[1][j]
		a.mu.Lock()
		b.mu.Lock()
		err := func() error {
			wa, wb := &a.w, &b.w
			if wa.clk != wb.clk || wa.nextExpiry != wb.nextExpiry || wa.nextExpiryRecalc != wb.nextExpiryRecalc ||
				wa.timersPending != wb.timersPending || wa.runFloor != wb.runFloor || wa.runFloorSet != wb.runFloorSet ||
				wa.pendingMap != wb.pendingMap {
				return fmt.Errorf("%s: Mod's wheel %s; the generic path's %s", a.name, wa.describe(), wb.describe())
			}
			for v := range wa.vectors {
				var la, lb []int
				for p := wa.vectors[v]; p != nil; p = p.next {
					la = append(la, idx[0][p])
				}
				for p := wb.vectors[v]; p != nil; p = p.next {
					lb = append(lb, idx[1][p])
				}
				if !slices.Equal(la, lb) {
					return fmt.Errorf("%s bucket %d: Mod's list %v, the generic path's %v", a.name, v, la, lb)
				}
			}
			if err := wa.verify(); err != nil {
				return err
			}
			return nil
		}()
		b.mu.Unlock()
		a.mu.Unlock()
		if err != nil {
			return err
		}
	}
	for i := range tms[0] {
		ta, tb := &tms[0][i], &tms[1][i]
		ba, bb := ta.lockBase(), tb.lockBase()
		same := ta.expires == tb.expires && ta.pending() == tb.pending() && ta.flags == tb.flags &&
			(ba == nil) == (bb == nil) && (ba == nil || ba.kind == bb.kind)
		if ba != nil {
			ba.mu.Unlock()
		}
		if bb != nil {
			bb.mu.Unlock()
		}
		if !same {
			return fmt.Errorf("timer %d: Mod's expires %d pending %t flags %#x; the generic path's %d %t %#x",
				i, ta.expires, ta.pending(), ta.flags, tb.expires, tb.pending(), tb.flags)
		}
	}
	return nil
}
