package module_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/printk"
)

func TestInsmodSetsParametersOfEveryType(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		err := ld.Insmod(c, "probe", "i=-0x10", "u=010", "l=-9223372036854775808", "ul=18446744073709551615",
			"s=-32768", "us=65535", "b=255", "bo", "inv=1", `str="a b  c"`, "make-it-fail=1")
		if err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	m := rec.last
	if m == nil {
		t.Fatal("Init was not called")
	}
	if m.i != -16 || m.u != 8 || m.l != -9223372036854775808 || m.ul != 18446744073709551615 ||
		m.s != -32768 || m.us != 65535 || m.b != 255 || !m.bo || m.inv || m.str != "a b  c" || m.rw != 1 {
		t.Errorf("params = %+v", *m)
	}
	if got := ld.Lsmod(); len(got) != 1 || got[0] != "probe" {
		t.Errorf("Lsmod = %v, want [probe]", got)
	}
	if mod := ld.Find("probe"); mod == nil || mod.State() != module.StateLive || mod.Refcount() != 0 {
		t.Errorf("Find(probe) = %v", mod)
	}
	for name, want := range map[string]string{"i": "-16", "bo": "Y", "inv": "Y", "str": "a b  c", "b": "255"} {
		if got, err := ld.ParamGet("probe", name); err != nil || got != want {
			t.Errorf("ParamGet(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestInsmodKeepsDefaultsWithoutArguments(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	if m := rec.last; m == nil || m.i != -1 || m.u != 1 || m.str != "hello" || m.bo || m.ro != 7 {
		t.Errorf("defaults not kept: %+v", m)
	}
}

func TestInsmodWarnsAboutUnknownParameterAndLoads(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe", "colour=blue", "i=5", "async_probe", "dyndbg=+p"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	recs := logRecords(k, seq)
	if len(recs) != 2 || recs[0].Text != ootLine("probe") ||
		recs[1].Text != "probe: unknown parameter 'colour' ignored" || recs[1].Level != printk.LevelWarning {
		t.Errorf("log = %+v, want the taint line, then one KERN_WARNING \"probe: unknown parameter 'colour' ignored\"", recs)
	}
	if inits, _ := rec.counts(); inits != 1 || rec.last.i != 5 {
		t.Errorf("inits = %d, i = %d; want 1, 5", inits, rec.last.i)
	}
}

func TestInsmodRejectsValuesThatDoNotParse(t *testing.T) {
	tests := []struct {
		arg     string
		logLine string
		errno   kernel.Errno
		msg     string
	}{
		{"i=abc", "probe: `abc' invalid for parameter `i'", kernel.EINVAL, "Invalid parameters"},
		{"i=12x", "probe: `12x' invalid for parameter `i'", kernel.EINVAL, "Invalid parameters"},
		{"i", "probe: `' invalid for parameter `i'", kernel.EINVAL, "Invalid parameters"},
		{"i=", "probe: `' invalid for parameter `i'", kernel.EINVAL, "Invalid parameters"},
		{"i=2147483648", "probe: `2147483648' invalid for parameter `i'", kernel.ERANGE, "Numerical result out of range"},
		{"u=-1", "probe: `-1' invalid for parameter `u'", kernel.EINVAL, "Invalid parameters"},
		{"u=4294967296", "probe: `4294967296' invalid for parameter `u'", kernel.ERANGE, "Numerical result out of range"},
		{"b=256", "probe: `256' invalid for parameter `b'", kernel.ERANGE, "Numerical result out of range"},
		{"s=08", "probe: `08' invalid for parameter `s'", kernel.EINVAL, "Invalid parameters"},
		{"bo=maybe", "probe: `maybe' invalid for parameter `bo'", kernel.EINVAL, "Invalid parameters"},
		{"bo=", "probe: `' invalid for parameter `bo'", kernel.EINVAL, "Invalid parameters"},
		{"inv=x", "probe: `x' invalid for parameter `inv'", kernel.EINVAL, "Invalid parameters"},
		{"inv", "probe: `' invalid for parameter `inv'", kernel.EINVAL, "Invalid parameters"}, // no NOARG flag
		{"str=" + strings.Repeat("x", 1025), "probe: `" + strings.Repeat("x", 1025) + "' too large for parameter `str'", kernel.ENOSPC, "No space left on device"},
	}
	for _, tc := range tests {
		t.Run(tc.arg[:min(len(tc.arg), 16)], func(t *testing.T) {
			k := boot(t)
			defer shutdown(t, k)
			rec := &recorder{}
			ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
			seq := k.Log().NextSeq()
			var err error
			inTask(t, k, "insmod", func(c *kernel.Ctx) { err = ld.Insmod(c, "probe", tc.arg) })
			wantErrno(t, "Insmod", err, tc.errno)
			if want := "insmod: ERROR: could not insert module probe: " + tc.msg; err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
			var me *module.Error
			if !errors.As(err, &me) || me.Op != "insmod" || me.Module != "probe" {
				t.Errorf("err = %#v, want a *module.Error", err)
			}
			recs := logRecords(k, seq)
			found := false
			for _, r := range recs {
				if r.Text == tc.logLine && r.Level == printk.LevelErr {
					found = true
				}
			}
			if !found {
				t.Errorf("log = %+v, want KERN_ERR %q", recs, tc.logLine)
			}
			if inits, _ := rec.counts(); inits != 0 {
				t.Errorf("Init called %d times", inits)
			}
			if got := ld.Lsmod(); len(got) != 0 {
				t.Errorf("Lsmod = %v, want none", got)
			}
		})
	}
}

func TestInsmodStringTooLongAlsoSaysSo(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	ld := newLoader(t, k, probeInfo(&recorder{}, probeOpts{}))
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) { _ = ld.Insmod(c, "probe", "str="+strings.Repeat("y", 2000)) })
	if lines := logText(k, seq); len(lines) != 3 || lines[0] != ootLine("probe") || lines[1] != "str: string parameter too long" {
		t.Errorf("log = %q", lines)
	}
}

