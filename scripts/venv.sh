#!/usr/bin/env bash
# A virtualenv with one requirements file's pinned tools, kept under
# $TOOLS_DIR/venvs and keyed by that file's content and the Python version:
# a fresh clone links it instead of installing again (CI keeps TOOLS_DIR
# under $HOME/.cache). The venv's absolute path is the same from every
# checkout, which also keeps cargo lambda's zig wrappers (named after the
# cargo-lambda executable's path) and so the package build's cache valid.
# Usage: scripts/venv.sh LINK REQUIREMENTS
set -euo pipefail
link=$1 req=$2
tools=${TOOLS_DIR:-.tools}
mkdir -p "$tools/venvs"
tools=$(cd "$tools" && pwd)
py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(sha256sum "$req" | cut -c1-16)
dir="$tools/venvs/$(basename "$link")-py$py-$key"
(
  # Two checkouts building the same venv at once wait for each other; the
  # other venvs build meanwhile (make test makes them in parallel).
  flock 9
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --disable-pip-version-check -q -r "$req"
    touch "$dir/.complete"
  fi
) 9>"$dir.lock"
# A directory left by an older Makefile is replaced by the link.
if [ -d "$link" ] && [ ! -L "$link" ]; then rm -rf "$link"; fi
ln -sfn "$dir" "$link"
touch "$link/.installed"
