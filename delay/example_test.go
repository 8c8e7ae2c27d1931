package delay_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/kernel"
)

func Example() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, HZ: 250, Quiet: true})
	defer k.Shutdown(context.Background())
	k.RunTask(context.Background(), "app", func(c *kernel.Ctx) int {
		t0 := k.Now()
		delay.Msleep(c, 10) // 3 jiffies at HZ=250, +1 for the wheel's round-up
		fmt.Println("msleep(10) took", time.Duration(k.Now()-t0))
		t0 = k.Now()
		delay.UsleepRange(c, 100, 200)
		fmt.Println("usleep_range(100, 200) took", time.Duration(k.Now()-t0))
		t0 = k.Now()
		delay.Udelay(c, 10)
		fmt.Println("udelay(10) took", time.Duration(k.Now()-t0))
		return 0
	})
	// Output:
	// msleep(10) took 16ms
	// usleep_range(100, 200) took 200µs
	// udelay(10) took 10µs
}
