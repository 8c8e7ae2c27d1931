package procfs_test

import (
	"errors"
	"testing"

	"github.com/kdefer/kdefer/internal/ktest"
	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/modules"
	"github.com/kdefer/kdefer/procfs"
)

func TestModuleParametersReadAndWriteAsSysfsAllows(t *testing.T) {
	k := ktest.Virtual(t, 1, 250)
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		if err := module.Loader(k, modules.Registry()).Insmod(c, "testmod", "count=7"); err != nil {
			t.Fatal(err)
		}
	})
	if got := procfs.ModuleParams(k, "testmod"); len(got) != 4 {
		t.Errorf("parameters = %v, want the 4 with a sysfs permission", got)
	}
	if v, err := procfs.ModuleParam(k, "testmod", "count"); v != "7\n" || err != nil {
		t.Errorf("count = %q, %v", v, err)
	}
	ktest.InTask(t, k, func(c *kernel.Ctx) {
		for _, tc := range []struct {
			name, data string
			want       error
		}{
			{"count", "42\n", nil},              // 0644: echo 42 > count
			{"count", "forty\n", kernel.EINVAL}, // the setter refuses
			{"delay_ms", "5\n", kernel.EACCES},  // 0444: not writable
			{"fail_init", "1\n", kernel.ENOENT}, // perm 0: not in sysfs
			{"nosuch", "1\n", kernel.ENOENT},    // no such file
			{"name", "hello\n", nil},            // a charp keeps the newline
		} {
			if err := procfs.SetModuleParam(c, "testmod", tc.name, tc.data); !errors.Is(err, tc.want) && err != tc.want {
				t.Errorf("write %q to %s: %v, want %v", tc.data, tc.name, err, tc.want)
			}
		}
	})
	if v, _ := procfs.ModuleParam(k, "testmod", "count"); v != "42\n" {
		t.Errorf("count after the writes = %q, want 42", v)
	}
	if v, _ := procfs.ModuleParam(k, "testmod", "name"); v != "hello\n\n" {
		t.Errorf("name = %q, want the written newline kept", v)
	}
	if _, err := procfs.ModuleParam(k, "nomod", "x"); !errors.Is(err, kernel.ENOENT) {
		t.Errorf("missing module: %v", err)
	}
}
