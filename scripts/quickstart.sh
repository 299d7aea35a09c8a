#!/bin/bash
# quickstart.sh — starts the skiff daemon (unless one is running) with its
# embedded defaults, builds the example image, runs it as a container and
# deploys it as an App with two revisions behind the ingress.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF="$PWD/bin/skiff"
ROOT="${SKIFF_ROOT:-/var/lib/skiff}"
LOG="${SKIFF_LOG:-/var/log/skiff.log}"
export SKIFF_SOCKET="${SKIFF_SOCKET:-/run/skiff/skiff.sock}"
DOCKER_SOCKET="${SKIFF_DOCKER_SOCKET:-/run/skiff/docker.sock}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
ingress() { curl -sS --retry 20 --retry-delay 0 --retry-connrefused --max-time 10 -H "Host: hello.localhost" "http://$INGRESS/"; }

if ! "$SKIFF" info >/dev/null 2>&1; then
	step "Starting the skiff daemon (state in $ROOT, log in $LOG)"
	mkdir -p "$(dirname "$LOG")"
	setsid "$SKIFF" daemon --root "$ROOT" --docker-socket "$DOCKER_SOCKET" >>"$LOG" 2>&1 </dev/null &
	for _ in $(seq 200); do
		"$SKIFF" info >/dev/null 2>&1 && break
		sleep 0.05
	done
fi
show "$SKIFF" info
INGRESS=$("$SKIFF" info -o json | sed -n 's/.*"ingressAddr": "\(.*\)".*/\1/p')

step "Building the example image from examples/hello"
show "$SKIFF" image build -t hello examples/hello
show "$SKIFF" image ls

step "Running it once: the container's output, then its exit code"
show "$SKIFF" run --rm hello -print "hello from a container"

step "Running it as a service with limits and a published port"
"$SKIFF" rm -f hello-web >/dev/null 2>&1 || true
show "$SKIFF" run -d --name hello-web --memory 64m --cpus 0.5 --restart on-failure -p 127.0.0.1:8081:8080 hello
show "$SKIFF" ps
printf '$ curl http://127.0.0.1:8081/\n'
curl -sS --retry 20 --retry-delay 0 --retry-connrefused http://127.0.0.1:8081/

step "Deploying it as an App behind the ingress ($INGRESS)"
show "$SKIFF" apply -f examples/hello/app.yaml
for _ in $(seq 100); do "$SKIFF" get apps hello | grep -q ' True ' && break; sleep 0.1; done
show "$SKIFF" get apps
printf '$ curl http://hello.localhost:%s/\n' "${INGRESS##*:}"
ingress

step "Rolling out a second revision: traffic moves once it is ready"
show "$SKIFF" apply -f examples/hello/app-v2.yaml
for _ in $(seq 100); do ingress | grep -q 'version 2' && break; sleep 0.1; done
printf '$ curl http://hello.localhost:%s/\n' "${INGRESS##*:}"
ingress
show "$SKIFF" get revisions hello

if command -v docker >/dev/null && [ -S "$DOCKER_SOCKET" ]; then
	step "The same containers through the Docker API (docker CLI, DOCKER_HOST=unix://$DOCKER_SOCKET)"
	show env DOCKER_HOST="unix://$DOCKER_SOCKET" docker ps
fi

step "skiff works"
cat <<MSG
The daemon keeps running in the background (log: $LOG).
Try:   bin/skiff describe app hello      bin/skiff traffic hello hello-00001=90 hello-00002=10
       bin/skiff rollback hello          bin/skiff logs hello        bin/skiff ps -a
       DOCKER_HOST=unix://$DOCKER_SOCKET docker run --rm -it hello -print hi
Clean: bin/skiff delete app hello && bin/skiff rm -f hello-web
MSG
