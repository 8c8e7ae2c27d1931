package kernel

import (
	"github.com/kdefer/kdefer/printk"
)

// LoopsPerJiffy returns loops_per_jiffy as calibrated at boot.
func (k *Kernel) LoopsPerJiffy() uint64 { return k.lpj }

// calibrateDelay is calibrate_delay() (init/calibrate.c). kdefer's delay
// loop is a spin on the monotonic clock, so one "loop" is defined as one
// nanosecond of spinning and lpj = TICK_NSEC: the BogoMIPS figure then reads
// 2000 whatever the HZ. With Config.LPJ the preset is used and reported as
// the kernel reports an lpj= boot parameter.
func (k *Kernel) calibrateDelay() {
	c := k.cpus[0].driverCtx()
	if k.cfg.LPJ != 0 {
		k.lpj = k.cfg.LPJ
		if !k.cfg.Quiet {
			Printk(c, printk.LevelInfo, "Calibrating delay loop (skipped) preset value.. ")
		}
	} else {
		k.lpj = uint64(k.tickNs)
		if !k.cfg.Quiet {
			Printk(c, printk.LevelInfo, "Calibrating delay using timer specific routine.. ")
		}
	}
	if !k.cfg.Quiet {
		hz := uint64(k.hz)
		PrCont(c, "%d.%02d BogoMIPS (lpj=%d)\n", k.lpj/(500000/hz), (k.lpj/(5000/hz))%100, k.lpj)
	}
}
