#!/usr/bin/env bash
# Compares whirl's HTTP delivery of a finished video (/v1/videos/ID.mp4)
# with nginx serving the very same cache file, both on loopback, with wrk
# at 50 connections: whole-file GETs, then 64 KiB range requests (what a
# seeking player asks for). Prints wrk's report for each, with latency
# percentiles. Usage: scripts/bench-videos.sh [DURATION]   (default 15s)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg nginx=nginx wrk=wrk
duration=${1:-15s}
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port) http_port=$(free_port) nginx_port=$(free_port)
"$work/whirl-server" --addr "127.0.0.1:$grpc_port" --http-addr "127.0.0.1:$http_port" --cache-dir "$work/cache" \
	--video-rate 0 --video-inflight 0 \
	--log-format json 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$http_port/" && break; sleep 0.1; done

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
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$nginx_port/v1/videos/$id.mp4" && break; sleep 0.1; done
cmp <(curl -fsS "http://127.0.0.1:$nginx_port/v1/videos/$id.mp4") "$work/video.mp4"
cmp <(curl -fsS "http://127.0.0.1:$http_port/v1/videos/$id.mp4") "$work/video.mp4"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "video: $id, $size bytes; wrk -t2 -c50 -d$duration --latency"
for target in "whirl http://127.0.0.1:$http_port" "nginx http://127.0.0.1:$nginx_port"; do
	set -- $target
	echo "== $1: whole file"
	wrk -t2 -c50 -d"$duration" --latency "$2/v1/videos/$id.mp4"
	echo "== $1: Range: bytes=65536-131071 (64 KiB)"
	wrk -t2 -c50 -d"$duration" --latency -H "Range: bytes=65536-131071" "$2/v1/videos/$id.mp4"
done
