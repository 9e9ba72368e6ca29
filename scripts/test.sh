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

# Seconds from $1 to $2 (default: now).
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "${2:-$(date +%s.%N)}"; }

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
# each in its own process group and log, at a lower CPU priority so that they
# take the cores the foreground leaves idle: the arm64 package build (a
# release build), the template and rules checks (Python), and the fuzzer once
# the tests are built.
declare -A bg_pid bg_start
background() {
  local name=$1 nice=$2; shift 2
  bg_start[$name]=$(date +%s.%N)
  # setsid starts a session, and with the kernel's autogroups (on here) a
  # session's CPU share is its autogroup's: a plain `nice` inside it would
  # only rank it against itself, and the package build took half the cores
  # from the test build. So the autogroup's own nice is set too, where the
  # kernel has one.
  # The end time goes to a file, so the table shows how long it took, not
  # only when it was awaited.
  rm -f "$logs/$name.end"
  BG_END="$logs/$name.end" setsid bash -c 'echo "$0" > /proc/self/autogroup 2>/dev/null
    nice -n "$0" "$@"; rc=$?; date +%s.%N > "$BG_END"; exit $rc' \
    "$nice" "$@" > "$logs/$name.log" 2>&1 &
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
  local took
  if [ -s "$logs/$name.end" ]; then
    took=$(elapsed "${bg_start[$name]}" "$(cat "$logs/$name.end")")
  else
    took=$(elapsed "${bg_start[$name]}")
  fi
  printf '%s\t%s\t%s\n' "$name (background)" "$took" "$rc" >> "$phases"
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

# The venvs, the npm tools and cargo-nextest install side by side: mostly
# unpacking, little CPU.
phase tools "$MAKE" -j4 tools nextest
background package-build 19 "$MAKE" package-build
background infra-check 10 "$MAKE" infra-check
phase lint "$CARGO" fmt --all -- --check
# Clippy lints as the suites build. `cargo clippy` is `cargo check` with
# clippy-driver as the workspace's rustc wrapper (CLIPPY_ARGS carries its
# arguments, each followed by clippy's separator); its own check of every
# dependency took 3.6 min of a new machine's run (aws-sdk-ec2's type check
# alone 109 s). The same wrapper on the test build runs every clippy lint on
# the workspace's crates as they compile, and leaves the dependencies to
# rustc, so they are compiled once. Exported for the rest of the run: cargo
# keeps the wrapper in the workspace crates' fingerprints, so the functions
# below, the suites (nextest) and cargo lambda watch reuse this build.
# `make lint` is the same check on its own. The release builds (the package,
# the fuzzer) run without it.
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The suites are built as `cargo test` builds them (nextest runs the same
# binaries), linted as they build, then run by cargo-nextest (.config/nextest.toml): every test in
# its own process, several at a time across the binaries. Doc tests are
# cargo test's alone.
phase suites-build "$CARGO" test --workspace --no-run
# The fuzzer at the foreground's priority: its 20 s are wall-clock time.
# (The fuzz crate is its own workspace, outside `cargo clippy --workspace`.)
background fuzz 0 env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS "$MAKE" fuzz FUZZ_SECONDS=20
# What `cargo lambda watch --features test-deps` runs for each function
# (`cargo run --bin NAME`, with that function's own selection), built now so
# that the tests that serve the functions never wait on a compiler. With
# that feature the dependencies are the test build's: only the functions
# themselves compile, and anything else fails the phase.
build_functions() {
  local f
  for f in responder webhook; do
    "$CARGO" build --bin "$f" --features test-deps --message-format json-render-diagnostics \
      | python3 scripts/fresh_build.py "$f" test_deps || return 1
  done
}
phase build build_functions
# Every moto the suites start records the calls made to it, for the IAM
# evaluation that follows (tests/iam/).
export FR_IAM_RECORD_DIR="$PWD/$logs/iam"
rm -rf "$FR_IAM_RECORD_DIR" && mkdir -p "$FR_IAM_RECORD_DIR"
phase suites "$CARGO" nextest run --workspace
phase iam "$MAKE" iam IAM_RECORD_DIR="$FR_IAM_RECORD_DIR"
phase doc-tests "$CARGO" test --workspace --doc
phase lambda-local env DEMO_PREBUILT=1 "$MAKE" lambda-local
await infra-check
await fuzz
await package-build
# Without the lint's wrapper, as the package was built: with it, cargo
# would build the workspace's crates again.
phase package env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS "$MAKE" package
finish 0
