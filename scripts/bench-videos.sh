#!/usr/bin/env bash
# Compares whirl's HTTP delivery of a finished video (/v1/videos/ID.mp4)
# with nginx serving the very same cache file, and with the floor under
# whirl: Go's net/http ServeContent of that file and nothing else
# (internal/bench/servefile). All on loopback, with wrk at 50 connections:
# whole-file GETs, then 64 KiB range requests (what a seeking player asks
# for). ROUNDS rounds, each running the three in a rotated order so that
# none always goes first. Prints wrk's report for each run, then the
# median requests/s and p99 of each and the ratios between them.
# Usage: scripts/bench-videos.sh [DURATION [ROUNDS]]   (default 10s 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg nginx=nginx wrk=wrk
duration=${1:-10s}
rounds=${2:-3}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/whirl-server" ./server
go build -o "$work/whirl" ./client/cmd/whirl
go build -o "$work/servefile" ./internal/bench/servefile
# up URL: wait up to 10 s for URL to answer 2xx.
up() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return; sleep 0.1; done; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port) http_port=$(free_port) nginx_port=$(free_port) floor_port=$(free_port)
"$work/whirl-server" --addr "127.0.0.1:$grpc_port" --http-addr "127.0.0.1:$http_port" --cache-dir "$work/cache" \
	--video-rate 0 --video-inflight 0 \
	--log-format json 2>"$work/server.log" &
pids+=($!)
up "http://127.0.0.1:$http_port/"

# The default video: 720×720, 300 frames at 30 fps.
id=$("$work/whirl" --server "127.0.0.1:$grpc_port" render --seed 42 -o "$work/video.mp4" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["videoId"])')
size=$(stat -c %s "$work/video.mp4")

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	client_body_temp_path $work/nginx;
	proxy_temp_path $work/nginx;
	fastcgi_temp_path $work/nginx;
	uwsgi_temp_path $work/nginx;
	scgi_temp_path $work/nginx;
	types { video/mp4 mp4; }
	server {
		listen 127.0.0.1:$nginx_port;
		location /v1/videos/ { alias $work/cache/; etag on; add_header Cache-Control "public, max-age=31536000, immutable"; }
	}
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
up "http://127.0.0.1:$nginx_port/v1/videos/$id.mp4"
"$work/servefile" "127.0.0.1:$floor_port" "$work/cache/$id.mp4" &
pids+=($!)
up "http://127.0.0.1:$floor_port/v1/videos/$id.mp4"
for port in $nginx_port $http_port $floor_port; do
	cmp <(curl -fsS "http://127.0.0.1:$port/v1/videos/$id.mp4") "$work/video.mp4"
done

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "video: $id, $size bytes; wrk -t2 -c50 -d$duration --latency, $rounds rounds"
targets=("whirl http://127.0.0.1:$http_port" "nginx http://127.0.0.1:$nginx_port" "floor http://127.0.0.1:$floor_port")
for round in $(seq "$rounds"); do
	for i in 0 1 2; do
		set -- ${targets[$(((i + round) % 3))]}
		echo "== round $round, $1: whole file"
		wrk -t2 -c50 -d"$duration" --latency "$2/v1/videos/$id.mp4" | tee "$work/$1-whole-$round.txt"
		echo "== round $round, $1: Range: bytes=65536-131071 (64 KiB)"
		wrk -t2 -c50 -d"$duration" --latency -H "Range: bytes=65536-131071" "$2/v1/videos/$id.mp4" | tee "$work/$1-range-$round.txt"
	done
done

python3 - "$work" "$rounds" <<'PY'
import re, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def median(server, kind):
    rps, p99 = [], []
    for r in range(1, rounds + 1):
        text = open(f"{work}/{server}-{kind}-{r}.txt").read()
        rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
        v, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
        p99.append(float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit])
    return statistics.median(rps), statistics.median(p99)
print(f"medians of {rounds} rounds; floor: Go's net/http ServeContent alone")
print(f"{'request':<8} {'server':<6} {'req/s':>8} {'p99 ms':>8} {'req/s ÷ nginx':>14} {'p99 ÷ nginx':>12} {'req/s ÷ floor':>14}")
for kind in ("whole", "range"):
    n, f = median("nginx", kind), median("floor", kind)
    for server in ("whirl", "floor", "nginx"):
        rps, p99 = median(server, kind)
        print(f"{kind:<8} {server:<6} {rps:8.0f} {p99:8.2f} {rps / n[0]:14.2f} {p99 / n[1]:12.2f} {rps / f[0]:14.2f}")
PY
