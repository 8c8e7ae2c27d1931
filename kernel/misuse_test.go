package kernel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kdefer/kdefer/kernel"
)

// TestBootRejectsANegativeLogCapacity: LogCapacity < 0 is an error, not
// silently the default.
func TestBootRejectsANegativeLogCapacity(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true, LogCapacity: -5})
	if err == nil {
		k.Shutdown(context.Background())
		t.Fatal("Boot accepted LogCapacity -5")
	}
	if !errors.Is(err, kernel.EINVAL) {
		t.Errorf("err = %v, want EINVAL", err)
	}
}

// TestIRQsAfterShutdownFailWithErrShutdown: request_irq and a generated
// interrupt after Shutdown fail as everything else does.
func TestIRQsAfterShutdownFailWithErrShutdown(t *testing.T) {
	k, err := kernel.Boot(kernel.Config{Virtual: true, CPUs: 1, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	h := func(*kernel.Ctx, int, any) kernel.IRQReturn { ran = true; return kernel.IRQHandled }
	if err := k.RequestIRQ(3, h, 0, "early", nil); err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestIRQ(4, h, 0, "late", nil); !errors.Is(err, kernel.ErrShutdown) {
		t.Errorf("RequestIRQ after Shutdown = %v, want ErrShutdown", err)
	}
	if err := k.GenerateIRQ(0, 3); !errors.Is(err, kernel.ErrShutdown) {
		t.Errorf("GenerateIRQ after Shutdown = %v, want ErrShutdown", err)
	}
	if ran {
		t.Error("a handler ran after Shutdown")
	}
}
