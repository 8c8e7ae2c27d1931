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