func TestInsmodReportsEveryBadValueThenFails(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	seq := k.Log().NextSeq()
	var err error
	inTask(t, k, "insmod", func(c *kernel.Ctx) { err = ld.Insmod(c, "probe", "i=x", "nope=1", "u=9999999999") })
	want := []string{
		ootLine("probe"),
		"probe: `x' invalid for parameter `i'",
		"probe: unknown parameter 'nope' ignored",
		"probe: `9999999999' invalid for parameter `u'",
	}
	if got := logText(k, seq); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log = %q, want %q", got, want)
	}
	wantErrno(t, "Insmod", err, kernel.ERANGE) // the last failure's errno
}

func TestInsmodQuotingFollowsNextArg(t *testing.T) {
	tests := []struct {
		args    []string
		str     string
		unknown string
	}{
		{[]string{`str="a b"`}, "a b", ""},
		{[]string{`"str=a b"`}, "a b", ""},
		{[]string{"str=a zz"}, "a", "zz"}, // insmod joins argv with spaces
		{[]string{`str=""`}, "", ""},
		{[]string{`str="`}, "", ""},
		{[]string{"str=x=y"}, "x=y", ""},
		{[]string{"str=z", "--", "i=3"}, "z", ""},
	}
	for _, tc := range tests {
		k := boot(t)
		rec := &recorder{}
		ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
		seq := k.Log().NextSeq()
		inTask(t, k, "insmod", func(c *kernel.Ctx) {
			if err := ld.Insmod(c, "probe", tc.args...); err != nil {
				t.Errorf("Insmod(%q): %v", tc.args, err)
			}
		})
		if rec.last == nil || rec.last.str != tc.str {
			t.Errorf("Insmod(%q): str = %+v, want %q", tc.args, rec.last, tc.str)
		}
		lines := logText(k, seq)
		if tc.unknown != "" && !hasLine(lines, "probe: unknown parameter '"+tc.unknown+"' ignored") {
			t.Errorf("Insmod(%q): log = %q, want unknown %q", tc.args, lines, tc.unknown)
		}
		if tc.args[len(tc.args)-1] == "i=3" {
			if rec.last.i != -1 || !hasLine(lines, "probe: parameters 'i=3' after `--' ignored") {
				t.Errorf("Insmod(%q): i = %d, log = %q", tc.args, rec.last.i, lines)
			}
		}
		shutdown(t, k)
	}
}

