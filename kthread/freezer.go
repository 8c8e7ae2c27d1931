package kthread

import (
	"sort"

	"github.com/kdefer/kdefer/delay"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/timekeeping"
)

// FreezeTimeoutMsecs is freeze_timeout_msecs (/sys/power/pm_freeze_timeout):
// how long FreezeKernelThreads waits for the freezable threads, 20 s.
const FreezeTimeoutMsecs = 20000

// SetFreezable is set_freezable(): the calling kernel thread becomes
// freezable (it clears PF_NOFREEZE, which kthreadd gives every kernel
// thread). It does nothing for a task this package did not create.
func SetFreezable(c *kernel.Ctx) {
	if kt := lookup(c.Current()); kt != nil {
		kt.freezable.Store(true)
	}
}

// Freezing is freezing(current): the freezer is freezing kernel threads
// (FreezeKernelThreads) and the calling thread is freezable. The thread
// should call TryToFreeze.
func Freezing(c *kernel.Ctx) bool {
	kt := lookup(c.Current())
	return kt != nil && freezing(kt)
}

func freezing(kt *kthread) bool { return kt.sys.freezing.Load() && kt.freezable.Load() }

// frozen is frozen(p): p sits in the refrigerator.
func frozen(t *kernel.Task) bool { return t.State()&kernel.TaskFrozen != 0 }

// TryToFreeze is try_to_freeze(): if the calling thread should freeze, it
// enters the refrigerator — it sleeps in TASK_FROZEN (ps shows D) until
// ThawKernelThreads — and returns true once thawed; otherwise it returns
// false at once. Like the kernel's it starts with might_sleep(), and in
// atomic context it returns false after the report.
func TryToFreeze(c *kernel.Ctx) bool {
	if !kernel.MightSleep(c) {
		return false
	}
	kt := lookup(c.Current())
	if kt == nil || !freezing(kt) {
		return false
	}
	return refrigerator(c, kt, false)
}

// FreezableShouldStop is kthread_freezable_should_stop(&was_frozen): it
// freezes the calling thread if it should freeze — leaving the
// refrigerator as soon as Stop was called, so that Stop and the freezer
// cannot deadlock — and returns ShouldStop and whether the thread was
// frozen.
func FreezableShouldStop(c *kernel.Ctx) (stop, wasFrozen bool) {
	if kernel.MightSleep(c) {
		if kt := lookup(c.Current()); kt != nil && freezing(kt) {
			wasFrozen = refrigerator(c, kt, true)
		}
	}
	return ShouldStop(c), wasFrozen
}

// refrigerator is __refrigerator(check_kthr_stop), without its pr_debug
// lines.
func refrigerator(c *kernel.Ctx, kt *kthread, checkStop bool) bool {
	wasFrozen := false
	for {
		kernel.SetCurrentState(c, kernel.TaskFrozen)
		freeze := freezing(kt) && !(checkStop && ShouldStop(c))
		if !freeze || c.Dying() {
			break
		}
		wasFrozen = true
		kernel.Schedule(c)
	}
	kernel.SetCurrentState(c, kernel.TaskRunning)
	return wasFrozen
}

// threads returns the kernel's live kernel threads of this package, by pid.
func (s *system) snapshot() []*kernel.Task {
	s.mu.Lock()
	out := make([]*kernel.Task, 0, len(s.threads))
	for t := range s.threads {
		out = append(out, t)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].PID() < out[j].PID() })
	return out
}

// FreezeKernelThreads is freeze_kernel_threads(): it makes every freezable
// kernel thread of c's kernel enter the refrigerator. Each one that is not
// frozen yet is woken (wake_up_state(p, TASK_NORMAL)) so that it reaches
// its TryToFreeze; the caller checks again after sleeping 1 ms, then 2, 4
// and 8 ms at most (usleep_range), until all are frozen or
// FreezeTimeoutMsecs have passed. It logs "Freezing remaining freezable
// tasks", then "… completed (elapsed S.MMM seconds)" and returns 0; or, on
// timeout, the kernel's error line and a "task:" line for each thread that
// refused, thaws the frozen ones (ThawKernelThreads) and returns -EBUSY.
// It sleeps: call it from process context.
func FreezeKernelThreads(c *kernel.Ctx) int {
	s := sysOf(c.Kernel())
	s.freezing.Store(true) // pm_nosig_freezing
	ret := s.tryToFreezeTasks(c)
	if ret != 0 {
		ThawKernelThreads(c)
	}
	return ret
}

