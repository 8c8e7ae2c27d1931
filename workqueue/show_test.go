package workqueue_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/workqueue"
)

func sleeper(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 10) }
func fast(c *kernel.Ctx, w *workqueue.Work)    {}

// pidOf returns the pid of k's task named comm.
func pidOf(t *testing.T, k *kernel.Kernel, comm string) int {
	t.Helper()
	for _, tk := range k.Tasks() {
		if tk.Comm() == comm {
			return tk.PID()
		}
	}
	t.Fatalf("no task %s", comm)
	return 0
}

// TestDumpShowsTheBusyPwqInFlightInactiveAndFlushBarrier: on an ordered
// workqueue one item sleeps and two wait on the inactive list, the first
// with a flush barrier linked behind it. The dump names the workqueue with
// its flags (WQ_UNBOUND | __WQ_ORDERED), the unbound pool of its pwq,
// active 1 and a reference per item in flight, the worker running the
// sleeper, the inactive items with BAR(pid of the flusher), and the busy
// pool with its idle worker.
func TestDumpShowsTheBusyPwqInFlightInactiveAndFlushBarrier(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	var a, b, c2 workqueue.Work
	workqueue.Init(&a, sleeper)
	workqueue.Init(&b, fast)
	workqueue.Init(&c2, fast)
	var dump string
	var flusher *kernel.Task
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.AllocOrderedWorkqueue(c, "ord", 0)
		workqueue.QueueWork(c, wq, &a)
		workqueue.QueueWork(c, wq, &b)
		workqueue.QueueWork(c, wq, &c2)
		flusher = onCPU(t, k, "flusher", 1, func(c *kernel.Ctx) { workqueue.FlushWork(c, &b) })
		delay.Msleep(c, 5)
		dump = workqueue.DumpState(c.Kernel())
		workqueue.DestroyWorkqueue(c, wq)
	})
	want := fmt.Sprintf(`Showing busy workqueues and worker pools:
workqueue ord: flags=0x20002
  pwq 8: cpus=0-1 node=0 flags=0x4 nice=0 active=1 refcnt=5
    in-flight: %d:sleeper
    inactive: fast BAR(%d), fast
pool 8: cpus=0-1 node=0 flags=0x4 nice=0 hung=0s workers=2 idle: %d
`, pidOf(t, k, "kworker/u8:0"), flusher.PID(), pidOf(t, k, "kworker/u8:1"))
	if dump != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", dump, want)
	}
}

// TestDumpFromAWorkItemShowsThePendingRunAndTheIdleWorker: a work item that
// queues two items of the same function on its own CPU and dumps before it
// sleeps sees itself in flight (with the barrier of the task flushing it
// scheduled behind it), the two pending items as one run, 2*fast, and the
// pool's reserve worker idle. ShowAllWorkqueues prints the same text to
// the log.
func TestDumpFromAWorkItemShowsThePendingRunAndTheIdleWorker(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var f1, f2 workqueue.Work
	workqueue.Init(&f1, fast)
	workqueue.Init(&f2, fast)
	var dump string
	var flusher int
	d := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		workqueue.ScheduleWork(c, &f1)
		workqueue.ScheduleWork(c, &f2)
		dump = workqueue.DumpState(c.Kernel())
		workqueue.ShowAllWorkqueues(c)
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		flusher = c.Current().PID()
		workqueue.ScheduleWork(c, d)
		workqueue.FlushWork(c, d)
	})
	want := fmt.Sprintf(`Showing busy workqueues and worker pools:
workqueue events: flags=0x0
  pwq 2: cpus=0 node=0 flags=0x0 nice=0 active=3 refcnt=5
    in-flight: %d:TestDumpFromAWorkItemShowsThePendingRunAndTheIdleWorker BAR(%d)
    pending: 2*fast
pool 2: cpus=0 node=0 flags=0x0 nice=0 hung=0s workers=2 idle: %d
`, pidOf(t, k, "kworker/0:0"), flusher, pidOf(t, k, "kworker/0:1"))
	if dump != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", dump, want)
	}
	if log := ktest.Text(k); !strings.Contains(log, want) {
		t.Fatalf("log has no dump:\n%s", log)
	}
}

// TestDumpOfAnIdleSystemIsItsHeader: nothing busy, nothing printed but the
// header (the kernel's sysrq-t on an idle machine).
func TestDumpOfAnIdleSystemIsItsHeader(t *testing.T) {
	k := ktest.Virtual(t, 2, 1000)
	w := workqueue.Declare(fast)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, w)
		workqueue.FlushWork(c, w)
	})
	if got := workqueue.DumpState(k); got != "Showing busy workqueues and worker pools:\n" {
		t.Fatalf("dump of an idle system:\n%s", got)
	}
}

