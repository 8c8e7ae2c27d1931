package leakcheck

import (
	"testing"
	"time"
)

func TestMain(m *testing.M) { VerifyTestMain(m) }

func TestLeakedGoroutineIsReported(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	if got := Leaked(0); len(got) != 1 {
		t.Fatalf("Leaked = %d stacks, want 1: %q", len(got), got)
	}
	close(stop)
	<-done
	if got := Leaked(time.Second); len(got) != 0 {
		t.Fatalf("after exit Leaked = %q, want none", got)
	}
}
