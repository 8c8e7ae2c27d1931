package kernel_test

import (
	"context"
	"os"

	"github.com/kdefer/kdefer/kernel"
)

// A kernel's tracepoints are off until enabled, here at boot as the
// trace_event= parameter does; Report prints what `trace-cmd report`
// prints.
func ExampleKernel_Tracer() {
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true, TraceEvents: "irq:softirq_*"})
	defer k.Shutdown(context.Background())
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {})
	k.RunTask(context.Background(), "raiser", func(c *kernel.Ctx) int {
		kernel.RaiseSoftirq(c, kernel.NetRXSoftirq) // from a task: ksoftirqd runs it
		return 0
	})
	k.RunUntilIdle(context.Background())
	k.Tracer().Report(os.Stdout)
	// Output:
	// cpus=1
	//           raiser-4     [000]     0.000000: softirq_raise:        vec=3 [action=NET_RX]
	//      ksoftirqd/0-3     [000]     0.000000: softirq_entry:        vec=3 [action=NET_RX]
	//      ksoftirqd/0-3     [000]     0.000000: softirq_exit:         vec=3 [action=NET_RX]
}
