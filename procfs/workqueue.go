package procfs

import (
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

// Workqueues returns kdefer's /proc/workqueues: the workqueue dump of
// show_all_workqueues() (kernel/workqueue.c), which the kernel prints to
// its log on SysRq-t and from its lockup watchdog — the busy workqueues
// with their pwqs' in-flight, pending and inactive items, then the pools
// that have a busy worker, with their idle workers (see
// workqueue.ShowAllWorkqueues). The kernel has no such file; an idle
// system shows the header line only.
func Workqueues(k *kernel.Kernel) string { return workqueue.DumpState(k) }

// TaskName is proc_task_name() (fs/proc/array.c): the name
// /proc/PID/comm, /proc/PID/stat and the Name line of /proc/PID/status
// show for t, and so ps. For a workqueue worker it is wq_worker_comm's
// name with what it is doing, "kworker/0:1+events" while it runs an item
// of events and "kworker/0:1-events" afterwards (workqueue.WorkerComm);
// for any other task its comm.
func TaskName(t *kernel.Task) string {
	if name, ok := workqueue.WorkerComm(t); ok {
		return name
	}
	return t.Comm()
}
