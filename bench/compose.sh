#!/bin/bash
# compose.sh SKIFF SOCKET ROOT WORK RUNS — `compose up -d --wait` and
# `compose down` of a 10-service project and of examples/guestbook, with
# skiff compose and podman-compose side by side, as a markdown table of
# medians. The guestbook needs localhost/debian-postgresql:bookworm in
# skiff's store (a Debian root with PostgreSQL; see
# examples/guestbook/README.md): without it that row is left out.
#
# podman-compose 1.0.3 has no --wait and treats every depends_on
# condition as service_started, so its `up -d` returns before the
# healthchecks pass: its guestbook figure is a lower bound.
set -euo pipefail
SKIFF=$1 SOCKET=$2 ROOT=$3 WORK=$4 RUNS=${5:-5}
sk() { "$SKIFF" --socket "$SOCKET" "$@"; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "compose bench: $* failed" >&2; "$@" >&2 || true; exit 1; }; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# podman with a private store and the settings this machine needs.
PM="$WORK/podman-compose"
mkdir -p "$PM"
cat >"$PM/containers.conf" <<'CONF'
[containers]
default_ulimits=["nofile=20000:20000","nproc=32768:32768"]
[engine]
runtime="runc"
cgroup_manager="cgroupfs"
events_logger="file"
CONF
cat >"$PM/podman" <<WRAP
#!/bin/sh
CONTAINERS_CONF="$PM/containers.conf" exec podman --root "$PM/root" --runroot "$PM/run" --storage-driver overlay "\$@"
WRAP
chmod +x "$PM/podman"
to_podman() { # IMAGE: copy an image of skiff's store into podman's
	skopeo copy -q "oci:$ROOT/images:$1" "oci-archive:$PM/img.tar:$1" >/dev/null
	"$PM/podman" load -q -i "$PM/img.tar" >/dev/null
	rm -f "$PM/img.tar"
}

# The 10-service project: one service the nine others depend on.
TEN="$WORK/ten"
mkdir -p "$TEN"
{
	echo "name: ten"
	echo "services:"
	echo "  s1:"
	echo "    image: localhost/busybox:latest"
	echo "    command: [\"sleep\", \"3600\"]"
	echo "    stop_signal: SIGKILL"
	for i in $(seq 2 10); do
		echo "  s$i:"
		echo "    image: localhost/busybox:latest"
		echo "    command: [\"sleep\", \"3600\"]"
		echo "    stop_signal: SIGKILL"
		echo "    depends_on: [s1]"
	done
} >"$TEN/compose.yaml"
to_podman localhost/busybox:latest

measure() { # NAME DIR: rows for skiff and podman-compose
	local name=$1 dir=$2 up=() down=() pup=() pdown=()
	for _ in $(seq "$RUNS"); do
		up+=("$(ms sk compose -f "$dir/compose.yaml" up -d --wait)")
		down+=("$(ms sk compose -f "$dir/compose.yaml" down)")
		pup+=("$(ms podman-compose --podman-path "$PM/podman" -f "$dir/podman-compose.yaml" up -d)")
		pdown+=("$(ms podman-compose --podman-path "$PM/podman" -f "$dir/podman-compose.yaml" down)")
	done
	local su sd pu pd
	su=$(printf '%s\n' "${up[@]}" | median) sd=$(printf '%s\n' "${down[@]}" | median)
	pu=$(printf '%s\n' "${pup[@]}" | median) pd=$(printf '%s\n' "${pdown[@]}" | median)
	echo "| $name | up -d --wait | ${su} ms | ${pu} ms | $(awk -v a="$su" -v b="$pu" 'BEGIN {printf "%.2f", a/b}') |"
	echo "| $name | down | ${sd} ms | ${pd} ms | $(awk -v a="$sd" -v b="$pd" 'BEGIN {printf "%.2f", a/b}') |"
}

echo "Medians of $RUNS runs each, interleaved; podman-compose $(podman-compose version 2>/dev/null | awk '/podman-compose/ {print $NF}' | head -1) with a private store."
echo
echo "| project | step | skiff compose | podman-compose | skiff / podman |"
echo "|---|---|---|---|---|"
cp "$TEN/compose.yaml" "$TEN/podman-compose.yaml"
measure "10 services" "$TEN"

if sk image inspect localhost/debian-postgresql:bookworm >/dev/null 2>&1; then
	GB="$WORK/guestbook"
	cp -r examples/guestbook "$GB"
	CGO_ENABLED=0 go build -C "$GB/web" -o guestbook .
	GUESTBOOK_PORT=18088 sk compose -f "$GB/compose.yaml" build >/dev/null 2>&1
	to_podman localhost/guestbook-db:1
	to_podman localhost/guestbook-web:1
	# podman-compose gets the same file without the build sections (it
	# would build otherwise).
	grep -v -e '^    build:' -e '^      context:' -e '^      args:' -e '^        DB_PASSWORD:' "$GB/compose.yaml" |
		sed 's/^    build: .*//' >"$GB/podman-compose.yaml"
	export GUESTBOOK_PORT=18088
	measure "guestbook (PostgreSQL + web)" "$GB"
	sk compose -f "$GB/compose.yaml" down -v >/dev/null 2>&1 || true
	"$PM/podman" volume rm -f guestbook_pgdata >/dev/null 2>&1 || true
else
	echo
	echo "(guestbook left out: localhost/debian-postgresql:bookworm is not in the store)"
fi
