package bench

import (
	"context"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
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
			var tasks [2]*kernel.Task
			fns := ktest.PingPong(k, (b.N+1)/2, kernel.Schedule, &tasks)
			for i := range tasks {
				tasks[i], _ = k.CreateTask(kernel.TaskOpts{Comm: "player", CPU: i}, fns[i])
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
