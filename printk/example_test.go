package printk_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kdefer/kdefer/printk"
)

// Lines are assembled as printk assembles them: pr_cont pieces join the
// caller's open line, and every "\n" commits a record.
func Example() {
	r := printk.NewRing(16)
	const cpu, pid = 1, 0
	r.Emit(420_000_000, printk.LevelInfo, cpu, pid, "timer_simple:ding(): timed out... data=")
	r.Cont(420_000_100, cpu, pid, "3\n")
	r.Emit(3_723_500_000_000, printk.LevelInfo, cpu, pid, "delta: 52361 ns")
	r.Cont(3_723_500_000_000, cpu, pid, " (~ 52 us")
	r.Cont(3_723_500_000_000, cpu, pid, ")\n")

	recs, _ := r.Records(0)
	for _, rec := range recs {
		fmt.Println(printk.FormatDmesg(rec))
	}
	// Output:
	// [    0.420000] timer_simple:ding(): timed out... data=3
	// [ 3723.500000] delta: 52361 ns (~ 52 us)
}

func ExampleHandler() {
	r := printk.NewRing(16)
	var now int64 = 1_500_000
	logger := slog.New(printk.NewHandler(r, printk.HandlerOptions{Now: func() int64 { return now }}))
	logger.With("wq", "events").WithGroup("work").Warn("hogged CPU", "func", "my_work_fn", "ms", 12)

	recs, _ := r.Records(0)
	fmt.Println(recs[0].Level, printk.FormatDmesg(recs[0]))
	// Output:
	// warn [    0.001500] hogged CPU wq=events work.func=my_work_fn work.ms=12
}

func ExampleRateLimit() {
	r := printk.NewRing(64)
	rl := &printk.RateLimit{Interval: printk.DefaultRateLimitInterval, Burst: 2}
	for i := range 6 {
		now := int64(i) * 2_000_000_000 // every 2 s
		if rl.Allow(now) {
			if n := rl.Suppressed(); n > 0 {
				r.Emit(now, printk.LevelWarning, 0, 1, fmt.Sprintf("my_func: %d callbacks suppressed\n", n))
			}
			r.Emit(now, printk.LevelInfo, 0, 1, fmt.Sprintf("event %d\n", i))
		}
	}
	recs, _ := r.Records(0)
	for _, rec := range recs {
		fmt.Println(printk.FormatDmesg(rec))
	}
	// Output:
	// [    0.000000] event 0
	// [    2.000000] event 1
	// [    6.000000] my_func: 1 callbacks suppressed
	// [    6.000000] event 3
	// [    8.000000] event 4
}

func ExampleRing_Follow() {
	r := printk.NewRing(16)
	r.Emit(0, printk.LevelInfo, 0, 1, "booting\n")
	r.Emit(1_000, printk.LevelErr, 0, 1, "oops\n")

	errSeenOops := errors.New("seen oops")
	err := r.Follow(context.Background(), 0, func(rec printk.Record) error {
		fmt.Printf("%d %-5s %s\n", rec.Seq, rec.Level, rec.Text)
		if rec.Level <= printk.LevelErr {
			return errSeenOops
		}
		return nil
	})
	fmt.Println(err)
	// Output:
	// 0 info  booting
	// 1 err   oops
	// seen oops
}
