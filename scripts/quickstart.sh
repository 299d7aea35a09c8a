#!/bin/bash
# quickstart.sh — starts the skiff daemon (unless one is running) with its
# embedded defaults, builds the example image and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF="$PWD/bin/skiff"
ROOT="${SKIFF_ROOT:-/var/lib/skiff}"
LOG="${SKIFF_LOG:-/var/log/skiff.log}"
export SKIFF_SOCKET="${SKIFF_SOCKET:-/run/skiff/skiff.sock}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

if ! "$SKIFF" info >/dev/null 2>&1; then
	step "Starting the skiff daemon (state in $ROOT, log in $LOG)"
	mkdir -p "$(dirname "$LOG")"
	setsid "$SKIFF" daemon --root "$ROOT" >>"$LOG" 2>&1 </dev/null &
	for _ in $(seq 200); do
		"$SKIFF" info >/dev/null 2>&1 && break
		sleep 0.05
	done
fi
show "$SKIFF" info

step "Building the example image from examples/hello"
show "$SKIFF" image build -t hello examples/hello
show "$SKIFF" image ls

step "Running it once: the container's output, then its exit code"
show "$SKIFF" run --rm hello -print "hello from a container"

step "Running it as a service with limits"
"$SKIFF" rm -f hello >/dev/null 2>&1 || true
show "$SKIFF" run -d --name hello --memory 64m --cpus 0.5 --restart on-failure hello
show "$SKIFF" ps
show "$SKIFF" exec hello /hello -get http://127.0.0.1:8080/
show "$SKIFF" logs hello

step "skiff works"
cat <<MSG
The daemon keeps running in the background (log: $LOG).
Try:   bin/skiff ps -a        bin/skiff stats --no-stream     bin/skiff logs -f hello
Stop:  bin/skiff rm -f hello
MSG
