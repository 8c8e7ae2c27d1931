package workqueue

import "github.com/kdefer/kdefer/kernel"

// FailWorkerCreation makes k's worker creation fail while fail returns
// true (tests of the rescuer).
func FailWorkerCreation(k *kernel.Kernel, fail func() bool) {
	sysOf(k).failCreate = func(*workerPool) bool { return fail() }
}

// PoolWorkers returns the number of workers and of idle workers of cpu's
// pool (highpri selects the high-priority one; cpu -1 the unbound pool).
func PoolWorkers(k *kernel.Kernel, cpu int, highpri bool) (workers, idle int) {
	s := sysOf(k)
	p := s.unboundPool(highpri)
	if cpu >= 0 {
		p = s.cpuPool(cpu, false, highpri)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nrWorkers, p.nrIdle
}

// QueueHalfway does the first half of queue_work's lock-free path for w on
// wq's pwq of cpu (queueFast's publish): w is PENDING and its work->data
// names the pool, but it is on no list yet. The function returned does
// the second half (push). w must be idle.
func QueueHalfway(c *kernel.Ctx, wq *Workqueue, cpu int, w *Work) (finish func()) {
	if w.data.Or(dataPending)&dataPending != 0 {
		panic("QueueHalfway: item already pending")
	}
	p := wq.cpuPwq[cpu]
	pool := p.pool
	if !pool.online.Load() {
		pool.bringUp(c)
	}
	pool.publish(p, w)
	return func() { pool.push(c, w) }
}

// TryToGrabPending is try_to_grab_pending(): 1 or 0 with w's PENDING now
// owned by the caller, -1 (-EAGAIN) with nothing changed.
func TryToGrabPending(c *kernel.Ctx, w *Work) int { return tryToGrabPending(c, w, false) }
