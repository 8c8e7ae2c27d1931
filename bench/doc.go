// Package bench holds kdefer's benchmark suite, in its own module so that it
// may import the libraries kdefer is compared against without the library
// module inheriting them. Each benchmark runs kdefer and the Go alternative
// a user would pick instead side by side; BENCHMARKS.md records the table
// and the command that produced it.
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 1
package bench