func TestInsmodTwiceIsEEXIST(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("first Insmod: %v", err)
		}
		err := ld.Insmod(c, "probe", "i=x")
		wantErrno(t, "second Insmod", err, kernel.EEXIST)
		if err == nil || err.Error() != "insmod: ERROR: could not insert module probe: File exists" {
			t.Errorf("err = %v", err)
		}
	})
	if inits, _ := rec.counts(); inits != 1 {
		t.Errorf("inits = %d, want 1", inits)
	}
	if got := ld.Lsmod(); len(got) != 1 {
		t.Errorf("Lsmod = %v", got)
	}
}

func TestInsmodOfUnknownModuleIsENOENT(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	ld := newLoader(t, k)
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		err := ld.Insmod(c, "nosuch")
		wantErrno(t, "Insmod", err, kernel.ENOENT)
		if err == nil || err.Error() != "insmod: ERROR: could not load module nosuch: No such file or directory" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestInitErrorFailsTheLoadSilently(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{initErr: kernel.ENOMEM}))
	seq := k.Log().NextSeq()
	var err error
	inTask(t, k, "insmod", func(c *kernel.Ctx) { err = ld.Insmod(c, "probe") })
	wantErrno(t, "Insmod", err, kernel.ENOMEM)
	if err == nil || err.Error() != "insmod: ERROR: could not insert module probe: Cannot allocate memory" {
		t.Errorf("err = %v", err)
	}
	if lines := logText(k, seq); len(lines) != 1 || lines[0] != ootLine("probe") {
		t.Errorf("kernel printed %q, want only the taint line", lines)
	}
	if got := ld.Lsmod(); len(got) != 0 {
		t.Errorf("Lsmod = %v", got)
	}
	if _, exits := rec.counts(); exits != 0 {
		t.Errorf("Exit ran after a failed Init")
	}
}

func TestRmmodRunsExitInTheCallersContext(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	inTask(t, k, "rmmod", func(c *kernel.Ctx) {
		if err := ld.Rmmod(c, "probe"); err != nil {
			t.Errorf("Rmmod: %v", err)
		}
		err := ld.Rmmod(c, "probe")
		wantErrno(t, "second Rmmod", err, kernel.ENOENT)
		if err == nil || err.Error() != "rmmod: ERROR: Module probe is not currently loaded" {
			t.Errorf("err = %v", err)
		}
	})
	if inits, exits := rec.counts(); inits != 1 || exits != 1 {
		t.Errorf("inits, exits = %d, %d; want 1, 1", inits, exits)
	}
	if got := ld.Lsmod(); len(got) != 0 {
		t.Errorf("Lsmod = %v", got)
	}
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe", "i=4"); err != nil {
			t.Errorf("reload: %v", err)
		}
	})
	if rec.last.i != 4 {
		t.Errorf("reloaded instance has i = %d, want a fresh instance with 4", rec.last.i)
	}
}

func TestRmmodWhileAFileIsOpenIsEBUSY(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{withDev: true}))
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	inTask(t, k, "userapp", func(c *kernel.Ctx) {
		fd, err := module.Open(c, "/dev/probe", module.ORdWr)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		if n := ld.Find("probe").Refcount(); n != 1 {
			t.Errorf("Refcount = %d, want 1", n)
		}
		err = ld.Rmmod(c, "probe")
		wantErrno(t, "Rmmod", err, kernel.EBUSY)
		if err == nil || err.Error() != "rmmod: ERROR: Module probe is in use" {
			t.Errorf("err = %v", err)
		}
		if _, exits := rec.counts(); exits != 0 {
			t.Errorf("Exit ran while in use")
		}
		if err := fd.Close(c); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := ld.Rmmod(c, "probe"); err != nil {
			t.Errorf("Rmmod after close: %v", err)
		}
	})
	if _, exits := rec.counts(); exits != 1 {
		t.Errorf("exits = %d", exits)
	}
}