// tryToFreezeTasks is try_to_freeze_tasks(false) of kernel/power/process.c.
func (s *system) tryToFreezeTasks(c *kernel.Ctx) int {
	const what = "remaining freezable tasks"
	k := s.k
	kernel.Printk(c, printk.LevelInfo, "Freezing %s\n", what)
	start := timekeeping.KtimeGetBoottimeNs(c)
	end := c.Jiffies() + k.HZ().MsecsToJiffies(FreezeTimeoutMsecs)
	sleepUs := uint64(1000)
	me := c.Current()
	var todo int
	for {
		todo = 0
		for _, t := range s.snapshot() {
			if t != me && s.freezeTask(t) {
				todo++
			}
		}
		if todo == 0 || jiffies.TimeAfter(c.Jiffies(), end) || c.Dying() {
			break
		}
		delay.UsleepRange(c, sleepUs/2, sleepUs)
		if sleepUs < 8000 {
			sleepUs *= 2
		}
	}
	ms := (timekeeping.KtimeGetBoottimeNs(c) - start) / 1000000
	if todo == 0 {
		kernel.Printk(c, printk.LevelInfo, "Freezing %s completed (elapsed %d.%03d seconds)\n", what, ms/1000, ms%1000)
		return 0
	}
	kernel.Printk(c, printk.LevelErr, "Freezing %s failed after %d.%03d seconds (%d tasks refusing to freeze, wq_busy=0):\n",
		what, ms/1000, ms%1000, todo)
	for _, t := range s.snapshot() {
		if kt := lookup(t); t != me && kt != nil && freezing(kt) && !frozen(t) {
			showTask(c, t)
		}
	}
	return -int(kernel.EBUSY)
}

// freezeTask is freeze_task(p): it reports false for a thread that need
// not or cannot freeze, or is frozen; otherwise it wakes the thread so that
// it freezes, and reports true.
func (s *system) freezeTask(t *kernel.Task) bool {
	kt := lookup(t)
	if kt == nil || !freezing(kt) || frozen(t) || t.HasExited() {
		return false
	}
	s.k.WakeUpState(t, kernel.TaskNormal)
	return true
}

// showTask is sched_show_task(p)'s first line (kdefer shows no stack of
// another task).
func showTask(c *kernel.Ctx, t *kernel.Task) {
	ppid := 0
	if p := t.Parent(); p != nil {
		ppid = p.PID()
	}
	kernel.Printk(c, printk.LevelInfo, "task:%-15.15s state:%c stack:0     pid:%-5d tgid:%-5d ppid:%-6d flags:0x00000000\n",
		t.Comm(), t.State().Letter(), t.PID(), t.PID(), ppid)
}

// ThawKernelThreads is thaw_kernel_threads(): the freezer stops freezing
// and every kernel thread in the refrigerator is woken
// (wake_up_state(p, TASK_FROZEN)) and returns from TryToFreeze. It logs
// "Restarting kernel threads ... done.".
func ThawKernelThreads(c *kernel.Ctx) {
	s := sysOf(c.Kernel())
	s.freezing.Store(false)
	kernel.Printk(c, printk.LevelInfo, "Restarting kernel threads ... ")
	for _, t := range s.snapshot() {
		s.k.WakeUpState(t, kernel.TaskFrozen) // __thaw_task
	}
	if c.InTask() && c.PreemptCount() == 0 {
		kernel.Schedule(c) // let them run
	}
	kernel.PrCont(c, "done.\n")
}