// TestDumpPrintsBHPoolsAsBH: a BH item that dumps from softirq context
// shows its pool as "bh" (flags POOL_BH|POOL_DISASSOCIATED) and its
// pseudo-worker as "bh".
func TestDumpPrintsBHPoolsAsBH(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var dump string
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { dump = workqueue.DumpState(c.Kernel()) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.QueueWork(c, workqueue.SystemBHHighpri(c.Kernel()), w)
		workqueue.FlushWork(c, w)
	})
	for _, l := range []string{
		"workqueue events_bh_highpri: flags=0x11",
		"  pwq 1: cpus=0 node=0 flags=0x5 bh-hi active=1 refcnt=",
		"    in-flight: bh-hi:TestDumpPrintsBHPoolsAsBH",
		"pool 1: cpus=0 node=0 flags=0x5 bh-hi hung=0s workers=1",
	} {
		if !strings.Contains(dump, l) {
			t.Errorf("dump has no %q:\n%s", l, dump)
		}
	}
}

func longSleeper(c *kernel.Ctx, w *workqueue.Work) { delay.Msleep(c, 3000) }

// TestDumpShowsAStuckPoolWithItsManagerAndHungTime: worker creation fails,
// so when the running item sleeps the pool's only other worker becomes its
// manager (POOL_MANAGER_ACTIVE, "manager: pid") and cannot make a worker
// for the items behind: 2.5 s later the pool is shown hung for 2 s.
func TestDumpShowsAStuckPoolWithItsManagerAndHungTime(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	warm := workqueue.Declare(fast)
	a, b, c2 := workqueue.Declare(longSleeper), workqueue.Declare(longSleeper), workqueue.Declare(fast)
	var dump string
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, warm) // two workers: the first and the manager's reserve
		workqueue.FlushWork(c, warm)
		workqueue.FailWorkerCreation(k, func() bool { return true })
		workqueue.ScheduleWork(c, a)
		workqueue.ScheduleWork(c, b)
		workqueue.ScheduleWork(c, c2)
		delay.Msleep(c, 2500)
		dump = workqueue.DumpState(k)
		workqueue.FailWorkerCreation(k, func() bool { return false })
	})
	ktest.Run(t, k, 0)
	want := fmt.Sprintf(`Showing busy workqueues and worker pools:
workqueue events: flags=0x0
  pwq 2: cpus=0 node=0 flags=0x2 nice=0 active=3 refcnt=4
    in-flight: %d:longSleeper
    pending: longSleeper, fast
pool 2: cpus=0 node=0 flags=0x2 nice=0 hung=2s workers=2 manager: %d
`, pidOf(t, k, "kworker/0:0"), pidOf(t, k, "kworker/0:1"))
	if dump != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", dump, want)
	}
}

// TestWorkerCommShowsPlusDescWhileRunningAndMinusDescAfter: ps names a
// kworker "kworker/0:0+events" while it runs an item of events,
// "kworker/0:0-events" once it is done, and shows set_worker_desc's text
// (cut to 31 bytes) instead of the workqueue's name for the item that set
// it. A worker that has run nothing has its bare name; a task that is no
// worker is not named by WorkerComm.
func TestWorkerCommShowsPlusDescWhileRunningAndMinusDescAfter(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var worker *kernel.Task
	var during, described string
	a := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		worker = c.Current()
		delay.Msleep(c, 10)
	})
	b := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) {
		workqueue.SetWorkerDesc(c, fmt.Sprintf("loading firmware %s", strings.Repeat("x", 40)))
		described, _ = workqueue.WorkerComm(c.Current())
	})
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.ScheduleWork(c, a)
		delay.Msleep(c, 5)
		during, _ = workqueue.WorkerComm(worker)
		if _, ok := workqueue.WorkerComm(c.Current()); ok {
			t.Error("WorkerComm names a user task")
		}
		workqueue.FlushWork(c, a)
	})
	if during != "kworker/0:0+events" {
		t.Errorf("while running: %q, want kworker/0:0+events", during)
	}
	if after, ok := workqueue.WorkerComm(worker); !ok || after != "kworker/0:0-events" {
		t.Errorf("after: %q %v, want kworker/0:0-events", after, ok)
	}
	if idle, _ := workqueue.WorkerComm(taskNamed(t, k, "kworker/0:1")); idle != "kworker/0:1" {
		t.Errorf("a worker that ran nothing: %q, want kworker/0:1", idle)
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		workqueue.QueueWorkOn(c, 0, workqueue.SystemLong(c.Kernel()), b)
		workqueue.FlushWork(c, b)
	})
	if want := "kworker/0:0+loading firmware " + strings.Repeat("x", 14); described != want { // 31 bytes of desc
		t.Errorf("with set_worker_desc: %q, want %q", described, want)
	}
}

