package timer

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/datadriven"
	"github.com/kdefer/kdefer/jiffies"
	"github.com/kdefer/kdefer/kernel"
)

// Data-driven scenarios in testdata/*.txt, run with internal/datadriven
// (see its package doc for the file format). Each file starts with a fresh
// wheel at HZ=1000, jiffies 0.
//
// go test ./timer -run TestScenarios -args -rewrite regenerates the
// expected outputs in place.
//
// Commands (E is an expiry: +N or -N relative to jiffies, or absolute N):
//
//	hz N                      re-create the wheel for HZ=N at the current jiffies
//	clk N                     set jiffies to N and re-create the wheel with clk N
//	add T expires=E           add_timer (T must not be pending)
//	mod T expires=E           mod_timer; prints the return value and placement
//	mod-pending T expires=E   mod_timer_pending
//	reduce T expires=E        timer_reduce
//	del T                     timer_delete; prints 0/1
//	tick N                    N ticks: jiffies++, run the timer softirq each time
//	advance-to E              set jiffies to E, then run the softirq once (late)
//	nohz-to E                 tickless idle until E: wake only at each next expiry
//	idle-to E                 set jiffies to E without running the softirq
//	forward                   forward_timer_base at the current jiffies
//	cpu-idle                  the idle path's next-expiry query (may forward clk)
//	next-expiry               the (lazily recalculated) next expiry
//	dump                      the wheel dump
//	on-fire T ACTION...       what T's callback does, in order; relative
//	                          expiries count from jiffies at fire time:
//	                          rearm=E, del=U, mod=U expires=E,
//	                          reduce=U expires=E, nested-run, show
//
// Every fired timer prints "fire T at J"; tick, advance-to, nohz-to and
// idle-to end with the resulting "jiffies=J clk=C". After every command the
// wheel's invariants are verified.

func TestScenarios(t *testing.T) {
	n := datadriven.Walk(t, filepath.Join("testdata", "*.txt"), func(t *testing.T, file string) {
		datadriven.RunFile(t, file, newScenario().commands())
	})
	if n < 6 {
		t.Fatalf("found %d scenario files, want at least 6", n)
	}
}

// scenario is the harness state: one wheel, named timers, jiffies.
type scenario struct {
	hz      jiffies.HZ
	jiffies uint64
	w       wheel
	timers  map[string]*Timer
	names   map[*Timer]string
	onFire  map[string][][2]string // per timer: (action, argument) pairs
	out     *strings.Builder       // the running command's output
}

func newScenario() *scenario {
	s := &scenario{hz: 1000, timers: map[string]*Timer{}, names: map[*Timer]string{}, onFire: map[string][][2]string{}}
	s.w.reset(s.hz, 0)
	return s
}

func (s *scenario) timer(name string) *Timer {
	if t, ok := s.timers[name]; ok {
		return t
	}
	t := &Timer{function: s.fire}
	s.timers[name] = t
	s.names[t] = name
	return t
}

func (s *scenario) label(t *Timer) string { return s.names[t] }

// expiry parses E relative to now.
func parseExpiry(v string, now uint64) (uint64, error) {
	switch {
	case strings.HasPrefix(v, "+"):
		n, err := strconv.ParseUint(v[1:], 0, 64)
		return now + n, err
	case strings.HasPrefix(v, "-"):
		n, err := strconv.ParseUint(v[1:], 0, 64)
		return now - n, err
	default:
		return strconv.ParseUint(v, 0, 64)
	}
}

func (s *scenario) placement(name string, t *Timer) string {
	if !t.pending() {
		return name + ": not pending"
	}
	idx := t.wheelIdx()
	return fmt.Sprintf("%s: level %d bucket %d (idx %d) expires=%d fires=%d",
		name, idx/lvlSize, idx%lvlSize, idx, t.expires, s.w.bucketExpiry(idx))
}

func (s *scenario) anyPending() bool {
	for _, t := range s.timers {
		if t.pending() {
			return true
		}
	}
	return false
}