func TestModulesLinkedInListsModulesNewestFirstWithLoadingFlag(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	warnInInit := func(c *kernel.Ctx, p *probe) error {
		kernel.Warn(c, "init of %s\n", "second")
		return nil
	}
	ld := newLoader(t, k, probeInfo(&recorder{}, probeOpts{}), probeInfo(&recorder{}, probeOpts{name: "second", onInit: warnInInit}))
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
		if err := ld.Insmod(c, "second"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
	})
	if lines := logText(k, seq); !hasLine(lines, "Modules linked in: second(O+) probe(O)") {
		t.Errorf("log = %q, want \"Modules linked in: second(O+) probe(O)\"", lines)
	}
	if got := strings.Join(ld.Lsmod(), " "); got != "second probe" {
		t.Errorf("Lsmod = %q", got)
	}
}

// ootLine is check_modinfo()'s warning for the first out-of-tree module.
func ootLine(mod string) string { return mod + ": loading out-of-tree module taints kernel." }

func TestLoadingTaintsTheKernelOOTAndWarnsOnce(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	failing := probeInfo(&recorder{}, probeOpts{name: "failing", initErr: kernel.ENODEV})
	ld := newLoader(t, k, probeInfo(&recorder{}, probeOpts{}), probeInfo(&recorder{}, probeOpts{name: "second"}), failing)
	seq := k.Log().NextSeq()
	inTask(t, k, "insmod", func(c *kernel.Ctx) {
		wantErrno(t, "Insmod(nosuch)", ld.Insmod(c, "nosuch"), kernel.ENOENT)
		if k.Tainted()&kernel.TaintOOT != 0 {
			t.Error("a module that was not found tainted the kernel")
		}
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("Insmod(probe): %v", err)
		}
		if k.Tainted()&kernel.TaintOOT == 0 {
			t.Error("kernel not tainted O after a load")
		}
		if m := ld.Find("probe"); m == nil || m.Taints() != kernel.TaintOOT {
			t.Errorf("Find(probe) = %v, want a module tainting O", m)
		}
		if err := ld.Insmod(c, "second"); err != nil {
			t.Errorf("Insmod(second): %v", err)
		}
		wantErrno(t, "Insmod(failing)", ld.Insmod(c, "failing"), kernel.ENODEV)
		if err := ld.Rmmod(c, "probe"); err != nil {
			t.Errorf("Rmmod(probe): %v", err)
		}
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("reload of probe: %v", err)
		}
		kernel.WarnOn(c, true)
	})
	recs := logRecords(k, seq)
	if len(recs) == 0 || recs[0].Text != ootLine("probe") || recs[0].Level != printk.LevelWarning {
		t.Fatalf("log = %+v, want KERN_WARNING %q first", recs, ootLine("probe"))
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.Text)
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "out-of-tree") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d taint lines in %q, want 1", n, lines)
	}
	if !hasLine(lines, "Modules linked in: probe(O) second(O)") {
		t.Errorf("log %q lacks \"Modules linked in: probe(O) second(O)\"", lines)
	}
	// print_tainted: one column per flag; W is added after this first
	// report, so only O shows. print_tainted_verbose follows.
	if !hasLine(lines, "CPU: 0 UID: 0 PID: 5 Comm: insmod Tainted: G           O        kdefer-"+kernel.Version) ||
		!hasLine(lines, "Tainted: [O]=OOT_MODULE") {
		t.Errorf("log %q lacks the taint columns in the stack header", lines)
	}
	if k.Tainted()&kernel.TaintWarn == 0 {
		t.Error("the WARN did not taint the kernel W")
	}
}

