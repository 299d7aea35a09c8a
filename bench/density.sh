#!/bin/bash
# density.sh SKIFF SOCKET N — memory skiff adds per running container:
# starts N idle containers and reports the monitors' PSS and the daemon's
# PSS growth per container, as a markdown table.
set -euo pipefail
SKIFF=$1 SOCKET=$2 N=${3:-50}
sk() { "$SKIFF" --socket "$SOCKET" "$@"; }
pss() { awk '/^Pss:/ {s+=$2} END {print s+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
daemon_pid=$(pgrep -f "skiff daemon.*--socket $SOCKET" | head -1)
sleep 1
before=$(pss "$daemon_pid")
ids=()
for i in $(seq "$N"); do
	ids+=("$(sk run -d --name "density-$i" busybox sleep 3600)")
done
sleep 2
after=$(pss "$daemon_pid")
total=0 count=0 rss_total=0
for id in "${ids[@]}"; do
	pid=$(pgrep -f "conmon .*-c $id" | head -1)
	if [ -z "$pid" ]; then
		echo "density: container $id has no conmon process: the measure would leave it out" >&2
		sk rm -f "${ids[@]}" >/dev/null
		exit 1
	fi
	total=$((total + $(pss "$pid")))
	rss_total=$((rss_total + $(awk '/^Rss:/ {print $2}' /proc/$pid/smaps_rollup)))
	count=$((count + 1))
done
sk rm -f "${ids[@]}" >/dev/null
conmon_pss=$(awk -v t="$total" -v c="$count" 'BEGIN {printf "%.2f", t/c/1024}')
conmon_rss=$(awk -v t="$rss_total" -v c="$count" 'BEGIN {printf "%.2f", t/c/1024}')
daemon_share=$(awk -v a="$after" -v b="$before" -v n="$N" 'BEGIN {printf "%.3f", (a-b)/n/1024}')
total_share=$(awk -v p="$conmon_pss" -v d="$daemon_share" 'BEGIN {printf "%.2f", p+d}')
echo "| measure ($count idle containers) | per container |"
echo "|---|---|"
echo "| conmon PSS | ${conmon_pss} MiB |"
echo "| conmon RSS | ${conmon_rss} MiB |"
echo "| daemon PSS growth | ${daemon_share} MiB |"
echo "| **skiff's share (conmon PSS + daemon growth)** | **${total_share} MiB** |"
