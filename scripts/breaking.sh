#!/usr/bin/env bash
# Checks that the contract in proto/ is wire- and source-compatible with the
# one at the commit proto/CONTRACT_BASE names (which says when to move it),
# with the pinned buf and buf.yaml's breaking rules. Needs the repository's
# history back to that commit: a shallow clone is refused with the fix.
# Usage: scripts/breaking.sh [COMMIT]   (default: proto/CONTRACT_BASE's)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_go
base=${1:-$(grep -v '^#' proto/CONTRACT_BASE | tr -d '[:space:]')}
if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
	if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
		echo "breaking: commit $base is not in this shallow clone; run 'git fetch --unshallow' (or clone with full history)" >&2
	else
		echo "breaking: commit $base (proto/CONTRACT_BASE) is not in this repository" >&2
	fi
	exit 1
fi
base=$(git rev-parse "$base^{commit}") # buf needs the full hash
# The repository's own git directory: .git in a clone, the common one in a
# worktree (where .git is a file).
gitdir=$(git rev-parse --path-format=absolute --git-common-dir)
echo "buf breaking against $base ($(git log -1 --format='%cs %s' "$base" | cut -c1-72))" >&2
go tool -modfile=tools/go.mod buf breaking --against "$gitdir#ref=$base"
