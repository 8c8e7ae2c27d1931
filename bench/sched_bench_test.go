package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/kernel"
)

// BenchmarkContextSwitch measures a task blocking and being woken by
// another: two tasks hand a turn back and forth (set_current_state, test,
// schedule / wake_up_process), in real and in virtual time. ns/op is one
// hand-off (one block and one wakeup). Neither task has a scheduler
// notifier flagged: the hook must cost nothing then.
func BenchmarkContextSwitch(b *testing.B) {
	for _, mode := range []struct {
		name    string
		virtual bool
	}{{"real", false}, {"virtual", true}} {
		b.Run(mode.name, func(b *testing.B) {
			k, err := kernel.Boot(kernel.Config{CPUs: 2, Virtual: mode.virtual, Quiet: true})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Shutdown(context.Background())
			var turn atomic.Int32
			var tasks [2]*kernel.Task
			n := b.N
			player := func(me int32) func(c *kernel.Ctx) int {
				return func(c *kernel.Ctx) int {
					for i := 0; i < n; i += 2 {
						for {
							kernel.SetCurrentState(c, kernel.TaskUninterruptible)
							if turn.Load() == me {
								break
							}
							kernel.Schedule(c)
						}
						kernel.SetCurrentState(c, kernel.TaskRunning)
						turn.Store(1 - me)
						k.WakeUpProcess(tasks[1-me])
					}
					return 0
				}
			}
			for i := range tasks {
				tasks[i], _ = k.CreateTask(kernel.TaskOpts{Comm: "player", CPU: i}, player(int32(i)))
			}
			b.ResetTimer()
			k.WakeUpProcess(tasks[0])
			k.WakeUpProcess(tasks[1])
			if mode.virtual {
				k.Run(context.Background(), 0)
			}
			<-tasks[0].Exited()
			<-tasks[1].Exited()
		})
	}
}
