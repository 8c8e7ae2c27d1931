package kernel

import "io"

// SetOopsStderr replaces the writer a kernel without a log sink prints its
// Oops reports to (os.Stderr), for tests. Call it before anything oopses.
func SetOopsStderr(k *Kernel, w io.Writer) { k.stderr = w }
