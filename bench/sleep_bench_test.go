package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
)

// sleepCase is one sleep primitive measured in a real-time kernel's user
// task next to time.Sleep of the same (minimum) duration.
type sleepCase struct {
	name string
	want time.Duration
	do   func(c *kernel.Ctx)
}

var sleepCases = []sleepCase{
	{"usleep_range(10,20)", 10 * time.Microsecond, func(c *kernel.Ctx) { delay.UsleepRange(c, 10, 20) }},
	{"usleep_range(100,200)", 100 * time.Microsecond, func(c *kernel.Ctx) { delay.UsleepRange(c, 100, 200) }},
	{"msleep(1)", time.Millisecond, func(c *kernel.Ctx) { delay.Msleep(c, 1) }},
	{"msleep(10)", 10 * time.Millisecond, func(c *kernel.Ctx) { delay.Msleep(c, 10) }},
	{"udelay(10)", 10 * time.Microsecond, func(c *kernel.Ctx) { delay.Udelay(c, 10) }},
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

func report(b *testing.B, d []time.Duration) {
	p50, p99 := percentiles(d)
	b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-us")
}

// BenchmarkSleepPrecision: actual vs requested duration, p50 and p99, of
// kdefer's sleeps and busy waits (real time, HZ=1000) and of time.Sleep.
func BenchmarkSleepPrecision(b *testing.B) {
	for _, sc := range sleepCases {
		b.Run("kdefer/"+sc.name, func(b *testing.B) {
			k, err := kernel.Boot(kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Shutdown(context.Background())
			d := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			k.RunTask(context.Background(), "sleeper", func(c *kernel.Ctx) int {
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					sc.do(c)
					d = append(d, time.Since(t0))
				}
				return 0
			})
			report(b, d)
		})
		b.Run("go/time.Sleep("+sc.want.String()+")", func(b *testing.B) {
			d := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				time.Sleep(sc.want)
				d = append(d, time.Since(t0))
			}
			report(b, d)
		})
	}
}