func TestParamSetAtRuntimeHonoursPerm(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	rec := &recorder{}
	ld := newLoader(t, k, probeInfo(rec, probeOpts{}))
	inTask(t, k, "sh", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "probe"); err != nil {
			t.Errorf("Insmod: %v", err)
			return
		}
		if err := ld.ParamSet(c, "probe", "make_it_fail", "1\n"); err != nil {
			t.Errorf("ParamSet(make_it_fail): %v", err)
		}
		if rec.last.rw != 1 {
			t.Errorf("make_it_fail = %d after write", rec.last.rw)
		}
		wantErrno(t, "ParamSet(ro)", ld.ParamSet(c, "probe", "ro", "1"), kernel.EACCES)
		wantErrno(t, "ParamSet(hidden)", ld.ParamSet(c, "probe", "hidden", "1"), kernel.ENOENT)
		wantErrno(t, "ParamSet(nosuch)", ld.ParamSet(c, "probe", "nosuch", "1"), kernel.ENOENT)
		wantErrno(t, "ParamSet(other module)", ld.ParamSet(c, "other", "i", "1"), kernel.ENOENT)
		wantErrno(t, "ParamSet(bad value)", ld.ParamSet(c, "probe", "make_it_fail", "x"), kernel.EINVAL)
		wantErrno(t, "ParamSet(bool empty)", ld.ParamSet(c, "probe", "bo", ""), kernel.EINVAL)
		if err := ld.ParamSet(c, "probe", "wo", "0x20"); err != nil {
			t.Errorf("ParamSet(wo): %v", err)
		}
		if err := ld.ParamSet(c, "probe", "str", "abc\n"); err != nil {
			t.Errorf("ParamSet(str): %v", err)
		}
		if err := ld.ParamSet(c, "probe", "bo", "on"); err != nil {
			t.Errorf("ParamSet(bo): %v", err)
		}
	})
	m := rec.last
	if m.rw != 1 || m.ro != 7 || m.hidden != 8 || m.wo != 32 || m.str != "abc\n" || !m.bo {
		t.Errorf("params = %+v", *m)
	}
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"make_it_fail", "1", nil},
		{"ro", "7", nil},
		{"bo", "Y", nil},
		{"hidden", "", kernel.ENOENT},
		{"wo", "", kernel.EACCES},
	} {
		got, err := ld.ParamGet("probe", tc.name)
		if got != tc.want || !errors.Is(err, tc.err) && err != tc.err {
			t.Errorf("ParamGet(%s) = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	want := "i u l ul s us b bo inv str make_it_fail ro wo"
	if got := strings.Join(ld.ParamNames("probe"), " "); got != want {
		t.Errorf("ParamNames = %q, want %q", got, want)
	}
}

func TestTwoKernelsLoadTheSameModuleIndependently(t *testing.T) {
	reg := module.NewRegistry()
	rec1, rec2 := &recorder{}, &recorder{}
	calls := 0
	info := module.Info{Name: "probe", License: "GPL", New: func(p *module.Params) module.Instance {
		calls++
		r := rec1
		if calls > 2 { // the first call is Register's check; then k1, then k2
			r = rec2
		}
		return probeInfo(r, probeOpts{withDev: true}).New(p)
	}}
	if err := reg.Register(info); err != nil {
		t.Fatal(err)
	}
	k1, k2 := boot(t), boot(t)
	defer shutdown(t, k1)
	defer shutdown(t, k2)
	ld1, ld2 := module.Loader(k1, reg), module.Loader(k2, reg)
	if ld1 == ld2 || module.Loader(k1, nil) != ld1 || module.Loader(k1, reg) != ld1 {
		t.Fatal("loaders are not per kernel")
	}
	inTask(t, k1, "insmod", func(c *kernel.Ctx) {
		if err := ld1.Insmod(c, "probe", "i=1"); err != nil {
			t.Errorf("k1 Insmod: %v", err)
		}
	})
	inTask(t, k2, "insmod", func(c *kernel.Ctx) {
		if err := ld2.Insmod(c, "probe", "i=2"); err != nil {
			t.Errorf("k2 Insmod: %v", err)
		}
	})
	if rec1.last == nil || rec2.last == nil || rec1.last == rec2.last {
		t.Fatal("instances are shared")
	}
	g1, _ := ld1.ParamGet("probe", "i")
	g2, _ := ld2.ParamGet("probe", "i")
	if g1 != "1" || g2 != "2" {
		t.Errorf("i = %s, %s; want 1, 2", g1, g2)
	}
	if rec1.last.misc.Minor != 127 || rec2.last.misc.Minor != 127 {
		t.Errorf("minors = %d, %d; want 127 in each kernel", rec1.last.misc.Minor, rec2.last.misc.Minor)
	}
	inTask(t, k1, "rmmod", func(c *kernel.Ctx) {
		if err := ld1.Rmmod(c, "probe"); err != nil {
			t.Errorf("k1 Rmmod: %v", err)
		}
	})
	if len(ld1.Lsmod()) != 0 || len(ld2.Lsmod()) != 1 {
		t.Errorf("Lsmod = %v, %v", ld1.Lsmod(), ld2.Lsmod())
	}
	inTask(t, k2, "cat", func(c *kernel.Ctx) {
		fd, err := module.Open(c, "/dev/probe", module.ORdOnly)
		if err != nil {
			t.Errorf("k2 Open: %v", err)
			return
		}
		fd.Close(c)
	})
	inTask(t, k1, "cat", func(c *kernel.Ctx) {
		_, err := module.Open(c, "/dev/probe", module.ORdOnly)
		wantErrno(t, "k1 Open after rmmod", err, kernel.ENOENT)
	})
}

func TestLoaderWithAnotherRegistryPanics(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	module.Loader(k, module.NewRegistry())
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	module.Loader(k, module.NewRegistry())
}

func TestDeviceLeftRegisteredAfterExitIsRemovedWithWarning(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	leaky := module.Info{Name: "leaky", License: "GPL", New: func(p *module.Params) module.Instance { return &leakyMod{} }}
	ld := newLoader(t, k, leaky)
	seq := k.Log().NextSeq()
	inTask(t, k, "sh", func(c *kernel.Ctx) {
		if err := ld.Insmod(c, "leaky"); err != nil {
			t.Errorf("Insmod: %v", err)
		}
		if err := ld.Rmmod(c, "leaky"); err != nil {
			t.Errorf("Rmmod: %v", err)
		}
		_, err := module.Open(c, "/dev/leaky", module.ORdOnly)
		wantErrno(t, "Open", err, kernel.ENOENT)
	})
	lines := logText(k, seq)
	if !hasLine(lines, "module leaky: misc device leaky still registered after exit; removed") {
		t.Errorf("log = %q", lines)
	}
	if k.Tainted()&kernel.TaintWarn == 0 {
		t.Error("kernel not tainted W")
	}
	if got := module.ProcMisc(k); got != "" {
		t.Errorf("ProcMisc = %q", got)
	}
}

type leakyMod struct{ misc module.MiscDevice }

func (m *leakyMod) Init(c *kernel.Ctx) error {
	m.misc = module.MiscDevice{Name: "leaky", Minor: module.MiscDynamicMinor, Fops: &module.FileOps{}}
	return module.MiscRegister(c, &m.misc)
}

func (m *leakyMod) Exit(c *kernel.Ctx) {}

func TestRegistryValidatesDefinitions(t *testing.T) {
	reg := module.NewRegistry()
	newOK := func(p *module.Params) module.Instance { return &leakyMod{} }
	bad := []module.Info{
		{Name: "", License: "GPL", New: newOK},
		{Name: "has-dash", License: "GPL", New: newOK},
		{Name: strings.Repeat("n", module.ModuleNameLen), License: "GPL", New: newOK},
		{Name: "nolicense", New: newOK},
		{Name: "nonew", License: "GPL"},
		{Name: "nilinst", License: "GPL", New: func(p *module.Params) module.Instance { return nil }},
		{Name: "worldw", License: "GPL", New: func(p *module.Params) module.Instance {
			var v int
			p.Int(&v, "v", 0, 0666, "")
			return &leakyMod{}
		}},
		{Name: "grpw", License: "GPL", New: func(p *module.Params) module.Instance {
			var v int
			p.Int(&v, "v", 0, 0464, "")
			return &leakyMod{}
		}},
		{Name: "dupparam", License: "GPL", New: func(p *module.Params) module.Instance {
			var v, w int
			p.Int(&v, "a_b", 0, 0644, "")
			p.Int(&w, "a-b", 0, 0644, "")
			return &leakyMod{}
		}},
	}
	for _, in := range bad {
		if err := reg.Register(in); err == nil {
			t.Errorf("Register(%q) succeeded", in.Name)
		}
	}
	for _, name := range []string{"zeta", "alpha", "mid"} {
		if err := reg.Register(module.Info{Name: name, License: "GPL", New: newOK}); err != nil {
			t.Fatalf("Register(%s): %v", name, err)
		}
	}
	if err := reg.Register(module.Info{Name: "mid", License: "GPL", New: newOK}); !errors.Is(err, module.ErrDuplicate) {
		t.Errorf("duplicate Register: %v", err)
	}
	var names []string
	for _, in := range reg.List() {
		names = append(names, in.Name)
	}
	if strings.Join(names, " ") != "alpha mid zeta" {
		t.Errorf("List = %v", names)
	}
	if _, ok := reg.Lookup("alpha"); !ok {
		t.Error("Lookup(alpha) failed")
	}
	if _, ok := reg.Lookup("beta"); ok {
		t.Error("Lookup(beta) succeeded")
	}
}

func TestInfoParamsListsDeclarationsWithoutSideEffects(t *testing.T) {
	rec := &recorder{}
	ps := probeInfo(rec, probeOpts{}).Params()
	if len(ps) != 14 {
		t.Fatalf("len = %d", len(ps))
	}
	if got := ps[0]; got != (module.ParamInfo{Name: "i", Type: "int", Perm: 0644, Description: "an int", Default: "-1"}) {
		t.Errorf("ps[0] = %+v", got)
	}
	if got := ps[10].String(); got != "make_it_fail:writable at runtime (int)" {
		t.Errorf("modinfo parm = %q", got)
	}
	if ps[8].Type != "invbool" || ps[8].Default != "Y" || ps[9].Default != "hello" {
		t.Errorf("invbool/charp = %+v %+v", ps[8], ps[9])
	}
	if inits, _ := rec.counts(); inits != 0 {
		t.Error("Params called Init")
	}
}

func TestSyscallsFromSoftirqContextWarnAndFailWithEINVAL(t *testing.T) {
	k := boot(t)
	defer shutdown(t, k)
	ld := newLoader(t, k, probeInfo(&recorder{}, probeOpts{}))
	var insmodErr, openErr error
	k.OpenSoftirq(kernel.NetRXSoftirq, func(c *kernel.Ctx) {
		insmodErr = ld.Insmod(c, "probe")
		_, openErr = module.Open(c, "/dev/probe", module.ORdOnly)
	})
	seq := k.Log().NextSeq()
	k.RaiseSoftirqOn(0, kernel.NetRXSoftirq)
	if err := k.RunUntilIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "Insmod", insmodErr, kernel.EINVAL)
	wantErrno(t, "Open", openErr, kernel.EINVAL)
	lines := logText(k, seq)
	if !hasLine(lines, "init_module() called from softirq context") || !hasLine(lines, "open() called from softirq context") {
		t.Errorf("log = %q", lines)
	}
	if len(ld.Lsmod()) != 0 {
		t.Error("module loaded from softirq")
	}
}

// TestInsmodAfterShutdownFails: no module is loaded into a kernel that has
// stopped.
func TestInsmodAfterShutdownFails(t *testing.T) {
	k := boot(t)
	ld := newLoader(t, k, probeInfo(&recorder{}, probeOpts{}))
	if err := k.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ld.Insmod(k.IdleCtx(0), "probe"); !errors.Is(err, kernel.ErrShutdown) {
		t.Errorf("Insmod after Shutdown = %v, want ErrShutdown", err)
	}
}
