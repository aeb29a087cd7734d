#!/usr/bin/env bash
# Makes docs/page.png, the README's picture of the page mid-playback: the
# browser test that plays one animation in headless Chromium (real time,
# against the built server binary on loopback) saves the whole page while
# the video plays.
#
#   scripts/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
need_packages ffmpeg=ffmpeg chromium=chromium
WHIRL_REQUIRE_CHROMIUM=1 go test -count=1 -run '^TestBrowserPlaysWhileRendering$' ./server -args -screenshot "$PWD/docs/page.png"
echo "wrote docs/page.png" >&2
