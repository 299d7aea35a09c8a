#!/bin/bash
# import.sh SKIFF SOCKET WORKDIR — a large root filesystem tar (Debian
# bookworm with PostgreSQL 15, made by mmdebstrap and cached under
# ${SKIFF_CACHE:-/var/cache/skiff}/base/) made into an image and run once:
# `skiff image import --rootfs` + `skiff run --rm`, and `skiff image build`
# of `FROM scratch / ADD rootfs.tar /` + `skiff run --rm`, against
# `podman import` + `podman run --rm` of the same tar, interleaved.
# Between rounds every image is removed, so each round unpacks afresh.
# IMPORT_RUNS rounds (default 3); prints a markdown table of medians.
set -euo pipefail
SKIFF=$1 SOCK=$2 WORK=$3
RUNS=${IMPORT_RUNS:-3}
CACHE=${SKIFF_CACHE:-/var/cache/skiff}/base
TAR=$CACHE/debian-postgresql-bookworm.tar
cd "$(dirname "$0")/.."
[ -f "$TAR" ] || scripts/base-images.sh --tars-only debian-postgresql >&2
sk() { "$SKIFF" --socket "$SOCK" "$@"; }

mkdir -p "$WORK/import-ctx"
ln -f "$TAR" "$WORK/import-ctx/rootfs.tar" 2>/dev/null || cp "$TAR" "$WORK/import-ctx/rootfs.tar"
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$WORK/import-ctx/Dockerfile"
cat >"$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits=["nofile=20000:20000","nproc=32768:32768"]
[engine]
runtime="runc"
cgroup_manager="cgroupfs"
events_logger="file"
CONF
pm() { CONTAINERS_CONF="$WORK/containers.conf" podman --root "$WORK/podman-root" --runroot "$WORK/podman-run" --storage-driver overlay "$@"; }

# secs CMD... runs CMD and prints its wall time in seconds.
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>"$WORK/secs.err" || { cat "$WORK/secs.err" >&2; return 1; }
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

: >"$WORK/import.times"
for i in $(seq "$RUNS"); do
	a=$(secs sk image import --rootfs "$TAR" bench-import:1)
	b=$(secs sk run --rm bench-import:1 true)
	sk image rm bench-import:1 >/dev/null && sk image prune >/dev/null
	c=$(secs sk image build -q -t bench-built:1 "$WORK/import-ctx")
	d=$(secs sk run --rm bench-built:1 true)
	sk image rm bench-built:1 >/dev/null && sk image prune >/dev/null
	e=$(secs pm import "$TAR" localhost/bench-import:1)
	f=$(secs pm run --rm localhost/bench-import:1 true)
	pm rmi -f localhost/bench-import:1 >/dev/null
	echo "$a $b $c $d $e $f" >>"$WORK/import.times"
done
col() { awk -v c="$1" '{print $c}' "$WORK/import.times" | median; }
sum() { awk -v a="$1" -v b="$2" '{print $a+$b}' "$WORK/import.times" | median; }
pmt=$(sum 5 6)
ratio() { awk -v a="$1" -v b="$pmt" 'BEGIN {printf "%.2f", a / b}'; }
size=$(du -m "$TAR" | cut -f1)
echo "## A ${size} MB root filesystem tar made into an image, then run once"
echo
echo "Medians of $RUNS rounds; each round starts with no image in the stores."
echo
echo "| | make the image (s) | first run (s) | total (s) | ÷ podman |"
echo "|---|---|---|---|---|"
echo "| skiff image import --rootfs + run --rm | $(col 1) | $(col 2) | $(sum 1 2) | $(ratio "$(sum 1 2)") |"
echo "| skiff image build (ADD rootfs.tar /) + run --rm | $(col 3) | $(col 4) | $(sum 3 4) | $(ratio "$(sum 3 4)") |"
echo "| podman import + podman run --rm | $(col 5) | $(col 6) | $pmt | 1.00 |"
