#!/usr/bin/env bash
# Runs the whirl server with its embedded defaults (in-memory leases), after
# making sure ffmpeg is installed. Extra arguments go to the server.
#
# The server is built, then exec'd: this script's process becomes the
# server, so SIGTERM and SIGINT from a supervisor (or Ctrl-C) reach it and
# start its graceful shutdown. (`go run` would sit in between and leave the
# server running when it is signalled.) The binary is kept in the user's
# cache directory, where the next build only relinks what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg
bin="${XDG_CACHE_HOME:-$HOME/.cache}/whirl/whirl-server"
mkdir -p "$(dirname "$bin")"
go build -o "$bin" ./server
exec "$bin" "$@"
