#!/usr/bin/env bash
# HTTPS ingress benchmark: wrk over TLS (HTTP/1.1, kept-alive connections)
# through skiff's ingress and through nginx, both terminating TLS with the
# same certificate (ECDSA P-256, from skiff's local CA) and proxying to the
# same replica, interleaved over several rounds, on loopback only. Prints
# a markdown report on stdout; progress goes to stderr.
#
#   bench/https.sh
#   ROUNDS=5 DURATION=15s bench/https.sh
#
# Needs: go, wrk (built with OpenSSL, as Debian's), nginx (nginx-light).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
VHOST=hello.localhost
BASE_PORT=${BASE_PORT:-28280}
BACKEND_PORT=$BASE_PORT
SKIFF_PORT=$((BASE_PORT + 1))
SKIFF_TLS_PORT=$((BASE_PORT + 2))
NGINX_TLS_PORT=$((BASE_PORT + 3))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/skiff-https-bench.XXXXXX)
chmod 0711 "$T" # Apps in user namespaces reach the daemon root below it
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
log() { echo "https.sh: $*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is missing: $2"; exit 1; }; }
need go "install Go"
need wrk "apt-get install -y wrk"
need nginx "apt-get install -y nginx-light"

for port in $BACKEND_PORT $SKIFF_PORT $SKIFF_TLS_PORT $NGINX_TLS_PORT; do
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

cd "$ROOT"
BACKEND_SRC=./bench/backend
compgen -G "examples/hello/*.go" >/dev/null && BACKEND_SRC=./examples/hello
log "building the replica ($BACKEND_SRC) and the ingress (bench/ingressbench)"
CGO_ENABLED=0 go build -o "$T/hello" "$BACKEND_SRC"
CGO_ENABLED=0 go build -o "$T/ingressbench" ./bench/ingressbench

HOST=127.0.0.1 PORT=$BACKEND_PORT "$T/hello" >"$T/hello.log" 2>&1 &
PIDS+=($!)
wait_port "$BACKEND_PORT" replica
mkdir -p "$T/tls"
"$T/ingressbench" -listen "127.0.0.1:$SKIFF_PORT" -backend "127.0.0.1:$BACKEND_PORT" -host "$VHOST" \
	-tls-listen "127.0.0.1:$SKIFF_TLS_PORT" -tls-dir "$T/tls" >"$T/skiff.log" 2>&1 &
PIDS+=($!)
SKIFF_PID=$!
wait_port "$SKIFF_TLS_PORT" "skiff ingress (TLS)"

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
		listen 127.0.0.1:$NGINX_TLS_PORT ssl http2;
		ssl_certificate $T/tls/cert.pem;
		ssl_certificate_key $T/tls/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
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
wait_port "$NGINX_TLS_PORT" nginx

declare -A PORTS=([skiff]=$SKIFF_TLS_PORT [nginx]=$NGINX_TLS_PORT)
declare -A CPU_PID=([skiff]=$SKIFF_PID [nginx]=$NGINX_PID)
TICK=$(getconf CLK_TCK)
cpu_ticks() {
	local sum=0 f
	for p in $1 $(pgrep -P "$1"); do
		read -r -a f <"/proc/$p/stat" || continue
		sum=$((sum + f[13] + f[14]))
	done
	echo "$sum"
}
TARGETS=(skiff nginx)
for t in "${TARGETS[@]}"; do
	out=$(curl -sS --cacert "$T/tls/ca/ca.crt" --resolve "$VHOST:${PORTS[$t]}:127.0.0.1" \
		-w ' http=%{http_version}' "https://$VHOST:${PORTS[$t]}/" 2>&1) || { log "$t does not answer over HTTPS: $out"; exit 1; }
	[[ $out == *" http=2" ]] || { log "$t did not negotiate HTTP/2: $out"; exit 1; }
done

