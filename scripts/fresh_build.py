#!/usr/bin/env python3
"""Reads `cargo build --message-format json-render-diagnostics` on stdin and
fails when cargo compiled anything but the crates named on the command line.

make test builds the functions as the suites serve them (`--features
test-deps`) right after the test build: every dependency must then be fresh,
or the SDK is being compiled a second time for another feature set
(tests/deps/Cargo.toml says why).
"""
import json
import sys

allowed = set(sys.argv[1:])
rebuilt = []
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        print(line, end="")
        continue
    if msg.get("reason") == "compiler-artifact" and not msg.get("fresh", True):
        name = msg["target"]["name"]
        if name not in allowed:
            rebuilt.append(f'{name} ({msg["package_id"].rsplit("#", 1)[-1]})')
    elif msg.get("reason") == "build-finished" and not msg.get("success"):
        sys.exit("cargo build failed")
if rebuilt:
    sys.exit(
        "the functions' build with --features test-deps compiled again what the test build had built: "
        + ", ".join(rebuilt)
        + "; a test-only dependency feature is missing from tests/deps/Cargo.toml"
    )
print("functions built; every dependency was the test build's")
