#!/usr/bin/env bash
# Generates the code of every language from proto/ with the pinned buf and
# local plugins only (no remote plugins, no network once the plugins are
# installed):
#   buf.gen.yaml                  Go, for the server and client/ (proto/whirl/v1)
#   client/web/buf.gen.yaml       TypeScript for the browser page (client/web/src/gen)
#   examples/node/buf.gen.yaml    TypeScript for Node.js (examples/node/src/gen)
#   examples/python/buf.gen.yaml  Python (examples/python/whirl/v1)
# Usage: scripts/generate.sh [OUTDIR]   (default: the repository itself; with
# OUTDIR, the same tree is written under OUTDIR instead, e.g. to compare).
set -euo pipefail
out=${1:+$(realpath -m "$1")} # before the cd: OUTDIR is relative to the caller
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages protoc=protobuf-compiler grpc_python_plugin=protobuf-compiler-grpc node=nodejs npm=npm
out=${out:-.}

# protoc-gen-es comes from each package's lock file.
for dir in client/web examples/node; do
	[ -x "$dir/node_modules/.bin/protoc-gen-es" ] || (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
for template in buf.gen.yaml client/web/buf.gen.yaml examples/node/buf.gen.yaml examples/python/buf.gen.yaml; do
	go tool -modfile=tools/go.mod buf generate --template "$template" -o "$out"
done
