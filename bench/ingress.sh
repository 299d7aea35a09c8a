#!/usr/bin/env bash
# Ingress benchmark: wrk against one replica directly and through skiff's
# ingress, nginx and Caddy (each a reverse proxy with keep-alive to the
# same replica), interleaved over several rounds, on loopback only.
# Prints a markdown report on stdout; progress goes to stderr.
#
#   bench/ingress.sh                       # defaults below
#   ROUNDS=5 DURATION=15s bench/ingress.sh
#   CADDY=/path/to/caddy bench/ingress.sh  # skip building Caddy
#
# Needs: go, wrk, nginx (nginx-light). Caddy is built from its Go module
# in a temporary directory unless CADDY names a binary.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
# Moderate load: MOD_CONNS connections, each pausing MOD_DELAY_MS between
# requests (wrk's delay() hook), so no proxy is saturated.
MOD_CONNS=${MOD_CONNS:-10}
MOD_DELAY_MS=${MOD_DELAY_MS:-5}
VHOST=hello.localhost
BASE_PORT=${BASE_PORT:-28180}
BACKEND_PORT=$BASE_PORT
SKIFF_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
CADDY_PORT=$((BASE_PORT + 3))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/skiff-ingress-bench.XXXXXX)
chmod 0711 "$T" # Apps in user namespaces reach the daemon root below it
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
log() { echo "ingress.sh: $*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is missing: $2"; exit 1; }; }
need go "install Go"
need wrk "apt-get install -y wrk"
need nginx "apt-get install -y nginx-light"

for port in $BACKEND_PORT $SKIFF_PORT $NGINX_PORT $CADDY_PORT; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		log "port $port is in use: set BASE_PORT to a free range"
		exit 1
	fi
done

wait_port() { # port name
	for _ in $(seq 200); do
		if (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	log "$2 did not listen on 127.0.0.1:$1"
	exit 1
}

# --- build -------------------------------------------------------------
cd "$ROOT"
if compgen -G "examples/hello/*.go" >/dev/null; then
	BACKEND_SRC=./examples/hello
else
	BACKEND_SRC=./bench/backend
fi
log "building the replica ($BACKEND_SRC) and the ingress (bench/ingressbench)"
CGO_ENABLED=0 go build -o "$T/hello" "$BACKEND_SRC"
CGO_ENABLED=0 go build -o "$T/ingressbench" ./bench/ingressbench

# Caddy is pinned, and its binary kept between runs (building it takes
# minutes).
CADDY_PIN=${CADDY_PIN:-v2.11.9}
CADDY_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/skiff-bench/caddy-$CADDY_PIN
if [[ -z "${CADDY:-}" && -x "$CADDY_CACHE" ]]; then
	CADDY=$CADDY_CACHE
fi
if [[ -z "${CADDY:-}" ]]; then
	log "building Caddy $CADDY_PIN from its Go module (a few minutes)"
	mkdir "$T/caddy-src"
	(
		cd "$T/caddy-src"
		go mod init caddybench >/dev/null 2>&1
		go get "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_PIN" >/dev/null 2>&1
		go build -o "$T/caddy" github.com/caddyserver/caddy/v2/cmd/caddy
	)
	mkdir -p "$(dirname "$CADDY_CACHE")"
	cp "$T/caddy" "$CADDY_CACHE"
	CADDY=$CADDY_CACHE
fi
CADDY_VERSION=$(go version -m "$CADDY" | awk '$2 == "github.com/caddyserver/caddy/v2" {print $3; exit}')

# --- start -------------------------------------------------------------
HOST=127.0.0.1 PORT=$BACKEND_PORT "$T/hello" >"$T/hello.log" 2>&1 &
PIDS+=($!)
BACKEND_PID=$!
wait_port "$BACKEND_PORT" replica

"$T/ingressbench" -listen "127.0.0.1:$SKIFF_PORT" -backend "127.0.0.1:$BACKEND_PORT" -host "$VHOST" >"$T/skiff.log" 2>&1 &
PIDS+=($!)
SKIFF_PID=$!

mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	upstream replica {
		server 127.0.0.1:$BACKEND_PORT;
		keepalive 256;
	}
	server {
		listen 127.0.0.1:$NGINX_PORT;
		location / {
			proxy_pass http://replica;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Host \$host;
			proxy_set_header X-Forwarded-Proto \$scheme;
		}
	}
}
EOF
nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -g 'daemon off;' >"$T/nginx/out.log" 2>&1 &
PIDS+=($!)
NGINX_PID=$!

