package kt_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules/kt"
)

// The race the seed warns about, from Go: load kt1, unload it while its
// thread sleeps, then signal the thread (rmmod kt1; kill -2 PID). The
// thread runs again in the freed code of kt1 and Oopses; kt2 would have
// stopped it at unload.
func Example_unloadRace() {
	var oops *kernel.Oops
	k, _ := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true, OnOops: func(o *kernel.Oops) { oops = o }})
	defer k.Shutdown(context.Background())
	reg := module.NewRegistry()
	reg.Register(kt.Kt1)
	ld := module.Loader(k, reg)
	sh := func(fn func(c *kernel.Ctx)) {
		k.RunTask(context.Background(), "sh", func(c *kernel.Ctx) int { fn(c); return 0 })
	}

	var mykt *kernel.Task
	sh(func(c *kernel.Ctx) { ld.Insmod(c, kt.Kt1Name) })
	for _, t := range k.Tasks() {
		if t.Comm() == kt.ThreadComm {
			mykt = t
		}
	}
	sh(func(c *kernel.Ctx) { ld.Rmmod(c, kt.Kt1Name) })
	fmt.Printf("after rmmod kt1: [%s] pid %d state %c\n", mykt.Comm(), mykt.PID(), mykt.State().Letter())
	sh(func(c *kernel.Ctx) { k.SendSignal(mykt, kernel.SIGINT) })
	k.RunUntilIdle(context.Background())

	k.Log().Flush()
	recs, _ := k.Log().Records(0)
	for _, r := range recs {
		if strings.HasPrefix(r.Text, "BUG:") || strings.HasPrefix(r.Text, "#PF:") || strings.HasPrefix(r.Text, "Oops:") {
			fmt.Println(r.Text)
		}
	}
	fmt.Println("thread exit code:", mykt.ExitCode(), "- Oops in", oops.Task)
	// Output:
	// after rmmod kt1: [mykt] pid 5 state S
	// BUG: unable to handle page fault for address: ffffffffc0a3e07c
	// #PF: supervisor instruction fetch in kernel mode
	// #PF: error_code(0x0010) - not-present page
	// Oops: task mykt/5 panicked: kt1: mykt+0x7c/0x140 ran after module kt1 was unloaded (instruction fetch from freed memory at ffffffffc0a3e07c)
	// thread exit code: -14 - Oops in mykt/5
}
