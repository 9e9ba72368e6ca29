#!/usr/bin/env bash
# make test: every check, phase by phase. Each phase's wall time goes to
# .run/test-phases.tsv (name, seconds, exit status) and a table closes the
# run; make bench reads the same file. The arm64 package (a release build
# that needs no test result) is built in the background at the lowest CPU
# priority from the start, so it takes the cores the emulator suites leave
# idle; its size check and deploy metadata are checked at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
CARGO=${CARGO:-cargo}
mkdir -p .run
phases=.run/test-phases.tsv
: > "$phases"
t_start=$(date +%s.%N)

elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }

phase() {
  local name=$1; shift
  local t0 rc
  t0=$(date +%s.%N)
  echo "==> $name: $*"
  "$@"; rc=$?
  printf '%s\t%s\t%s\n' "$name" "$(elapsed "$t0")" "$rc" >> "$phases"
  if [ "$rc" -ne 0 ]; then
    echo "==> $name failed (exit $rc)"
    finish 1
  fi
}

pkg_pid=
finish() {
  if [ -n "$pkg_pid" ] && kill -0 "$pkg_pid" 2>/dev/null; then
    kill -- -"$pkg_pid" 2>/dev/null
  fi
  printf '%s\t%s\t%s\n' "total" "$(elapsed "$t_start")" "$1" >> "$phases"
  echo "==> make test phases (seconds):"
  column -t -s $'\t' "$phases" | sed 's/^/    /'
  exit "$1"
}

phase tools "$MAKE" tools
# The package build, in its own process group so a failure elsewhere stops it.
t_pkg=$(date +%s.%N)
setsid nice -n 19 "$MAKE" package-build > .run/package.log 2>&1 &
pkg_pid=$!
phase lint "$MAKE" lint
phase infra-check "$MAKE" infra-check
# What `cargo lambda watch` runs for each function (`cargo run --bin NAME`,
# with that function's own feature set): built first, so the tests that serve
# the functions locally never wait minutes on a compiler.
phase build bash -c "$CARGO build --bin responder && $CARGO build --bin webhook"
phase suites "$CARGO" test --workspace
phase fuzz "$MAKE" fuzz FUZZ_SECONDS=20
t_wait=$(date +%s.%N)
wait "$pkg_pid"; rc=$?
pkg_pid=
printf '%s\t%s\t%s\n' "package-build (background)" "$(elapsed "$t_pkg")" "$rc" >> "$phases"
printf '%s\t%s\t%s\n' "package-build (waited for)" "$(elapsed "$t_wait")" "$rc" >> "$phases"
cat .run/package.log
[ "$rc" -eq 0 ] || { echo "==> package build failed (exit $rc)"; finish 1; }
phase package "$MAKE" package
phase lambda-local "$MAKE" lambda-local
finish 0
