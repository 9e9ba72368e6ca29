#!/usr/bin/env bash
# A test-only npm package set (DIR/package.json and its package-lock.json),
# installed with `npm ci` under $TOOLS_DIR/npm keyed by the lock file's
# content, and linked as DIR/node_modules: a fresh clone links it instead of
# installing again (CI keeps TOOLS_DIR under $HOME/.cache).
# Usage: scripts/npm.sh DIR
set -euo pipefail
dir=$1
tools=${TOOLS_DIR:-.tools}
mkdir -p "$tools/npm"
tools=$(cd "$tools" && pwd)
key=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-16)
target="$tools/npm/$(basename "$dir")-$key"
(
  flock 9
  if [ ! -f "$target/.complete" ]; then
    rm -rf "$target"
    mkdir -p "$target"
    cp "$dir/package.json" "$dir/package-lock.json" "$target/"
    (cd "$target" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$target/.complete"
  fi
) 9>"$tools/npm/.lock"
if [ -d "$dir/node_modules" ] && [ ! -L "$dir/node_modules" ]; then rm -rf "$dir/node_modules"; fi
ln -sfn "$target/node_modules" "$dir/node_modules"
