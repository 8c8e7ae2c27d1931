package jiffies

import (
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