cat >"$T/Caddyfile" <<EOF
{
	admin off
	auto_https off
	persist_config off
}
http://:$CADDY_PORT {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$BACKEND_PORT {
		transport http {
			keepalive 90s
			keepalive_idle_conns 256
			keepalive_idle_conns_per_host 256
		}
	}
}
EOF
XDG_DATA_HOME=$T XDG_CONFIG_HOME=$T "$CADDY" run --config "$T/Caddyfile" --adapter caddyfile >"$T/caddy.log" 2>&1 &
PIDS+=($!)
CADDY_PID=$!

wait_port "$SKIFF_PORT" "skiff ingress"
wait_port "$NGINX_PORT" nginx
wait_port "$CADDY_PORT" Caddy

declare -A PORTS=([direct]=$BACKEND_PORT [skiff]=$SKIFF_PORT [nginx]=$NGINX_PORT [caddy]=$CADDY_PORT)
# The process whose CPU time is charged to each target: the proxy (nginx
# with its workers), or for direct the replica itself.
declare -A CPU_PID=([direct]=$BACKEND_PID [skiff]=$SKIFF_PID [nginx]=$NGINX_PID [caddy]=$CADDY_PID)
TICK=$(getconf CLK_TCK)
# cpu_ticks pid: user+system ticks of pid and its children processes.
cpu_ticks() {
	local sum=0 f
	for p in $1 $(pgrep -P "$1"); do
		read -r -a f <"/proc/$p/stat" || continue
		sum=$((sum + f[13] + f[14]))
	done
	echo "$sum"
}
TARGETS=(direct skiff nginx caddy)
for t in "${TARGETS[@]}"; do
	body=$(curl -fsS -H "Host: $VHOST" "http://127.0.0.1:${PORTS[$t]}/" 2>&1) || {
		log "$t does not answer: $body"
		exit 1
	}
done

cat >"$T/moderate.lua" <<EOF
function delay() return $MOD_DELAY_MS end
EOF

