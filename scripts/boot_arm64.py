#!/usr/bin/env python3
"""Starts the artifact users deploy: each function's arm64 `bootstrap` from
`make package`, under user-mode emulation (Debian's qemu-user-static with
libc6-arm64-cross's loader and libraries), against a local Lambda Runtime
API on 127.0.0.1, and checks what it answers:

- responder: `events/high-cpu-ok.json` with `NOTIFY_ON_RESOLVE=false`, which
  needs no AWS call; the answer is its report (the incident, resolved).
- webhook: a Function URL request with the wrong token; the answer is 401.

And that the highest glibc symbol version each binary needs is within what
`provided.al2023` ships (2.34): a binary linked against a newer glibc builds
and passes every other test, then fails to start in Lambda.

Usage: boot_arm64.py LAMBDA_DIR   (cargo lambda's output: LAMBDA_DIR/NAME/bootstrap.zip)
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))
from run import LOOPBACK_AWS, Runtime, base_env  # noqa: E402  (bench/run.py's runtime API)

QEMU = "qemu-aarch64-static"
SYSROOT = "/usr/aarch64-linux-gnu"
OBJDUMP = "aarch64-linux-gnu-objdump"
# glibc of the provided.al2023 runtime (Amazon Linux 2023).
GLIBC_MAX = (2, 34)
# Emulated, a start takes about 60 ms here; the limit is for a loaded machine.
ANSWER_WITHIN_S = 60


def glibc_needed(binary):
    """The highest GLIBC_x.y version among the binary's dynamic symbols."""
    out = subprocess.run([OBJDUMP, "-T", str(binary)], check=True, capture_output=True, text=True).stdout
    versions = {tuple(int(x) for x in m.split(".")) for m in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", out)}
    if not versions:
        sys.exit(f"{binary}: no GLIBC symbol versions found; is it dynamically linked for aarch64?")
    return max(versions)


def boot(rt, name, binary, env, event):
    rt.reset(event)
    start = time.perf_counter()
    p = subprocess.Popen([QEMU, "-L", SYSROOT, str(binary)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Until it answers, or exits without answering, or the limit.
        until = start + ANSWER_WITHIN_S
        answered = False
        while not answered and p.poll() is None and time.perf_counter() < until:
            answered = rt.answered.wait(0.05)
    finally:
        rt.done.set()
        p.kill()
        log = p.communicate()[0].decode(errors="replace")
    if not answered:
        sys.exit(f"{name}: no answer under {QEMU} (exit status {p.returncode}); its output:\n{log}")
    if rt.error is not None:
        sys.exit(f"{name}: answered with an error: {rt.error!r}\n{log}")
    init_ms = (rt.t_next - start) * 1000
    return json.loads(rt.response), init_ms


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    lambda_dir = pathlib.Path(sys.argv[1])
    rt = Runtime()
    common = dict(base_env(), **LOOPBACK_AWS, AWS_ENDPOINT_URL="http://127.0.0.1:9",
                  AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{rt.port}", AWS_LAMBDA_FUNCTION_NAME="boot-arm64",
                  AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                  AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/boot-arm64", AWS_LAMBDA_LOG_STREAM_NAME="boot",
                  RUST_LOG="warn")
    ok = (ROOT / "events" / "high-cpu-ok.json").read_bytes()
    url = json.loads((ROOT / "events" / "function-url-alertmanager.json").read_text())
    url["headers"]["authorization"] = "Bearer not-the-token-at-all-0000"
    cases = {
        "responder": (dict(common, NOTIFY_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:oncall",
                           STATE_TABLE="first-responder-state", NOTIFY_ON_RESOLVE="false",
                           HOME_ACCOUNT_ID="123456789012"), ok),
        "webhook": (dict(common, WEBHOOK_TOKEN="a-long-local-token-for-the-boot-check",
                         RESPONDER_FUNCTION="responder"), json.dumps(url).encode()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (env, event) in cases.items():
            z = lambda_dir / name / "bootstrap.zip"
            if not z.exists():
                sys.exit(f"{z}: not built (make package-build)")
            d = pathlib.Path(tmp) / name
            zipfile.ZipFile(z).extractall(d)
            binary = d / "bootstrap"
            binary.chmod(0o755)
            needed = glibc_needed(binary)
            have = ".".join(map(str, GLIBC_MAX))
            if needed > GLIBC_MAX:
                sys.exit(f"{name}: needs GLIBC_{'.'.join(map(str, needed))}, provided.al2023 has {have}")
            answer, init_ms = boot(rt, name, binary, env, event)
            if name == "responder":
                incidents = answer.get("incidents") or []
                if not incidents or incidents[0].get("transition") != "resolved":
                    sys.exit(f"responder: not the resolved incident it was sent: {answer}")
                what = f"incident {incidents[0].get('id')} resolved"
            else:
                if answer.get("statusCode") != 401:
                    sys.exit(f"webhook: a wrong token must get 401: {answer}")
                what = "401 for a wrong token"
            print(f"{name}: arm64 bootstrap booted under {QEMU} in {init_ms:.0f} ms (emulated) and answered: "
                  f"{what}; needs GLIBC_{'.'.join(map(str, needed))} (provided.al2023: {have})")


if __name__ == "__main__":
    main()
