#!/usr/bin/env bash
# Build benchmark: `skiff image build` against `podman build --layers`
# (Debian's podman, overlay storage, runc) and BuildKit (buildkitd with
# its runc worker, built from its Go module at the version in go.mod) on
# the same Dockerfiles and contexts (bench/buildbench/testdata): a
# two-stage Go build FROM a Debian base with golang-go, and twenty small
# RUN steps FROM busybox. Cold build, no-op rebuild, one file changed,
# and the builder's memory. Prints a markdown report on stdout; progress
# goes to stderr.
#
#   bench/build.sh                     # BUILD_RUNS=3 rounds
#   BUILD_RUNS=1 bench/build.sh
#   BUILDKIT=off bench/build.sh        # leave BuildKit out
#   BUILD_DOCKERFILES=runsteps bench/build.sh
#
# Needs: go, podman, skopeo, mmdebstrap (the Debian base is made once
# from Debian's archive and kept under ~/.cache/skiff-bench, like the
# BuildKit binaries), root.
set -euo pipefail

RUNS=${BUILD_RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SKIFF=${SKIFF:-$ROOT/bin/skiff}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/skiff-bench
# Short: podman refuses a runroot path over 50 characters.
T=$(mktemp -d /tmp/skiff-bb.XXXXXX)
chmod 0711 "$T" # Apps in user namespaces reach the daemon root below it
SOCK=$T/skiff.sock
PM=$T/pm
PIDS=()
log() { echo "build.sh: $*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is missing: $2"; exit 1; }; }
need go "install Go"
need podman "apt-get install -y podman"
need skopeo "apt-get install -y skopeo"
need mmdebstrap "apt-get install -y mmdebstrap"

podman_() { CONTAINERS_CONF=$PM/containers.conf podman --root "$PM/root" --runroot "$PM/run" --storage-driver overlay "$@"; }
skiff_() { "$SKIFF" --socket "$SOCK" "$@"; }

cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -d "$PM" ] && podman_ system reset -f >/dev/null 2>&1 || true
	grep -o " $T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

if [[ ! -x $SKIFF ]]; then
	log "building skiff"
	CGO_ENABLED=0 go build -o "$T/skiff" ./cmd/skiff
	SKIFF=$T/skiff
fi
CGO_ENABLED=0 go build -o "$T/buildbench" ./bench/buildbench

# --- base images ---------------------------------------------------------

# golang_base_tar prints the path of a Debian 12 root filesystem tar with
# golang-go, made with mmdebstrap once and kept in $CACHE.
golang_base_tar() {
	local tar=$CACHE/debian-golang-bookworm.tar
	if [[ ! -s $tar ]]; then
		log "making a Debian 12 root with golang-go (mmdebstrap, a few minutes)"
		mkdir -p "$CACHE"
		mmdebstrap --quiet --variant=minbase --include=golang-go,ca-certificates bookworm "$tar.tmp" >&2
		mv "$tar.tmp" "$tar"
	fi
	echo "$tar"
}

# import_golang_base brings the Debian golang base into skiff and podman
# as localhost/debian-golang:bookworm: with `skiff image import --rootfs`
# where skiff has it, else by building `FROM scratch` + `ADD rootfs.tar /`;
# into podman with `podman import`. (scripts/base-images.sh, where
# present, makes the same image for `make base-images`.)
import_golang_base() {
	local tar
	tar=$(golang_base_tar)
	log "importing the golang base ($(du -m "$tar" | cut -f1) MB)"
	# (The help is read whole: grep -q would stop reading early, and the
	# writer's SIGPIPE fail the pipeline under pipefail.)
	if [[ $(skiff_ image import --help 2>/dev/null) == *--rootfs* ]]; then
		skiff_ image import --rootfs "$tar" localhost/debian-golang:bookworm >/dev/null
	else
		mkdir -p "$T/golang-ctx"
		ln "$tar" "$T/golang-ctx/rootfs.tar" 2>/dev/null || cp "$tar" "$T/golang-ctx/rootfs.tar"
		printf 'FROM scratch\nADD rootfs.tar /\n' >"$T/golang-ctx/Dockerfile"
		skiff_ image build -q -t localhost/debian-golang:bookworm "$T/golang-ctx" >/dev/null
		rm -rf "$T/golang-ctx"
	fi
	podman_ import -q "$tar" localhost/debian-golang:bookworm >/dev/null
}

# import_busybox builds localhost/busybox:latest (Debian's busybox-static
# and its applets) in skiff and podman from one context.
import_busybox() {
	local ctx=$T/busybox-ctx
	mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp"
	chmod 1777 "$ctx/rootfs/tmp"
	cp "$(command -v busybox)" "$ctx/rootfs/bin/busybox"
	for a in $("$ctx/rootfs/bin/busybox" --list); do
		[[ $a == busybox ]] || ln -s busybox "$ctx/rootfs/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ctx/rootfs/etc/passwd"
	printf 'root:x:0:\n' >"$ctx/rootfs/etc/group"
	printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD ["sh"]\n' >"$ctx/Dockerfile"
	skiff_ image build -q -t localhost/busybox:latest "$ctx" >/dev/null
	podman_ build -q --layers -t localhost/busybox:latest "$ctx" >/dev/null
}

# --- BuildKit --------------------------------------------------------------