# wrk_run target kind round: runs wrk, appends "kind round target rps
# p50 p90 p99 cpu" to results.txt (latencies in ms, cpu in us of the
# target's process per request).
wrk_run() {
	local target=$1 kind=$2 round=$3 out c0 c1
	c0=$(cpu_ticks "${CPU_PID[$target]}")
	if [[ $kind == full ]]; then
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "Host: $VHOST" "http://127.0.0.1:${PORTS[$target]}/")
	else
		out=$(wrk -t1 -c"$MOD_CONNS" -d"$DURATION" --latency -s "$T/moderate.lua" -H "Host: $VHOST" "http://127.0.0.1:${PORTS[$target]}/")
	fi
	c1=$(cpu_ticks "${CPU_PID[$target]}")
	echo "$out" >>"$T/wrk-$target-$kind.txt"
	# A run with errors or non-2xx answers is invalid: the round is left
	# out for every target (ratios compare targets within a round).
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
		log "$target ($kind): wrk saw errors: round $round of this kind is invalid"
		grep "Non-2xx\|Socket errors" <<<"$out" >&2
		echo "$kind $round $target $(grep "Non-2xx\|Socket errors" <<<"$out" | tr -s ' ' | tr '\n' ' ')" >>"$T/invalid.txt"
		return
	fi
	awk -v target="$target" -v kind="$kind" -v round="$round" -v ticks=$((c1 - c0)) -v tick="$TICK" '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v)-2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v)-2) + 0
			if (v ~ /s$/)  return substr(v, 1, length(v)-1) * 1000
			return v
		}
		/^ +50%/ { p50 = ms($2) }
		/^ +90%/ { p90 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/requests in/ { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%s %s %s %s %s %s %s %.1f\n", kind, round, target, rps, p50, p90, p99, ticks / tick / n * 1e6 }
	' <<<"$out" >>"$T/results.txt"
}

log "warming up"
for t in "${TARGETS[@]}"; do
	wrk -t"$THREADS" -c"$CONNS" -d2s -H "Host: $VHOST" "http://127.0.0.1:${PORTS[$t]}/" >/dev/null
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
	# Rotate the order each round so no target always runs first or last.
	order=("${TARGETS[@]:round%4}" "${TARGETS[@]:0:round%4}")
	for kind in full moderate; do
		for t in "${order[@]}"; do
			log "round $round/$ROUNDS: $t ($kind)"
			wrk_run "$t" "$kind" "$round"
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
touch "$T/invalid.txt"
if [[ -s "$T/invalid.txt" ]]; then
	awk 'NR==FNR {bad[$1" "$2]=1; next} !(($1" "$2) in bad)' "$T/invalid.txt" "$T/results.txt" >"$T/valid.txt"
	mv "$T/valid.txt" "$T/results.txt"
fi
for kind in full moderate; do
	if ! awk -v k="$kind" '$1==k {found=1} END {exit !found}' "$T/results.txt"; then
		log "every $kind round had errors: no valid figure (see $T/wrk-*-$kind.txt)"
		exit 1
	fi
done
VALID_FULL=$(awk '$1=="full" {print $2}' "$T/results.txt" | sort -u | wc -l)
VALID_MOD=$(awk '$1=="moderate" {print $2}' "$T/results.txt" | sort -u | wc -l)

# --- report ------------------------------------------------------------
# median kind target column (4=rps 5=p50 6=p90 7=p99 8=cpu)
median() {
	awk -v k="$1" -v t="$2" -v c="$3" '$1==k && $3==t {print $c}' "$T/results.txt" | sort -g |
		awk '{v[NR]=$1} END { if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}
# ratio_median kind a b column: the median over rounds of a's value over
# b's in the same round (each round runs both within seconds, so a ratio
# is less exposed to the machine's other load than two medians).
ratio_median() {
	awk -v k="$1" -v a="$2" -v b="$3" -v c="$4" '$1==k && $3==a {x[$2]=$c} $1==k && $3==b {y[$2]=$c}
		END { for (r in x) if (y[r] > 0) print x[r] / y[r] }' "$T/results.txt" | sort -g |
		awk '{v[NR]=$1} END { if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}
# added_median kind a column: the median over rounds of a's value minus
# direct's in the same round.
added_median() {
	awk -v k="$1" -v a="$2" -v c="$3" '$1==k && $3==a {x[$2]=$c} $1==k && $3=="direct" {y[$2]=$c}
		END { for (r in x) print x[r] - y[r] }' "$T/results.txt" | sort -g |
		awk '{v[NR]=$1} END { if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; }

echo "## Ingress: skiff vs nginx vs Caddy (wrk, loopback)"
echo
echo "Replica: \`$BACKEND_SRC\` (Go, GET /). Proxies with keep-alive to it:"
echo "skiff \`bench/ingressbench\` (internal/ingress, the daemon's code), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (\`worker_processes auto\`, upstream \`keepalive 256\`),"
echo "Caddy $CADDY_VERSION (\`reverse_proxy\`, 256 idle connections per host). $(nproc) CPUs shared by wrk, replica and proxy;"
echo "$(go version | awk '{print $3}'); medians of the valid ones of $ROUNDS interleaved rounds of $DURATION each ($VALID_FULL saturated, $VALID_MOD moderate: a round where any target saw a socket error or a non-2xx answer is left out); load average $LOAD_BEFORE before, $LOAD_AFTER after."
echo "CPU µs/request is the proxy's own CPU time (for direct: the replica's) divided by the requests served."
echo
echo "### Saturated: \`wrk -t$THREADS -c$CONNS -d$DURATION --latency\`"
echo
echo "| target | requests/s | vs direct | p50 ms | p90 ms | p99 ms | CPU µs/request |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
	echo "| $t | $(fmt "$(median full "$t" 4)" 0) | $(fmt "$(ratio_median full "$t" direct 4)" 2) | $(fmt "$(median full "$t" 5)" 3) | $(fmt "$(median full "$t" 6)" 3) | $(fmt "$(median full "$t" 7)" 3) | $(fmt "$(median full "$t" 8)" 1) |"
done
echo
echo "### Moderate: \`wrk -t1 -c$MOD_CONNS -d$DURATION\`, each connection pausing ${MOD_DELAY_MS} ms between requests"
echo
echo "| target | requests/s | p50 ms | p90 ms | p99 ms | p99 added vs direct ms |"
echo "|---|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
	added="–"
	[[ $t != direct ]] && added=$(fmt "$(added_median moderate "$t" 7)" 3)
	echo "| $t | $(fmt "$(median moderate "$t" 4)" 0) | $(fmt "$(median moderate "$t" 5)" 3) | $(fmt "$(median moderate "$t" 6)" 3) | $(fmt "$(median moderate "$t" 7)" 3) | $added |"
done
echo
echo "Saturated throughput, median of the per-round ratios: skiff/Caddy = $(fmt "$(ratio_median full skiff caddy 4)" 2) (target ≥ 1),"
echo "skiff/nginx = $(fmt "$(ratio_median full skiff nginx 4)" 2) (target ≥ 0.8). Moderate load: skiff adds $(fmt "$(added_median moderate skiff 7)" 3) ms at p99 (target ≤ 1 ms)."
echo
echo "<details><summary>every run (kind round target requests/s p50 p90 p99 ms, CPU µs/request)</summary>"
echo
echo '```'
cat "$T/results.txt"
echo '```'
if [[ -s "$T/invalid.txt" ]]; then
	echo
	echo "Rounds left out (kind round target wrk's error lines):"
	echo
	echo '```'
	cat "$T/invalid.txt"
	echo '```'
fi
echo "</details>"
