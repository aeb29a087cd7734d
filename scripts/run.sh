#!/usr/bin/env bash
# Runs the whirl server with its embedded defaults (in-memory leases), after
# making sure ffmpeg is installed. Extra arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg
exec go run ./server "$@"
