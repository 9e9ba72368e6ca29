#!/usr/bin/env bash
# make test: every check, phase by phase. Each phase's wall time goes to
# .test-run/phases.tsv (name, seconds, exit status) and a table closes the
# run; make bench reads the same file. Any failure, in the foreground or
# the background, fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
CARGO=${CARGO:-cargo}
# Not under .run, which the demo's check starts by emptying.
logs=.test-run
mkdir -p "$logs"
phases=$logs/phases.tsv
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

# Checks that need no compiled code or no test result run in the background,
# each in its own process group and log: the arm64 package build (a release
# build, at the lowest CPU priority, so it takes the cores the emulator
# suites leave idle), the template and rules checks (Python), and the fuzzer
# once the tests are built.
declare -A bg_pid bg_start
background() {
  local name=$1; shift
  bg_start[$name]=$(date +%s.%N)
  setsid "$@" > "$logs/$name.log" 2>&1 &
  bg_pid[$name]=$!
}
# Waits for a background check, prints its log, records its time.
await() {
  local name=$1 rc t0
  t0=$(date +%s.%N)
  wait "${bg_pid[$name]}"; rc=$?
  unset "bg_pid[$name]"
  echo "==> $name (background):"
  cat "$logs/$name.log"
  printf '%s\t%s\t%s\n' "$name (background)" "$(elapsed "${bg_start[$name]}")" "$rc" >> "$phases"
  printf '%s\t%s\t%s\n' "$name (waited for)" "$(elapsed "$t0")" "$rc" >> "$phases"
  if [ "$rc" -ne 0 ]; then
    echo "==> $name failed (exit $rc)"
    finish 1
  fi
}

finish() {
  for name in "${!bg_pid[@]}"; do
    kill -- -"${bg_pid[$name]}" 2>/dev/null
  done
  printf '%s\t%s\t%s\n' "total" "$(elapsed "$t_start")" "$1" >> "$phases"
  echo "==> make test phases (seconds):"
  python3 -c 'import sys
for l in open(sys.argv[1]):
    n, t, rc = l.rstrip("\n").split("\t")
    print(f"    {n:<28} {float(t):>7.1f} s  exit {rc}")' "$phases"
  exit "$1"
}

phase tools "$MAKE" tools
background package-build nice -n 19 "$MAKE" package-build
background infra-check "$MAKE" infra-check
phase lint "$MAKE" lint
# What `cargo lambda watch` runs for each function (`cargo run --bin NAME`,
# with that function's own feature set): built first, so the tests that serve
# the functions locally never wait minutes on a compiler.
phase build bash -c "$CARGO build --bin responder && $CARGO build --bin webhook"
phase suites-build "$CARGO" test --workspace --no-run
background fuzz nice -n 10 "$MAKE" fuzz FUZZ_SECONDS=20
phase suites "$CARGO" test --workspace
phase lambda-local env DEMO_PREBUILT=1 "$MAKE" lambda-local
await infra-check
await fuzz
await package-build
phase package "$MAKE" package
finish 0