BK_PIN=$(go list -m -f '{{.Version}}' github.com/moby/buildkit)
BK_CACHE=$CACHE/buildkit-$BK_PIN
BK_WHY=""
# build_buildkit builds buildkitd and buildctl from the Go module proxy
# once and keeps them in $BK_CACHE; on failure it sets BK_WHY.
build_buildkit() {
	[[ -x $BK_CACHE/buildkitd && -x $BK_CACHE/buildctl ]] && return 0
	log "building buildkitd and buildctl $BK_PIN from the Go module proxy (a few minutes)"
	mkdir -p "$T/bk-src"
	if ! (
		cd "$T/bk-src" && go mod init bkbench >/dev/null 2>&1 &&
			go get "github.com/moby/buildkit/cmd/buildkitd@$BK_PIN" "github.com/moby/buildkit/cmd/buildctl@$BK_PIN" &&
			CGO_ENABLED=0 go build -o buildkitd github.com/moby/buildkit/cmd/buildkitd &&
			CGO_ENABLED=0 go build -o buildctl github.com/moby/buildkit/cmd/buildctl
	) >"$T/bk-build.log" 2>&1; then
		BK_WHY="buildkitd $BK_PIN did not build from the Go module proxy: $(tail -1 "$T/bk-build.log")"
		return 1
	fi
	mkdir -p "$BK_CACHE"
	cp "$T/bk-src/buildkitd" "$T/bk-src/buildctl" "$BK_CACHE/"
}

# start_buildkit starts buildkitd (runc worker, overlayfs snapshotter,
# host network: no CNI setup per step) and sets BK_PID; on failure it
# sets BK_WHY.
start_buildkit() {
	"$BK_CACHE/buildkitd" --root "$T/bk" --addr "unix://$T/bk.sock" --oci-worker=true \
		--containerd-worker=false --oci-worker-net=host --oci-worker-snapshotter=overlayfs \
		>"$T/buildkitd.log" 2>&1 &
	BK_PID=$!
	PIDS+=("$BK_PID")
	for _ in $(seq 200); do
		"$BK_CACHE/buildctl" --addr "unix://$T/bk.sock" debug workers >/dev/null 2>&1 && return 0
		kill -0 "$BK_PID" 2>/dev/null || break
		sleep 0.1
	done
	BK_WHY="buildkitd did not start: $(tail -1 "$T/buildkitd.log")"
	return 1
}

# --- run -------------------------------------------------------------------

mkdir -p "$PM"
cat >"$PM/containers.conf" <<EOF
[containers]
default_ulimits=["nofile=20000:20000","nproc=32768:32768"]
[engine]
runtime="runc"
cgroup_manager="cgroupfs"
events_logger="file"
EOF

"$SKIFF" daemon --root "$T/root" --socket "$SOCK" --ingress-addr 127.0.0.1:0 >"$T/daemon.log" 2>&1 &
DPID=$!
PIDS+=("$DPID")
for _ in $(seq 600); do skiff_ info >/dev/null 2>&1 && break; sleep 0.05; done
skiff_ info >/dev/null 2>&1 || { log "the skiff daemon did not start:"; cat "$T/daemon.log" >&2; exit 1; }
SKIFF_CACHE=false
if [[ $(skiff_ image build --help 2>/dev/null) == *--no-cache* ]]; then SKIFF_CACHE=true; fi

import_busybox
import_golang_base

BK_ARGS=()
if [[ ${BUILDKIT:-on} == off ]]; then
	BK_WHY="left out (BUILDKIT=off)"
elif build_buildkit && start_buildkit; then
	log "exporting the base images to an OCI layout for BuildKit"
	skopeo copy -q "oci:$T/root/images:localhost/debian-golang:bookworm" "oci:$T/bk-layout:golang"
	skopeo copy -q "oci:$T/root/images:localhost/busybox:latest" "oci:$T/bk-layout:busybox"
	BK_ARGS=(-buildctl "$BK_CACHE/buildctl" -buildkit-addr "unix://$T/bk.sock" -buildkitd-pid "$BK_PID" -buildkit-layout "$T/bk-layout")
fi

echo "## Image builds: skiff, podman build, BuildKit"
echo
echo "Same Dockerfiles and contexts (bench/buildbench/testdata): a two-stage Go"
echo "build FROM a Debian 12 base with golang-go, and twenty RUN steps FROM busybox."
echo "podman $(podman --version | awk '{print $3}') builds with --layers, overlay storage, runc, --network none; cold ="
echo "--no-cache. skiff's layer cache: $([[ $SKIFF_CACHE == true ]] && echo "yes (cold = --no-cache)" || echo "not in this build (every build is cold)")."
if [[ -n $BK_WHY ]]; then
	echo "BuildKit: not measured: $BK_WHY"
else
	echo "BuildKit $BK_PIN: buildkitd with its runc worker (overlayfs snapshotter, host network),"
	echo "bases given as named contexts from an OCI layout, output type=image; cold = --no-cache."
fi
echo
log "timing builds ($RUNS rounds)"
"$T/buildbench" -skiff "$SKIFF" -socket "$SOCK" -daemon-pid "$DPID" -skiff-no-cache="$SKIFF_CACHE" \
	-podman-dir "$PM" -work "$T/ctx" -n "$RUNS" -dockerfiles "${BUILD_DOCKERFILES:-goapp,runsteps}" "${BK_ARGS[@]}"
