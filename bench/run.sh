#!/bin/bash
# run.sh — runs skiff's benchmarks side by side with their peers and
# writes the tables to bench/out/. Run as root from the repository root
# (make bench). Each section starts its own daemon with a temporary root.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
SKIFF="$PWD/bin/skiff"
WORK=$(mktemp -d /tmp/skiff-bench-XXXX)
# Apps run in user namespaces: their unprivileged root must reach the
# daemon root below WORK.
chmod 0711 "$WORK"
SOCK="$WORK/skiff.sock"
ROOT="$WORK/root"
RUNS=${RUNS:-30}
export CGO_ENABLED=0

cleanup() {
	"$SKIFF" --socket "$SOCK" ps -aq 2>/dev/null | xargs -r "$SKIFF" --socket "$SOCK" rm -f >/dev/null 2>&1 || true
	[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
	[ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
	grep -o " $WORK[^ ]*" /proc/self/mountinfo | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

machine() {
	echo "Machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r); $(runc --version | head -1); $(conmon --version | head -1); $(podman --version 2>/dev/null || true). Date: $(date -u +%Y-%m-%d)."
}

# privileged: the reference runs of appbench share the host network.
"$SKIFF" daemon --root "$ROOT" --socket "$SOCK" --ingress-addr 127.0.0.1:0 --security-profile privileged >"$WORK/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 200); do "$SKIFF" --socket "$SOCK" info >/dev/null 2>&1 && break; sleep 0.05; done
go build -o "$WORK/hello-ctx/hello" ./examples/hello
cp examples/hello/Dockerfile "$WORK/hello-ctx/"
"$SKIFF" --socket "$SOCK" image build -q -t hello "$WORK/hello-ctx" >/dev/null
# busybox image for the density test
mkdir -p "$WORK/bb/rootfs/bin"
cp /bin/busybox "$WORK/bb/rootfs/bin/"
for a in sh sleep true; do ln -s busybox "$WORK/bb/rootfs/bin/$a"; done
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n' >"$WORK/bb/Dockerfile"
"$SKIFF" --socket "$SOCK" image build -q -t busybox "$WORK/bb" >/dev/null

CRUN_ARGS=()
if command -v crun >/dev/null; then
	"$SKIFF" daemon --root "$WORK/root-crun" --socket "$WORK/crun.sock" --runtime crun --ingress-addr 127.0.0.1:0 >"$WORK/daemon-crun.log" 2>&1 &
	CPID=$!
	for _ in $(seq 200); do "$SKIFF" --socket "$WORK/crun.sock" info >/dev/null 2>&1 && break; sleep 0.05; done
	"$SKIFF" --socket "$WORK/crun.sock" image build -q -t hello "$WORK/hello-ctx" >/dev/null
	CRUN_ARGS=(-crun-socket "$WORK/crun.sock")
fi

echo "== start-to-exit latency ($RUNS runs each, interleaved)"
go build -o "$WORK/startbench" ./bench/startbench
{
	echo "## Start to exit: \`skiff run --rm hello -exit 0\`"
	echo
	machine
	echo
	"$WORK/startbench" -skiff "$SKIFF" -socket "$SOCK" -root "$ROOT" -image hello -args "-exit 0" -n "$RUNS" "${CRUN_ARGS[@]}"
} | tee "$OUT/start.md"

echo "== memory per idle container"
{
	echo "## Memory per idle container"
	echo
	machine
	echo
	bench/density.sh "$SKIFF" "$SOCK" 50
} | tee "$OUT/density.md"

echo "== apps: cold start, rollout, scale-out"
go build -o "$WORK/appbench" ./bench/appbench
{
	echo "## Apps: cold start, rollout, scale-out"
	echo
	machine
	echo
	"$WORK/appbench" -skiff "$SKIFF" -socket "$SOCK" -root "$ROOT" -n "$RUNS"
} | tee "$OUT/apps.md"

echo "== apps: cold start with a user namespace vs without"
{
	echo "## Apps: cold start with a user namespace"
	echo
	machine
	echo
	"$WORK/appbench" -skiff "$SKIFF" -socket "$SOCK" -root "$ROOT" -n "$RUNS" -only userns
} | tee "$OUT/userns.md"

echo "== apps: rapid applies (none lost)"
go build -o "$WORK/applybench" ./bench/applybench
{
	echo "## Apps: rapid applies"
	echo
	machine
	echo
	"$WORK/applybench" -socket "$SOCK"
} | tee "$OUT/applies.md"

echo "== daemon restart and upgrade under load"
go build -o "$WORK/hotrestart" ./bench/hotrestart
go build -ldflags "-X skiff.dev/skiff/internal/cli.Version=bench-next" -o "$WORK/skiff-next" ./cmd/skiff
mkdir -p "$WORK/hot"
{
	echo "## Requests through the ingress while the daemon restarts"
	echo
	machine
	echo
	"$WORK/hotrestart" -skiff "$SKIFF" -next "$WORK/skiff-next" -hello-ctx "$WORK/hello-ctx" -work "$WORK/hot"
} | tee "$OUT/hotrestart.md"

echo "== registry: push and pull beside docker-registry"
go build -o "$WORK/registrybench" ./bench/registry
mkdir -p "$WORK/registry"
{
	echo "## Registry: push and pull over loopback"
	echo
	machine
	echo
	"$WORK/registrybench" -skiff "$SKIFF" -work "$WORK/registry" -size "${REGISTRY_MB:-200}"
} | tee "$OUT/registry.md"

echo "== a root filesystem tar: import or build, then the first run"
bench/import.sh "$SKIFF" "$SOCK" "$WORK" | tee "$OUT/import.md"

for extra in bench/network.sh bench/ingress.sh bench/build.sh bench/https.sh; do
	echo "== $extra"
	"$extra" | tee "$OUT/$(basename "$extra" .sh).md"
done

echo "== gitops: commit to serving, webhook and polling"
go build -o "$WORK/gitopsbench" ./bench/gitopsbench
"$WORK/gitopsbench" -socket "$SOCK" -n "${GITOPS_RUNS:-5}" -interval 5s | tee "$OUT/gitops.md"

echo "== compose: up -d --wait and down, skiff compose and podman-compose"
if ! "$SKIFF" --socket "$SOCK" image inspect localhost/debian-postgresql:bookworm >/dev/null 2>&1 && command -v mmdebstrap >/dev/null; then
	# The guestbook's base image: a Debian root with PostgreSQL 15.
	mkdir -p "$WORK/pgbase"
	mmdebstrap --quiet --variant=minbase --include=postgresql-15 bookworm "$WORK/pgbase/rootfs.tar" >/dev/null 2>&1 &&
		printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$WORK/pgbase/Dockerfile" &&
		"$SKIFF" --socket "$SOCK" image build -q -t localhost/debian-postgresql:bookworm "$WORK/pgbase" >/dev/null || true
fi
{
	echo "## Compose: \`up -d --wait\` and \`down\`"
	echo
	machine
	echo
	bench/compose.sh "$SKIFF" "$SOCK" "$ROOT" "$WORK" "${COMPOSE_RUNS:-5}"
} | tee "$OUT/compose.md"

echo "== docker run --rm through skiff's Docker API, skiff run --rm, podman run --rm"
{
	echo "## \`docker run --rm\` through skiff's Docker API"
	echo
	machine
	echo
	bench/docker.sh "$SKIFF" "$WORK" "$RUNS"
} | tee "$OUT/docker.md"

# RESULTS.md holds this run's output and nothing else; how each figure is
# measured, and dated notes on them, are in NOTES.md.
{
	echo "# Benchmark results"
	echo
	echo "Written by \`make bench\` (bench/run.sh): every figure below was printed by"
	echo "that one run, beside its peer measured in the same run. Percentiles are"
	echo "nearest-rank; one that falls on the slowest run (p99 of fewer than 100"
	echo "runs) is marked \"(max)\". How each figure is measured, and notes on"
	echo "them: [NOTES.md](NOTES.md)."
	echo
	machine
	for section in start density apps userns applies hotrestart registry import network ingress compose build https docker gitops; do
		echo
		cat "$OUT/$section.md"
	done
} >bench/RESULTS.md
echo "== wrote bench/RESULTS.md"
