package kernel

// getg returns the address of the calling goroutine's runtime descriptor
// (the g the runtime keeps in thread-local storage): it identifies a live
// goroutine for as long as it runs, at the cost of a load.
func getg() uintptr
