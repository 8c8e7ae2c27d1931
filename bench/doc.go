// Package bench holds kdefer's benchmark suite, in its own module so that it
// may import the libraries kdefer is compared against without the library
// module inheriting them. Each benchmark runs kdefer and the Go alternative
// a user would pick instead side by side; BENCHMARKS.md records the table
// and the command that produced it: medians and ranges over five runs,
// with summarize.awk, and the per-run ratios of paired rows, with
// ratio.awk.
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 5 . | tee out.txt
//	awk -f summarize.awk out.txt
//	awk -v num=ArmCancelWith1MPending/go/AfterFunc+Stop \
//	    -v den=ArmCancelWith1MPending/kdefer/mod_timer+timer_delete -f ratio.awk out.txt
package bench