// TestWorkerCommNamesARescuerInFull: the rescuer's comm is cut at 15 bytes,
// but ps shows kworker/R-name whole (format_worker_id), bare while it
// rescues nothing.
func TestWorkerCommNamesARescuerInFull(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ := workqueue.CreateWorkqueue(c, "reclaim_long_name")
		defer workqueue.DestroyWorkqueue(c, wq)
		for _, tk := range c.Kernel().Tasks() {
			if strings.HasPrefix(tk.Comm(), "kworker/R-") {
				if name, ok := workqueue.WorkerComm(tk); !ok || name != "kworker/R-reclaim_long_name" {
					t.Errorf("rescuer %q named %q %v", tk.Comm(), name, ok)
				}
				return
			}
		}
		t.Error("no rescuer")
	})
}

func taskNamed(t *testing.T, k *kernel.Kernel, comm string) *kernel.Task {
	t.Helper()
	for _, tk := range k.Tasks() {
		if tk.Comm() == comm {
			return tk
		}
	}
	t.Fatalf("no task %s", comm)
	return nil
}

// TestWorkerCommAndDumpRaceWithWorkersAndARescuer: in real time, ps-style
// naming of every task and the dump run in a loop while items sleep on two
// CPUs, worker creation fails after the first workers (so the manager
// calls for the rescuer, which moves between pools), and set_worker_desc
// is called. Only -race judges it: it asserts no timing, only that every
// item ran.
func TestWorkerCommAndDumpRaceWithWorkersAndARescuer(t *testing.T) {
	k := ktest.Boot(t, kernel.Config{CPUs: 2, HZ: 1000, Quiet: true})
	var created atomic.Int32
	workqueue.FailWorkerCreation(k, func() bool { return created.Add(1) > 4 })
	const n = 200
	var ran atomic.Int32
	items := make([]workqueue.Work, n)
	for i := range items {
		workqueue.Init(&items[i], func(c *kernel.Ctx, w *workqueue.Work) {
			if i%3 == 0 {
				workqueue.SetWorkerDesc(c, fmt.Sprint("item ", i))
			}
			delay.Msleep(c, 1)
			ran.Add(1)
		})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, tk := range k.Tasks() {
				workqueue.WorkerComm(tk)
			}
			workqueue.DumpState(k)
		}
	}()
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, err := workqueue.AllocWorkqueue(c, "rescued", workqueue.MemReclaim, 0)
		if err != nil {
			t.Error(err)
			return
		}
		for i := range items {
			workqueue.QueueWorkOn(c, i%2, wq, &items[i])
		}
		workqueue.FlushWorkqueue(c, wq)
		workqueue.DestroyWorkqueue(c, wq)
	})
	close(stop)
	wg.Wait()
	workqueue.FailWorkerCreation(k, func() bool { return false })
	if ran.Load() != n {
		t.Fatalf("%d of %d items ran", ran.Load(), n)
	}
}

// TestDestroyReportShowsAnUnboundPoolAsTheKernelDoes: destroy_workqueue's
// busy-pwq report uses show_pwq's layout: an unbound pool of a one-CPU
// kernel is "cpus=0" (not "0-0") with POOL_DISASSOCIATED, and the pwq
// holds a reference for its item in flight.
func TestDestroyReportShowsAnUnboundPoolAsTheKernelDoes(t *testing.T) {
	k := ktest.Virtual(t, 1, 1000)
	var wq *workqueue.Workqueue
	w := workqueue.Declare(func(c *kernel.Ctx, w *workqueue.Work) { workqueue.DestroyWorkqueue(c, wq) })
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		wq, _ = workqueue.AllocWorkqueue(c, "loose", workqueue.Unbound, 0)
		workqueue.QueueWork(c, wq, w)
	})
	ktest.Run(t, k, 0)
	logHas(t, k, "destroy_workqueue: loose has the following busy pwq")
	logHas(t, k, "  pwq 4: cpus=0 node=0 flags=0x4 nice=0 active=1 refcnt=2")
}
