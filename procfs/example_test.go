package procfs_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/procfs"
)

func ExampleSoftirqs() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 2, Quiet: true})
	defer k.Shutdown(context.Background())
	k.OpenSoftirq(kernel.HISoftirq, func(*kernel.Ctx) {})
	k.RunTask(context.Background(), "app", func(c *kernel.Ctx) int {
		kernel.LocalBHDisable(c)
		kernel.RaiseSoftirq(c, kernel.HISoftirq)
		kernel.LocalBHEnable(c)
		return 0
	})
	for _, line := range strings.Split(procfs.Softirqs(k), "\n")[:2] {
		fmt.Println(strings.TrimRight(line, " "))
	}
	// Output:
	//                     CPU0       CPU1
	//           HI:          1          0
}
