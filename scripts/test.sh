#!/usr/bin/env bash
# Runs every test whirl has, installing ffmpeg, etcd and the S3 test server first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg ffprobe=ffmpeg etcd=etcd-server chromium=chromium
need_versitygw

step() { printf '\n=== %s\n' "$*" >&2; }

step "proto: buf lint; generated code of every language up to date (scripts/generate.sh into a temporary directory)"
go tool -modfile=tools/go.mod buf lint

step "proto: no breaking change since the contract base (proto/CONTRACT_BASE)"
scripts/breaking.sh
need_packages node=nodejs npm=npm
for dir in client/web examples/node; do (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); done
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
scripts/generate.sh "$gen"
stale=0
for dir in proto client/web/src/gen examples/node/src/gen examples/python/whirl examples/python/google; do
	# proto/ also holds what is written by hand: the .proto files, the service
	# config and the contract base.
	diff -r -x '*.proto' -x 'service_config.*' -x CONTRACT_BASE -x __pycache__ "$gen/$dir" "$dir" >&2 || stale=1
done
[ "$stale" = 0 ] || { echo "generated code is stale: run scripts/generate.sh and commit" >&2; exit 1; }

step "web page: type-checked, and the bundle the server embeds up to date"
(cd client/web && npm run --silent check && npm run --silent build)
git diff --exit-code -- client/web/static || { echo "client/web/static/app.js is stale: run 'npm run build' in client/web and commit" >&2; exit 1; }

step "vet"
go vet ./...

step "unit, integration and end-to-end tests (race detector on)"
# The standalone-etcd, browser and S3 (versitygw) tests must run here, never skip.
# The client examples run in their own step below.
WHIRL_REQUIRE_ETCD=1 WHIRL_REQUIRE_CHROMIUM=1 WHIRL_REQUIRE_S3=1 go test -race -count=1 -timeout 30m -skip '^TestExamples' ./...

step "client examples in Python and Node.js against the server binary (names each verified SHA-256)"
need_debs python3-grpcio python3-protobuf
(cd examples/node && npm run --silent check)
WHIRL_PYTHON=/usr/bin/python3 WHIRL_REQUIRE_EXAMPLES=1 go test -race -count=1 -timeout 10m -v -run '^TestExamples' ./server

step "etcd lease store against real etcd servers (nested module)"
(cd internal/lease/etcdlease/etcdtest && go vet ./... && go test -race -count=1 -timeout 20m ./...)

# A count, not a duration: with -fuzztime as a duration, Go 1.26's fuzz
# coordinator can report its own deadline as a failure ("context deadline
# exceeded", golang/go#75804, fixed in Go 1.27) on a busy machine.
step "fuzz targets, ${FUZZTIME:=50000x} inputs each (seed corpora run in every go test)"
for target in $(grep -rl --include='*_test.go' '^func Fuzz' internal client | xargs -n1 dirname | sort -u); do
	for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | cut -d' ' -f2); do
		printf -- '--- %s in ./%s\n' "$name" "$target" >&2
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$target"
	done
done
