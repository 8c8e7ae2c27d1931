# summarize.awk: median and range of every metric of every benchmark in
# `go test -bench` output run with -count N (N >= 5 for BENCHMARKS.md):
#
#	go test -run '^$' -bench . -benchmem -count 5 . | tee out.txt
#	awk -f summarize.awk out.txt
#
# prints one line per benchmark and metric: name, unit, median, min, max, runs.
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	for (i = 3; i + 1 <= NF; i += 2) {
		key = name SUBSEP $(i + 1)
		if (!(key in n)) order[++keys] = key
		v[key, ++n[key]] = $i
	}
}
END {
	for (k = 1; k <= keys; k++) {
		key = order[k]
		m = n[key]
		for (i = 1; i <= m; i++) a[i] = v[key, i] + 0
		# insertion sort
		for (i = 2; i <= m; i++) {
			x = a[i]
			for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
			a[j + 1] = x
		}
		med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
		split(key, parts, SUBSEP)
		printf "%-75s %-12s median %10.4g  range %10.4g .. %-10.4g (%d runs)\n", parts[1], parts[2], med, a[1], a[m], m
	}
}
