#!/bin/bash
# docker.sh SKIFF WORK RUNS — `docker run --rm` of the hello image
# through skiff's Docker API (skiff daemon --docker-socket), beside
# `skiff run --rm` of the same image on the same daemon and `podman run
# --rm` (podman's own CLI and store), interleaved by hyperfine, as a
# markdown table. Target: docker ≤ 1.2× skiff, ≤ 0.5× podman.
set -euo pipefail
SKIFF=$1 WORK=$2 RUNS=${3:-30}
D="$WORK/docker-bench"
mkdir -p "$D/hello"
"$SKIFF" daemon --root "$D/root" --socket "$D/skiff.sock" --docker-socket "$D/docker.sock" --ingress-addr 127.0.0.1:0 >"$D/daemon.log" 2>&1 &
DPID=$!
trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; grep -o " $D[^ ]*" /proc/self/mountinfo | xargs -r -n1 umount -l 2>/dev/null || true' EXIT
for _ in $(seq 200); do "$SKIFF" --socket "$D/skiff.sock" info >/dev/null 2>&1 && break; sleep 0.05; done
CGO_ENABLED=0 go build -o "$D/hello/hello" ./examples/hello
cp examples/hello/Dockerfile "$D/hello/"
"$SKIFF" --socket "$D/skiff.sock" image build -q -t hello "$D/hello" >/dev/null

# podman with a private store and the settings this machine needs.
PM="$D/podman"
mkdir -p "$PM"
printf '[containers]\ndefault_ulimits=["nofile=20000:20000","nproc=32768:32768"]\n[engine]\nruntime="runc"\ncgroup_manager="cgroupfs"\nevents_logger="file"\n' >"$PM/containers.conf"
printf '#!/bin/sh\nCONTAINERS_CONF="%s/containers.conf" exec podman --root "%s/root" --runroot "%s/run" --storage-driver overlay "$@"\n' "$PM" "$PM" "$PM" >"$PM/podman"
chmod +x "$PM/podman"
skopeo copy -q "oci:$D/root/images:localhost/hello:latest" "oci-archive:$PM/hello.tar:localhost/hello:latest" >/dev/null
"$PM/podman" load -q -i "$PM/hello.tar" >/dev/null

export DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$D/docker-config"
mkdir -p "$DOCKER_CONFIG" && echo '{}' >"$DOCKER_CONFIG/config.json"
# Each command must work before it is timed.
docker run --rm hello -exit 0
"$SKIFF" --socket "$D/skiff.sock" run --rm hello -exit 0
"$PM/podman" run --rm localhost/hello:latest -exit 0
hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-markdown "$D/table.md" \
	-n "docker run --rm (skiff's Docker API)" "docker run --rm hello -exit 0" \
	-n "skiff run --rm" "$SKIFF --socket $D/skiff.sock run --rm hello -exit 0" \
	-n "podman run --rm" "$PM/podman run --rm localhost/hello:latest -exit 0" >/dev/null
cat "$D/table.md"
"$PM/podman" rm -af >/dev/null 2>&1 || true