# wrk_run target round: appends "round target rps p50 p99 cpu" to results.txt.
wrk_run() {
	local target=$1 round=$2 out c0 c1
	c0=$(cpu_ticks "${CPU_PID[$target]}")
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "Host: $VHOST" "https://127.0.0.1:${PORTS[$target]}/")
	c1=$(cpu_ticks "${CPU_PID[$target]}")
	echo "$out" >>"$T/wrk-$target.txt"
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
		log "$target: wrk saw errors in round $round:"
		grep "Non-2xx\|Socket errors" <<<"$out" >&2
		echo "$round" >>"$T/invalid.txt"
		return
	fi
	awk -v target="$target" -v round="$round" -v ticks=$((c1 - c0)) -v tick="$TICK" '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v)-2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v)-2) + 0
			if (v ~ /s$/)  return substr(v, 1, length(v)-1) * 1000
			return v
		}
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/requests in/ { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%s %s %s %s %s %.1f\n", round, target, rps, p50, p99, ticks / tick / n * 1e6 }
	' <<<"$out" >>"$T/results.txt"
}

log "warming up"
for t in "${TARGETS[@]}"; do
	wrk -t"$THREADS" -c"$CONNS" -d2s -H "Host: $VHOST" "https://127.0.0.1:${PORTS[$t]}/" >/dev/null
done
for round in $(seq "$ROUNDS"); do
	order=("${TARGETS[@]:round%2}" "${TARGETS[@]:0:round%2}")
	for t in "${order[@]}"; do
		log "round $round/$ROUNDS: $t"
		wrk_run "$t" "$round"
	done
done
touch "$T/invalid.txt" "$T/results.txt"
awk 'FILENAME==ARGV[1] {bad[$1]=1; next} !($1 in bad)' "$T/invalid.txt" "$T/results.txt" >"$T/valid.txt"
if [[ ! -s "$T/valid.txt" ]]; then
	log "every round had errors: no valid figure"
	exit 1
fi
VALID=$(cut -d' ' -f1 "$T/valid.txt" | sort -u | wc -l)

# median target column (3=rps 4=p50 5=p99 6=cpu); ratio column: the
# median over rounds of skiff's value over nginx's in the same round.
median() {
	awk -v t="$1" -v c="$2" '$2==t {print $c}' "$T/valid.txt" | sort -g |
		awk '{v[NR]=$1} END { if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}
ratio() {
	awk -v c="$1" '$2=="skiff" {x[$1]=$c} $2=="nginx" {y[$1]=$c}
		END { for (r in x) if (y[r] > 0) print x[r] / y[r] }' "$T/valid.txt" | sort -g |
		awk '{v[NR]=$1} END { if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; }

echo "## HTTPS ingress: skiff vs nginx (wrk over TLS, loopback)"
echo
echo "Replica: \`$BACKEND_SRC\` (GET /), reached over kept-alive HTTP/1.1 by both proxies. TLS terminated with the"
echo "same ECDSA P-256 certificate (from internal/pki) by skiff \`bench/ingressbench -tls-listen\` (internal/ingress's ServeTLS)"
echo "and nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (\`worker_processes auto\`, \`ssl http2\`, upstream \`keepalive 256\`); both answered curl over HTTP/2 first."
echo "wrk speaks HTTP/1.1 over TLS on kept-alive connections (handshakes are not what is measured). $(nproc) CPUs shared by wrk, replica and proxy;"
echo "medians of $VALID valid of $ROUNDS interleaved rounds of \`wrk -t$THREADS -c$CONNS -d$DURATION\`."
echo
echo "| target | requests/s | p50 ms | p99 ms | CPU µs/request |"
echo "|---|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
	echo "| $t | $(fmt "$(median "$t" 3)" 0) | $(fmt "$(median "$t" 4)" 3) | $(fmt "$(median "$t" 5)" 3) | $(fmt "$(median "$t" 6)" 1) |"
done
echo
echo "Throughput, median of the per-round ratios: skiff/nginx = $(fmt "$(ratio 3)" 2) (target ≥ 0.8); p99 skiff/nginx = $(fmt "$(ratio 5)" 2);"
echo "CPU per request skiff/nginx = $(fmt "$(ratio 6)" 2) (on a loaded machine the throughput follows each proxy's share of the CPUs; this ratio moves less)."
