#!/usr/bin/env python3
"""Counts the tests a `make test` log reports: cargo test's `test result:`
lines (the doc tests) and cargo-nextest's `Summary` line (every other test).
Prints `tests: N passed, M failed`; exits 1 when nothing passed or any failed,
so a run that ran no test cannot pass for a green one. Used by .ci/run and
make bench."""

import re
import sys


def count(text: str) -> tuple[int, int]:
    passed = failed = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("test result: "):
            passed += int(re.search(r"(\d+) passed", line).group(1))
            failed += int(re.search(r"(\d+) failed", line).group(1))
        elif line.startswith("Summary [") and " run: " in line:
            tail = line.split(" run: ", 1)[1]
            for n, what in re.findall(r"(\d+) (passed|failed|timed out|exec failed)", tail):
                if what == "passed":
                    passed += int(n)
                else:
                    failed += int(n)
    return passed, failed


def main() -> int:
    with open(sys.argv[1], errors="replace") as f:
        passed, failed = count(f.read())
    print(f"tests: {passed} passed, {failed} failed")
    return 0 if passed > 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
