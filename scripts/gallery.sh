#!/usr/bin/env bash
# Regenerates the gallery, docs/gallery/*.png and docs/gallery/README.md:
#
#   scripts/gallery.sh
#
# It builds the server and the whirl CLI, starts the server in the background
# on a free loopback port (killed when the script exits, however it exits),
# and draws every still with `whirl still`: a few seeds in both styles, and
# one curve per wheel shape (every wheel of that shape, via --shape). Stills
# need no lease and no ffmpeg. The images are small (SIZE, default 240
# pixels square) to keep the repository light, and deterministic: running
# the script again changes nothing unless rendering changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go

SIZE=${SIZE:-240}
SEEDS=(3 7 42 2024)
SHAPES=(circle ellipse square triangle tetracuspid)
# The shape gallery draws the same seed and wheel count for each shape, so
# only the wheels' outline differs.
SHAPE_SEED=8
SHAPE_WHEELS=4
OUT=docs/gallery

tmp=$(mktemp -d)
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# Built rather than `go run`: killing `go run` does not always stop the
# server it started.
echo "building server and CLI" >&2
go build -o "$tmp/whirl-server" ./server
go build -o "$tmp/whirl" ./client/cmd/whirl

# Port 0 lets the kernel pick a free port; the server logs the one it got.
"$tmp/whirl-server" --addr 127.0.0.1:0 --http-addr "" --log-format json >"$tmp/server.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 200); do
	addr=$(sed -n 's/.*"msg":"serving".*"addr":"\([^"]*\)".*/\1/p' "$tmp/server.log" | head -n 1)
	[ -n "$addr" ] && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "the server exited:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.05
done
if [ -z "$addr" ]; then
	echo "the server did not start within 10s:" >&2
	cat "$tmp/server.log" >&2
	exit 1
fi
export WHIRL_SERVER=$addr
echo "server on $addr" >&2

still() { # still FILE ARGS...: one image into the staging directory
	local file=$1
	shift
	"$tmp/whirl" still --size "$SIZE" -o "$tmp/gallery/$file" "$@" >/dev/null
	echo "  $file" >&2
}

mkdir -p "$tmp/gallery"
for seed in "${SEEDS[@]}"; do
	for style in wheels trace; do
		still "seed-$seed-$style.png" --seed "$seed" --style "$style"
	done
done
for shape in "${SHAPES[@]}"; do
	still "shape-$shape.png" --seed "$SHAPE_SEED" --wheels "$SHAPE_WHEELS" --shape "$shape" --style wheels
done

{
	echo "# Gallery"
	echo
	echo "Regenerate with \`scripts/gallery.sh\`. Each image is \`whirl still --size $SIZE\` with the flags shown."
	echo
	echo "| seed | \`--style wheels\` | \`--style trace\` |"
	echo "| --- | --- | --- |"
	for seed in "${SEEDS[@]}"; do
		echo "| \`--seed $seed\` | ![seed $seed, wheels](seed-$seed-wheels.png) | ![seed $seed, trace](seed-$seed-trace.png) |"
	done
	echo
	echo "One shape for every wheel (\`--seed $SHAPE_SEED --wheels $SHAPE_WHEELS --shape SHAPE\`):"
	echo
	row1="|" row2="|" row3="|"
	for shape in "${SHAPES[@]}"; do
		row1+=" \`$shape\` |"
		row2+=" --- |"
		row3+=" ![$shape](shape-$shape.png) |"
	done
	printf '%s\n%s\n%s\n' "$row1" "$row2" "$row3"
} >"$tmp/gallery/README.md"

mkdir -p "$OUT"
rm -f "$OUT"/*.png
cp "$tmp/gallery/"* "$OUT/"
echo "wrote $(ls "$tmp/gallery" | wc -l) files to $OUT" >&2
