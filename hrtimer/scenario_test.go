package hrtimer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdefer/kdefer/hrtimer"
	"github.com/kdefer/kdefer/internal/datadriven"
	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
)

// hrtimer scenarios in testdata/*.txt, run with internal/datadriven in
// virtual time. Each file boots its own kernel (CLOCK_MONOTONIC starts at
// 0). Their prose says what kernel/time/hrtimer.c does; the expected
// outputs were checked against it.
//
// go test ./hrtimer -run TestScenarios -args -rewrite regenerates the
// expected outputs in place.
//
// Commands (D is a Go duration: 1ms, 2500us, 0s; times on CLOCK_MONOTONIC
// are durations since boot; MODE is REL, ABS, REL_SOFT, ABS_SOFT,
// REL_HARD, ABS_HARD, optionally with PINNED):
//
//	boot cpus=N                   boot a virtual kernel (once per file)
//	setup T [mode=MODE]           hrtimer_setup(T, callback, CLOCK_MONOTONIC, MODE)
//	start T at=D [delta=D] [mode=MODE] [cpu=N]
//	                              hrtimer_start_range_ns from CPU N's
//	                              context (default mode REL, cpu 0)
//	cancel T                      hrtimer_cancel: prints its return value
//	try-cancel T                  hrtimer_try_to_cancel: prints its return
//	forward T now=D interval=D    hrtimer_forward: prints the overruns
//	on-fire T ACTION...           what T's callback does, in order:
//	                              spin=D (busy-wait), forward=D
//	                              (hrtimer_forward_now), start=U at=D
//	                              (start timer U, mode REL unless
//	                              U's setup mode was SOFT), try-cancel=U,
//	                              show (active, queued, running), restart
//	                              (return HRTIMER_RESTART, else
//	                              HRTIMER_NORESTART), times=N (restart
//	                              only the first N-1 runs from now on)
//	run D                         run the kernel for D of virtual time
//	state T                       active, queued, running, expiries
//
// A firing prints
//
//	at TIME: T fires on cpuN in hardirq|softirq (preempt_count=0x...)
//
// and, after each callback action, what it did.

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/*.txt", func(t *testing.T, file string) {
		s := &hrScenario{t: t, timers: map[string]*scTimer{}}
		datadriven.RunFile(t, file, s.commands())
	})
}

type hrScenario struct {
	t      *testing.T
	k      *kernel.Kernel
	mu     sync.Mutex
	out    strings.Builder
	timers map[string]*scTimer
	order  []string
}

// scTimer is a scenario's timer with its callback script.
type scTimer struct {
	hrtimer.HRTimer
	name    string
	mode    hrtimer.Mode
	runs    int
	actions [][2]string
	restart bool
	times   int
}

func (s *hrScenario) printf(format string, args ...any) {
	s.mu.Lock()
	fmt.Fprintf(&s.out, format, args...)
	s.mu.Unlock()
}

func (s *hrScenario) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.out.String()
	s.out.Reset()
	return out
}

func dur(ns int64) string { return time.Duration(ns).String() }

func parseDur(v string) (int64, error) {
	d, err := time.ParseDuration(v)
	return int64(d), err
}

func parseMode(v string) (hrtimer.Mode, error) {
	var m hrtimer.Mode
	for _, part := range strings.Split(v, "_") {
		switch part {
		case "ABS":
		case "REL":
			m |= hrtimer.ModeRel
		case "PINNED":
			m |= hrtimer.ModePinned
		case "SOFT":
			m |= hrtimer.ModeSoft
		case "HARD":
			m |= hrtimer.ModeHard
		default:
			return 0, fmt.Errorf("bad mode %q", v)
		}
	}
	return m, nil
}

func (s *hrScenario) commands() *datadriven.Commands {
	var cmds datadriven.Commands
	cmds.Add("boot", "boot cpus=N", s.boot)
	cmds.Add("setup", "setup T [mode=MODE]", s.setup)
	cmds.Add("start", "start T at=D [delta=D] [mode=MODE] [cpu=N]", s.start)
	cmds.Add("cancel", "cancel T", s.cancel)
	cmds.Add("try-cancel", "try-cancel T", s.cancel)
	cmds.Add("forward", "forward T now=D interval=D", s.forward)
	cmds.Add("on-fire", "on-fire T ACTION...", s.onFire)
	cmds.Add("run", "run D", s.run)
	cmds.Add("state", "state T", s.state)
	return &cmds
}

func (s *hrScenario) timer(d *datadriven.Cmd) (*scTimer, error) {
	if s.k == nil {
		return nil, fmt.Errorf("no kernel: boot first")
	}
	name, err := d.Arg(0)
	if err != nil {
		return nil, err
	}
	tm, ok := s.timers[name]
	if !ok {
		return nil, fmt.Errorf("timer %s not set up", name)
	}
	return tm, nil
}

func (s *hrScenario) boot(d *datadriven.Cmd) (string, error) {
	if s.k != nil {
		return "", fmt.Errorf("booted already")
	}
	cpus, err := strconv.Atoi(d.KV["cpus"])
	if err != nil {
		return "", fmt.Errorf("cpus=: %v", err)
	}
	s.k = ktest.Boot(s.t, kernel.Config{Virtual: true, CPUs: cpus, Quiet: true})
	return fmt.Sprintf("cpus=%d hrtimer_resolution=%dns\n", s.k.NumCPUs(), hrtimer.Resolution), nil
}

func (s *hrScenario) setup(d *datadriven.Cmd) (string, error) {
	if s.k == nil {
		return "", fmt.Errorf("no kernel: boot first")
	}
	name, err := d.Arg(0)
	if err != nil {
		return "", err
	}
	mode := hrtimer.ModeRel
	if v, ok := d.KV["mode"]; ok {
		if mode, err = parseMode(v); err != nil {
			return "", err
		}
	}
	tm, ok := s.timers[name]
	if !ok {
		tm = &scTimer{name: name}
		s.timers[name] = tm
		s.order = append(s.order, name)
	}
	tm.mode = mode
	hrtimer.Setup(&tm.HRTimer, s.fire, hrtimer.ClockMonotonic, mode)
	return "", nil
}

// byTimer finds the scenario timer of t.
func (s *hrScenario) byTimer(t *hrtimer.HRTimer) *scTimer {
	for _, tm := range s.timers {
		if &tm.HRTimer == t {
			return tm
		}
	}
	return nil
}

// fire is every scenario timer's callback.
func (s *hrScenario) fire(c *kernel.Ctx, t *hrtimer.HRTimer) hrtimer.HRTimerRestart {
	tm := s.byTimer(t)
	tm.runs++
	where := "hardirq"
	if !c.InHardirq() && c.InServingSoftirq() {
		where = "softirq"
	}
	k := c.Kernel()
	s.printf("at %s: %s fires on cpu%d in %s (preempt_count=%#x)\n", dur(k.Now()), tm.name, c.CPU(), where, c.PreemptCount())
	for _, a := range tm.actions {
		switch a[0] {
		case "spin":
			ns, _ := parseDur(a[1])
			kernel.Spin(c, ns)
			s.printf("  %s: busy for %s, now %s\n", tm.name, dur(ns), dur(k.Now()))
		case "forward":
			iv, _ := parseDur(a[1])
			old := hrtimer.GetExpires(t)
			orun := hrtimer.ForwardNow(t, iv)
			s.printf("  %s: hrtimer_forward_now(%s) = %d, expires %s -> %s\n", tm.name, dur(iv), orun, dur(old), dur(hrtimer.GetExpires(t)))
		case "start":
			f := strings.Fields(a[1])
			u := s.timers[f[0]]
			at, _ := parseDur(f[1])
			mode := hrtimer.ModeRel | u.mode&hrtimer.ModeSoft
			hrtimer.Start(c, &u.HRTimer, at, mode)
			s.printf("  %s: hrtimer_start(%s, %s) -> expires %s on cpu%d\n", tm.name, u.name, dur(at), dur(hrtimer.GetExpires(&u.HRTimer)), c.CPU())
		case "show":
			s.printf("  %s: active=%t queued=%t running=%t\n", tm.name, hrtimer.Active(t), hrtimer.IsQueued(t), hrtimer.CallbackRunning(t))
		case "try-cancel":
			u := s.timers[a[1]]
			s.printf("  %s: hrtimer_try_to_cancel(%s) = %d\n", tm.name, u.name, hrtimer.TryToCancel(&u.HRTimer))
		}
	}
	if tm.restart && (tm.times == 0 || tm.runs < tm.times) {
		s.printf("  %s: returns HRTIMER_RESTART\n", tm.name)
		return hrtimer.Restart
	}
	return hrtimer.NoRestart
}

func (s *hrScenario) start(d *datadriven.Cmd) (string, error) {
	tm, err := s.timer(d)
	if err != nil {
		return "", err
	}
	v, err := d.Key("at")
	if err != nil {
		return "", err
	}
	at, err := parseDur(v)
	if err != nil {
		return "", err
	}
	var delta int64
	if v, ok := d.KV["delta"]; ok {
		if delta, err = parseDur(v); err != nil {
			return "", err
		}
	}
	mode := hrtimer.ModeRel | tm.mode&hrtimer.ModeSoft
	if v, ok := d.KV["mode"]; ok {
		if mode, err = parseMode(v); err != nil {
			return "", err
		}
	}
	cpu := 0
	if v, ok := d.KV["cpu"]; ok {
		if cpu, err = strconv.Atoi(v); err != nil {
			return "", err
		}
	}
	hrtimer.StartRangeNs(s.k.IdleCtx(cpu), &tm.HRTimer, at, delta, mode)
	return fmt.Sprintf("%s: softexpires %s, expires %s\n", tm.name,
		dur(hrtimer.GetSoftExpires(&tm.HRTimer)), dur(hrtimer.GetExpires(&tm.HRTimer))), nil
}

func (s *hrScenario) cancel(d *datadriven.Cmd) (string, error) {
	tm, err := s.timer(d)
	if err != nil {
		return "", err
	}
	if d.Name == "try-cancel" {
		return fmt.Sprintf("hrtimer_try_to_cancel(%s) = %d\n", tm.name, hrtimer.TryToCancel(&tm.HRTimer)), nil
	}
	return fmt.Sprintf("hrtimer_cancel(%s) = %d\n", tm.name, hrtimer.Cancel(s.k.IdleCtx(0), &tm.HRTimer)), nil
}

func (s *hrScenario) forward(d *datadriven.Cmd) (string, error) {
	tm, err := s.timer(d)
	if err != nil {
		return "", err
	}
	var now, iv int64
	for key, p := range map[string]*int64{"now": &now, "interval": &iv} {
		v, err := d.Key(key)
		if err != nil {
			return "", err
		}
		if *p, err = parseDur(v); err != nil {
			return "", err
		}
	}
	old := hrtimer.GetExpires(&tm.HRTimer)
	orun := hrtimer.Forward(&tm.HRTimer, now, iv)
	return fmt.Sprintf("hrtimer_forward(%s, %s, %s) = %d, expires %s -> %s, softexpires %s\n", tm.name, dur(now), dur(iv), orun,
		dur(old), dur(hrtimer.GetExpires(&tm.HRTimer)), dur(hrtimer.GetSoftExpires(&tm.HRTimer))), nil
}

func (s *hrScenario) onFire(d *datadriven.Cmd) (string, error) {
	tm, err := s.timer(d)
	if err != nil {
		return "", err
	}
	tm.actions, tm.restart, tm.times, tm.runs = nil, false, 0, 0
	for _, f := range d.Fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "spin", "forward":
			if _, err := parseDur(v); err != nil {
				return "", err
			}
			tm.actions = append(tm.actions, [2]string{k, v})
		case "start":
			if _, ok := s.timers[v]; !ok {
				return "", fmt.Errorf("timer %s not set up", v)
			}
			at, err := d.Key("at")
			if err != nil {
				return "", err
			}
			tm.actions = append(tm.actions, [2]string{k, v + " " + at})
		case "try-cancel":
			if _, ok := s.timers[v]; !ok {
				return "", fmt.Errorf("timer %s not set up", v)
			}
			tm.actions = append(tm.actions, [2]string{k, v})
		case "show":
			tm.actions = append(tm.actions, [2]string{k, ""})
		case "restart":
			tm.restart = true
		case "times":
			if tm.times, err = strconv.Atoi(v); err != nil {
				return "", err
			}
		case "at":
		default:
			return "", fmt.Errorf("unknown on-fire action %q", k)
		}
	}
	return "", nil
}

func (s *hrScenario) run(d *datadriven.Cmd) (string, error) {
	if s.k == nil {
		return "", fmt.Errorf("no kernel: boot first")
	}
	v, err := d.Arg(0)
	if err != nil {
		return "", err
	}
	ns, err := parseDur(v)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.k.Run(ctx, time.Duration(ns)); err != nil {
		return s.take(), err
	}
	s.printf("now %s\n", dur(s.k.Now()))
	return s.take(), nil
}

func (s *hrScenario) state(d *datadriven.Cmd) (string, error) {
	tm, err := s.timer(d)
	if err != nil {
		return "", err
	}
	t := &tm.HRTimer
	return fmt.Sprintf("%s: active=%t queued=%t running=%t softexpires=%s expires=%s remaining=%s\n", tm.name,
		hrtimer.Active(t), hrtimer.IsQueued(t), hrtimer.CallbackRunning(t),
		dur(hrtimer.GetSoftExpires(t)), dur(hrtimer.GetExpires(t)), dur(hrtimer.GetRemaining(t))), nil
}
