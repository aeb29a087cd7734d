#!/usr/bin/env bash
# Runs every test whirl has, installing ffmpeg and etcd first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg ffprobe=ffmpeg etcd=etcd-server

step() { printf '\n=== %s\n' "$*" >&2; }

step "proto: buf lint, generated code up to date"
go tool -modfile=tools/go.mod buf lint
go tool -modfile=tools/go.mod buf generate
git diff --exit-code -- proto/ || { echo "generated code is stale: run 'go tool -modfile=tools/go.mod buf generate' and commit" >&2; exit 1; }

step "web client: generated TypeScript up to date"
need_packages node=nodejs npm=npm
(cd client/web && npm ci --no-audit --no-fund --loglevel=error)
go tool -modfile=tools/go.mod buf generate --template client/web/buf.gen.yaml
stale=$(git status --porcelain -- client/web)
[ -z "$stale" ] || { echo "client/web is stale: run 'go tool -modfile=tools/go.mod buf generate --template client/web/buf.gen.yaml' and commit:" >&2; echo "$stale" >&2; exit 1; }

step "vet"
go vet ./...

step "unit, integration and end-to-end tests (race detector on)"
# The standalone-etcd end-to-end tests must run here, never skip.
WHIRL_REQUIRE_ETCD=1 go test -race -count=1 -timeout 30m ./...

step "etcd lease store against real etcd servers (nested module)"
(cd internal/lease/etcdlease/etcdtest && go vet ./... && go test -race -count=1 -timeout 20m ./...)

step "fuzz targets, ${FUZZTIME:=10s} each (seed corpora run in every go test)"
for target in $(grep -rl --include='*_test.go' '^func Fuzz' internal client | xargs -n1 dirname | sort -u); do
	for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | cut -d' ' -f2); do
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$target"
	done
done
