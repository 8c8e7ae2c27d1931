# ratio.awk: per-run ratio of two benchmarks' ns/op in `go test -bench`
# output run with -count N, paired in the order they ran (each -count
# round runs every sub-benchmark once), with the median and range:
#
#	awk -v num=ArmCancelWith1MPending/go/AfterFunc+Stop \
#	    -v den=ArmCancelWith1MPending/kdefer/mod_timer+timer_delete -f ratio.awk out.txt
#
# num and den are matched exactly against the benchmark names without the
# "Benchmark" prefix and the -GOMAXPROCS suffix.
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^Benchmark/, "", name)
	for (i = 3; i + 1 <= NF; i += 2) {
		if ($(i + 1) != "ns/op") continue
		if (name == num) a[++na] = $i
		if (name == den) b[++nb] = $i
	}
}
END {
	m = (na < nb) ? na : nb
	if (m == 0) { print "no pairs"; exit 1 }
	for (i = 1; i <= m; i++) r[i] = a[i] / b[i]
	for (i = 2; i <= m; i++) {
		x = r[i]
		for (j = i - 1; j >= 1 && r[j] > x; j--) r[j + 1] = r[j]
		r[j + 1] = x
	}
	med = (m % 2) ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2
	printf "%s / %s: median %.2f, range %.2f .. %.2f (%d runs)\n", num, den, med, r[1], r[m], m
}