func (s *scenario) clockLine() {
	fmt.Fprintf(s.out, "jiffies=%d clk=%d\n", s.jiffies, s.w.clk)
}

func (s *scenario) runAt(j uint64) {
	s.jiffies = j
	s.w.run(j, func(t *Timer) { t.function(nil, t) })
}

// fire is every scenario timer's callback.
func (s *scenario) fire(_ *kernel.Ctx, t *Timer) {
	name := s.names[t]
	fmt.Fprintf(s.out, "fire %s at %d\n", name, s.jiffies)
	for _, a := range s.onFire[name] {
		act, arg := a[0], a[1]
		switch act {
		case "show":
			running := "<nil>"
			if s.w.runningTimer != nil {
				running = s.names[s.w.runningTimer]
			}
			fmt.Fprintf(s.out, "  %s: pending=%t running=%s clk=%d\n", name, t.pending(), running, s.w.clk)
		case "nested-run":
			s.w.run(s.jiffies+1000, func(t *Timer) { fmt.Fprintf(s.out, "  nested run expired %s!\n", s.names[t]) })
			fmt.Fprintf(s.out, "  %s: nested run did nothing\n", name)
		case "del":
			ret := s.w.detach(s.timer(arg), true)
			fmt.Fprintf(s.out, "  %s: del %s ret=%d\n", name, arg, ret)
		default: // rearm, mod, reduce: arg is "target expires"
			f := strings.Fields(arg)
			target := s.timer(f[0])
			e, _ := parseExpiry(f[1], s.jiffies)
			ret := s.w.mod(target, e, false, act == "reduce", s.jiffies)
			fmt.Fprintf(s.out, "  %s: %s %s expires=%d ret=%d idx=%d\n", name, act, f[0], e, ret, target.wheelIdx())
		}
	}
}

// commands returns the scenario's command handlers. Each runs with s.out
// set to its output and verifies the wheel afterwards.
func (s *scenario) commands() *datadriven.Commands {
	var cmds datadriven.Commands
	add := func(name, usage string, h func(d *datadriven.Cmd) error) {
		cmds.Add(name, usage, func(d *datadriven.Cmd) (string, error) {
			var sb strings.Builder
			s.out = &sb
			if err := h(d); err != nil {
				return sb.String(), err
			}
			if err := s.w.verify(); err != nil {
				return sb.String(), fmt.Errorf("wheel invariant: %v", err)
			}
			return sb.String(), nil
		})
	}
	add("hz", "hz N", s.reset)
	add("clk", "clk N", s.reset)
	for _, name := range []string{"add", "mod", "mod-pending", "reduce"} {
		add(name, name+" T expires=E", s.arm)
	}
	add("del", "del T", func(d *datadriven.Cmd) error {
		name, err := d.Arg(0)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "ret=%d\n", s.w.detach(s.timer(name), true))
		return nil
	})
	add("tick", "tick N", func(d *datadriven.Cmd) error {
		n, err := uintArg(d, 0)
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			s.runAt(s.jiffies + 1)
		}
		s.clockLine()
		return nil
	})
	add("advance-to", "advance-to E", s.moveTo)
	add("nohz-to", "nohz-to E", s.moveTo)
	add("idle-to", "idle-to E", s.moveTo)
	add("forward", "forward", func(*datadriven.Cmd) error {
		s.w.forward(s.jiffies)
		fmt.Fprintf(s.out, "clk=%d\n", s.w.clk)
		return nil
	})
	add("cpu-idle", "cpu-idle", func(*datadriven.Cmd) error {
		next, pending := s.w.idle(s.jiffies)
		fmt.Fprintf(s.out, "next_expiry=%d timers_pending=%t clk=%d\n", next, pending, s.w.clk)
		return nil
	})
	add("next-expiry", "next-expiry", func(*datadriven.Cmd) error {
		next := s.w.nextExpiryJiffies()
		fmt.Fprintf(s.out, "next_expiry=%d timers_pending=%t\n", next, s.w.timersPending)
		return nil
	})
	add("dump", "dump", func(*datadriven.Cmd) error {
		s.w.dump(s.out, s.label)
		return nil
	})
	add("on-fire", "on-fire T ACTION...", s.setOnFire)
	return &cmds
}

