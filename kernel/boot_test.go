package kernel_test

import (
	"context"
	"testing"
	"time"

	"github.com/kdefer/kdefer/kernel"
)

func TestVirtualKernelBootsAndShutsDownWithoutLeaks(t *testing.T) {
	k := boot(t, kernel.Config{CPUs: 2})
	run(t, k, time.Second)
	if got := k.Now(); got != int64(time.Second) {
		t.Fatalf("Now after Run(1s) = %d, want %d", got, time.Second)
	}
	var names []string
	for _, tk := range k.Tasks() {
		names = append(names, tk.Comm())
	}
	t.Logf("tasks: %v", names)
	t.Log(dmesg(k))
}

func TestRealKernelBootsAndShutsDown(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{CPUs: 2, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
