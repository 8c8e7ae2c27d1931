package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/ants/v2"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// ants starts the goroutines of its default pool at package init.
	ants.ReleaseTimeout(5 * time.Second)
	if code == 0 {
		if leaks := leakcheck.Leaked(2 * time.Second); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) leaked after the tests:\n\n%s\n", len(leaks), strings.Join(leaks, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}