func uintArg(d *datadriven.Cmd, i int) (uint64, error) {
	a, err := d.Arg(i)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(a, 0, 64)
}

// reset is hz N and clk N: a new wheel (no timer may be pending).
func (s *scenario) reset(d *datadriven.Cmd) error {
	n, err := uintArg(d, 0)
	if err != nil {
		return err
	}
	if s.anyPending() {
		return fmt.Errorf("%s with timers pending", d.Name)
	}
	if d.Name == "hz" {
		s.hz = jiffies.HZ(n)
		if err := s.hz.Valid(); err != nil {
			return err
		}
	} else {
		s.jiffies = n
	}
	s.w.reset(s.hz, s.jiffies)
	fmt.Fprintf(s.out, "hz=%d depth=%d cutoff=%d max=%d jiffies=%d clk=%d\n",
		s.hz, s.w.depth, s.w.cutoff, s.w.timeoutMax, s.jiffies, s.w.clk)
	return nil
}

// arm is add, mod, mod-pending and reduce.
func (s *scenario) arm(d *datadriven.Cmd) error {
	name, err := d.Arg(0)
	if err != nil {
		return err
	}
	v, err := d.Key("expires")
	if err != nil {
		return err
	}
	e, err := parseExpiry(v, s.jiffies)
	if err != nil {
		return err
	}
	t := s.timer(name)
	if d.Name == "add" {
		if t.pending() {
			fmt.Fprintf(s.out, "add %s: already pending (WARN_ON_ONCE, ignored)\n", name)
			return nil
		}
		t.expires = e
		s.w.mod(t, t.expires, false, false, s.jiffies)
		fmt.Fprintln(s.out, s.placement(name, t))
		return nil
	}
	ret := s.w.mod(t, e, d.Name == "mod-pending", d.Name == "reduce", s.jiffies)
	fmt.Fprintf(s.out, "ret=%d %s\n", ret, s.placement(name, t))
	return nil
}

// moveTo is advance-to, nohz-to and idle-to.
func (s *scenario) moveTo(d *datadriven.Cmd) error {
	a, err := d.Arg(0)
	if err != nil {
		return err
	}
	target, err := parseExpiry(a, s.jiffies)
	if err != nil {
		return err
	}
	switch d.Name {
	case "advance-to":
		s.runAt(target)
	case "idle-to":
		s.jiffies = target
	case "nohz-to":
		for i := 0; ; i++ {
			if i > 100000 {
				return fmt.Errorf("nohz-to: no progress")
			}
			next := s.w.nextRunJiffies()
			if !jiffies.TimeBefore(next, target) {
				break
			}
			if jiffies.TimeBefore(next, s.jiffies) {
				next = s.jiffies // overdue: run now
			}
			s.runAt(next)
		}
		s.runAt(target)
	}
	s.clockLine()
	return nil
}

// setOnFire is on-fire T ACTION...
func (s *scenario) setOnFire(d *datadriven.Cmd) error {
	name, err := d.Arg(0)
	if err != nil {
		return err
	}
	s.timer(name)
	var acts [][2]string
	for _, f := range d.Fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "rearm":
			acts = append(acts, [2]string{"rearm", name + " " + v})
		case "mod", "reduce":
			acts = append(acts, [2]string{k, v + " " + d.KV["expires"]})
		case "del":
			acts = append(acts, [2]string{k, v})
		case "nested-run", "show":
			acts = append(acts, [2]string{k, ""})
		case "expires":
		default:
			return fmt.Errorf("unknown on-fire action %q", k)
		}
	}
	s.onFire[name] = acts
	return nil
}
