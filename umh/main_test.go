package umh_test

import (
	"os"
	"testing"

	"github.com/kdefer/kdefer/internal/leakcheck"
)

// helperArg, as argv[1], makes the test binary the helper program a test
// runs through call_usermodehelper; argv[2] is the helper's mode.
const helperArg = "umh-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(helperMain(os.Args[2], os.Args[3:]))
	}
	leakcheck.VerifyTestMain(m)
}
