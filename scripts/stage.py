#!/usr/bin/env python3
"""Mirrors a checkout's files into a fixed directory, by content.

cargo decides what to rebuild by modification time, and a fresh clone gives
every file a new one, so a release build from a new clone recompiles the
workspace's crates even when not a byte changed. Built from a fixed copy whose
unchanged files keep their old times, it recompiles exactly what changed.

usage: stage.py SOURCE DEST   (prints DEST)

The files are git's: tracked, and untracked but not ignored. A file is
rewritten only when its bytes differ; files no longer in SOURCE are removed.
"""

import os
import subprocess
import sys


def listed(source: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout
    # A file deleted but not yet staged is still listed as cached.
    return [p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(source, p))]


def same(a: str, b: str) -> bool:
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except FileNotFoundError:
        return False


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, dest = (os.path.abspath(p) for p in sys.argv[1:])
    files = listed(source)
    wanted = set(files)
    written = 0
    for rel in files:
        src, dst = os.path.join(source, rel), os.path.join(dest, rel)
        if same(src, dst):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = dst + ".stage-tmp"
        with open(src, "rb") as fs, open(tmp, "wb") as fd:
            fd.write(fs.read())
        os.chmod(tmp, os.stat(src).st_mode & 0o777)
        os.replace(tmp, dst)
        written += 1
    removed = 0
    for root, dirs, names in os.walk(dest, topdown=False):
        for name in names:
            path = os.path.join(root, name)
            if os.path.relpath(path, dest) not in wanted:
                os.remove(path)
                removed += 1
        if root != dest and not os.listdir(root):
            os.rmdir(root)
    print(f"staged {source} in {dest}: {written} written, {removed} removed, "
          f"{len(files) - written} unchanged", file=sys.stderr)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
