#!/bin/bash
# network.sh — the cost of networking: network setup per container, and
# TCP round-trip latency and stream throughput container-to-container and
# host-to-published-port next to the same server on the host's loopback.
# Runs the Go benchmarks of internal/network 10 times and prints medians
# and p90 as a markdown table. Run as root.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! out=$(go test -run '^$' -bench 'BenchmarkSetup' -count 10 -benchtime 50x ./internal/network/ 2>&1 &&
	go test -run '^$' -bench 'BenchmarkTCP' -count 10 -benchtime 5000x ./internal/network/ 2>&1); then
	echo "network.sh: the network benchmarks failed:" >&2
	echo "$out" >&2
	exit 1
fi
echo "## Networking (go test -bench, 10 runs each)"
echo
echo "| benchmark | metric | median | p90 |"
echo "|---|---|---|---|"
echo "$out" | awk '
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	for (i = 4; i <= NF; i += 2) { k = name "\t" $(i); v[k] = v[k] " " $(i-1) }
}
END {
	for (k in v) {
		n = split(substr(v[k], 2), a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		med = a[int((n + 1) / 2)]; p90 = a[int(n * 0.9 + 0.5)]
		split(k, parts, "\t")
		if (parts[2] == "ns/op") printf "| %s | time per op | %.1f µs | %.1f µs |\n", parts[1], med / 1000, p90 / 1000
		else printf "| %s | %s | %s | %s |\n", parts[1], parts[2], med, p90
	}
}' | sort
