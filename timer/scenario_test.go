package timer

import (
	"flag"
	"fmt"
	"github.com/kdefer/kdefer/kernel"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/jiffies"
)

// Data-driven scenarios in testdata/*.txt, in the style of
// cockroachdb/datadriven (without the dependency). A file is a sequence of
// blocks:
//
//	# comment lines and blank lines are kept as they are
//	command args...
//	----
//	expected output (no blank lines; ends at a blank line or EOF)
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
//	next-expiry               the (lazily recalculated) next expiry
//	dump                      the wheel dump
//	on-fire T ACTION...       what T's callback does, in order; relative
//	                          expiries count from jiffies at fire time:
//	                          rearm=E, del=U, mod=U expires=E,
//	                          reduce=U expires=E, nested-run, show
//
// Every fired timer prints "fire T at J"; tick, advance-to, nohz-to and
// idle-to end with the resulting "jiffies=J clk=C".

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata scenarios")

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d scenario files, want at least 6", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenarioFile(t, file)
		})
	}
}

// scenarioBlock is one command of a scenario file.
type scenarioBlock struct {
	pre      []string // comment and blank lines before the command
	cmd      string
	line     int // 1-based line of cmd
	expected string
}

func parseScenario(text string) (blocks []scenarioBlock, trailer []string, err error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		b := scenarioBlock{pre: pre, cmd: l, line: i + 1}
		pre = nil
		i++
		if i >= len(lines) || lines[i] != "----" {
			return nil, nil, fmt.Errorf("line %d: command %q not followed by ----", b.line, l)
		}
		var out []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		// The blank line that ends the output (if any) belongs to the
		// block, not to the next block's preamble.
		if len(out) > 0 {
			b.expected = strings.Join(out, "\n") + "\n"
		}
		blocks = append(blocks, b)
	}
	return blocks, pre, nil
}

func runScenarioFile(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks, trailer, err := parseScenario(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	s := newScenario()
	var rewritten strings.Builder
	for _, b := range blocks {
		got, err := s.exec(b.cmd)
		if err != nil {
			t.Errorf("%s:%d: %s: %v", file, b.line, b.cmd, err)
		}
		if strings.Contains(got, "\n\n") {
			t.Errorf("%s:%d: output contains a blank line", file, b.line)
		}
		if !*rewrite && got != b.expected {
			t.Errorf("%s:%d: %s\ngot:\n%swant:\n%s", file, b.line, b.cmd, got, b.expected)
		}
		for _, l := range b.pre {
			rewritten.WriteString(l + "\n")
		}
		rewritten.WriteString(b.cmd + "\n----\n" + got + "\n")
	}
	for _, l := range trailer {
		rewritten.WriteString(l + "\n")
	}
	if *rewrite {
		out := strings.TrimSuffix(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
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
	out     *strings.Builder
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

// exec runs one command and returns its output.
func (s *scenario) exec(cmd string) (string, error) {
	var sb strings.Builder
	s.out = &sb
	fields := strings.Fields(cmd)
	var pos []string
	kv := map[string]string{}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	arg := func(i int) (string, error) {
		if i >= len(pos) {
			return "", fmt.Errorf("missing argument %d", i+1)
		}
		return pos[i], nil
	}
	expires := func(key string) (uint64, error) {
		v, ok := kv[key]
		if !ok {
			return 0, fmt.Errorf("missing %s=", key)
		}
		return parseExpiry(v, s.jiffies)
	}

	switch fields[0] {
	case "hz", "clk":
		a, err := arg(0)
		if err != nil {
			return "", err
		}
		n, err := strconv.ParseUint(a, 0, 64)
		if err != nil {
			return "", err
		}
		if s.anyPending() {
			return "", fmt.Errorf("%s with timers pending", fields[0])
		}
		if fields[0] == "hz" {
			s.hz = jiffies.HZ(n)
			if err := s.hz.Valid(); err != nil {
				return "", err
			}
		} else {
			s.jiffies = n
		}
		s.w.reset(s.hz, s.jiffies)
		fmt.Fprintf(&sb, "hz=%d depth=%d cutoff=%d max=%d jiffies=%d clk=%d\n",
			s.hz, s.w.depth, s.w.cutoff, s.w.timeoutMax, s.jiffies, s.w.clk)

	case "add", "mod", "mod-pending", "reduce":
		name, err := arg(0)
		if err != nil {
			return "", err
		}
		e, err := expires("expires")
		if err != nil {
			return "", err
		}
		t := s.timer(name)
		if fields[0] == "add" {
			if t.pending() {
				fmt.Fprintf(&sb, "add %s: already pending (WARN_ON_ONCE, ignored)\n", name)
				break
			}
			t.expires = e
			s.w.mod(t, t.expires, false, false, s.jiffies)
			fmt.Fprintln(&sb, s.placement(name, t))
			break
		}
		ret := s.w.mod(t, e, fields[0] == "mod-pending", fields[0] == "reduce", s.jiffies)
		fmt.Fprintf(&sb, "ret=%d %s\n", ret, s.placement(name, t))

	case "del":
		name, err := arg(0)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&sb, "ret=%d\n", s.w.detach(s.timer(name), true))

	case "tick":
		a, err := arg(0)
		if err != nil {
			return "", err
		}
		n, err := strconv.ParseUint(a, 0, 64)
		if err != nil {
			return "", err
		}
		for i := uint64(0); i < n; i++ {
			s.runAt(s.jiffies + 1)
		}
		s.clockLine()

	case "advance-to", "nohz-to", "idle-to":
		a, err := arg(0)
		if err != nil {
			return "", err
		}
		target, err := parseExpiry(a, s.jiffies)
		if err != nil {
			return "", err
		}
		switch fields[0] {
		case "advance-to":
			s.runAt(target)
		case "idle-to":
			s.jiffies = target
		case "nohz-to":
			for i := 0; ; i++ {
				if i > 100000 {
					return sb.String(), fmt.Errorf("nohz-to: no progress")
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

	case "forward":
		s.w.forward(s.jiffies)
		fmt.Fprintf(&sb, "clk=%d\n", s.w.clk)

	case "cpu-idle":
		next, pending := s.w.idle(s.jiffies)
		fmt.Fprintf(&sb, "next_expiry=%d timers_pending=%t clk=%d\n", next, pending, s.w.clk)

	case "next-expiry":
		next := s.w.nextExpiryJiffies()
		fmt.Fprintf(&sb, "next_expiry=%d timers_pending=%t\n", next, s.w.timersPending)

	case "dump":
		s.w.dump(&sb, s.label)

	case "on-fire":
		name, err := arg(0)
		if err != nil {
			return "", err
		}
		s.timer(name)
		var acts [][2]string
		for _, f := range fields[2:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "rearm":
				acts = append(acts, [2]string{"rearm", name + " " + v})
			case "mod", "reduce":
				acts = append(acts, [2]string{k, v + " " + kv["expires"]})
			case "del":
				acts = append(acts, [2]string{k, v})
			case "nested-run", "show":
				acts = append(acts, [2]string{k, ""})
			case "expires":
			default:
				return "", fmt.Errorf("unknown on-fire action %q", k)
			}
		}
		s.onFire[name] = acts

	default:
		return "", fmt.Errorf("unknown command %q", fields[0])
	}
	if err := s.w.verify(); err != nil {
		return sb.String(), fmt.Errorf("wheel invariant: %v", err)
	}
	return sb.String(), nil
}
