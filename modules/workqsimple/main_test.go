package workqsimple_test

import (
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
