package modules

import (
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestRegistryHoldsEveryModule(t *testing.T) {
	r := Registry()
	for _, name := range []string{"testmod", "delays_sleeps", "timer_simple", "sed1_drv", "1_2_timer", "kthread_simple", "6_kthread", "tasklet_driver", "kt1", "kt2", "sed2_drv", "umh_demo", "workq_simple", "workqueue_driver", "slpy_wq", "3_4_5_deferred", "sed3_drv"} {
		if _, ok := r.Lookup(name); !ok {
			t.Errorf("%s not registered", name)
		}
	}
	if n := len(r.List()); n != len(All()) {
		t.Errorf("%d modules registered, All has %d", n, len(All()))
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"timer_simple", "timer_simple"},
		{"timer-simple", "timer_simple"},
		{"sed1", "sed1_drv"},
		{"sed1_drv", "sed1_drv"},
		{"sed2", "sed2_drv"},
		{"1-2-timer", "1_2_timer"},
		{"1_2_timer", "1_2_timer"},
		{"delays-sleeps", "delays_sleeps"},
		{"6-kthread", "6_kthread"},
		{"sed3", "sed3_drv"},
		{"3-4-5-deferred", "3_4_5_deferred"},
		{"slpy-wq", "slpy_wq"},
		{"nosuch", ""},
		{"", ""},
	} {
		got, ok := Resolve(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, a := range Aliases() {
		if _, ok := Registry().Lookup(a[1]); !ok {
			t.Errorf("alias %s names unknown module %s", a[0], a[1])
		}
	}
}

func TestAppsNameTheirModules(t *testing.T) {
	r := Registry()
	for _, a := range Apps() {
		if _, ok := r.Lookup(a.Module); !ok || a.Main == nil || a.Name == "" {
			t.Errorf("app %+v", a)
		}
		if got, ok := LookupApp(a.Name); !ok || got.Name != a.Name {
			t.Errorf("LookupApp(%s) = %+v, %v", a.Name, got, ok)
		}
	}
	if _, ok := LookupApp("nosuch"); ok {
		t.Error("LookupApp(nosuch) found something")
	}
}
