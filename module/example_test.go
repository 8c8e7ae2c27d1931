package module_test

import (
	"context"
	"fmt"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
)

// hello is a module with one parameter and a misc device whose read says
// hello.
type hello struct {
	whom string
	fops module.FileOps
	misc module.MiscDevice
}

var helloInfo = module.Info{
	Name:    "hello",
	License: "Dual MIT/GPL",
	New: func(p *module.Params) module.Instance {
		h := &hello{}
		p.Charp(&h.whom, "whom", "world", 0644, "who to greet")
		return h
	},
}

func (h *hello) Init(c *kernel.Ctx) error {
	h.fops.Read = func(c *kernel.Ctx, f *module.File, buf []byte, off *int64) (int, error) {
		msg := fmt.Sprintf("Hello, %s! You are %s.\n", h.whom, c.Current().Comm())
		return module.SimpleReadFromBuffer(buf, off, []byte(msg))
	}
	h.misc = module.MiscDevice{Name: "hello", Minor: module.MiscDynamicMinor, Mode: 0444, Fops: &h.fops}
	if err := module.MiscRegister(c, &h.misc); err != nil {
		return err
	}
	module.DevInfo(c, h.misc.ThisDevice(), "ready, minor %d\n", h.misc.Minor)
	return nil
}

func (h *hello) Exit(c *kernel.Ctx) { module.MiscDeregister(c, &h.misc) }

func Example() {
	reg := module.NewRegistry()
	if err := reg.Register(helloInfo); err != nil {
		panic(err)
	}
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	defer k.Shutdown(ctx)
	ld := module.Loader(k, reg)
	seq := k.Log().NextSeq()

	k.Spawn("insmod", func(c *kernel.Ctx) int {
		if err := ld.Insmod(c, "hello", `whom="kernel hacker"`, "colour=blue"); err != nil {
			fmt.Println(err)
			return 1
		}
		return 0
	})
	k.RunUntilIdle(ctx)

	k.Spawn("cat", func(c *kernel.Ctx) int {
		fd, err := module.Open(c, "/dev/hello", module.ORdOnly)
		if err != nil {
			fmt.Println("/dev/hello:", err)
			return 1
		}
		defer fd.Close(c)
		buf := make([]byte, 64)
		n, _ := fd.Read(c, buf)
		fmt.Print(string(buf[:n]))
		_, err = fd.Ioctl(c, module.IO('h', 1), nil)
		fmt.Println("ioctl:", err)
		return 0
	})
	k.RunUntilIdle(ctx)

	k.Spawn("rmmod", func(c *kernel.Ctx) int {
		fmt.Println(ld.Rmmod(c, "nosuch"))
		return 0
	})
	k.RunUntilIdle(ctx)

	recs, _ := k.Log().Records(seq)
	for _, r := range recs {
		fmt.Println("dmesg:", r.Text)
	}
	// Output:
	// Hello, kernel hacker! You are cat.
	// ioctl: Inappropriate ioctl for device
	// rmmod: ERROR: Module nosuch is not currently loaded
	// dmesg: hello: loading out-of-tree module taints kernel.
	// dmesg: hello: unknown parameter 'colour' ignored
	// dmesg: misc hello: ready, minor 127
}
