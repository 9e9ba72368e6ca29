#!/usr/bin/env python3
"""moto_server, recording every request and its answer (a stand-in for
CloudTrail): one JSON line each in $FR_IAM_RECORD, written as it is
answered (the harness kills moto without warning). tests/iam/calls.py
turns the product's calls into IAM requests for the policy evaluator."""
import base64
import io
import json
import os
import sys
import threading

import moto.server

# Where the lines go: set by install().
PATH = ""
LOCK = threading.Lock()
ORIGINAL = moto.server.DomainDispatcherApplication.__call__
# Answers are kept only where they tell an account or tags (DescribeImages
# alone is megabytes).
TELLING = (b"AssumeRole", b"DescribeInstances", b"RunInstances", b"DescribeVolumes", b"CreateVolume",
           b"DescribeAutoScalingGroups", b"DescribeAutoScalingInstances")


def recording(self, environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    answered = {}

    def start(status, headers, exc_info=None):
        answered["status"] = status
        return start_response(status, headers, exc_info)

    try:
        out = b"".join(ORIGINAL(self, environ, start))
    except Exception as e:  # noqa: BLE001 (recorded, then raised again)
        # An operation moto lacks (GetCalendarState, answered by a harness
        # stand-in) raises here: the call is still the product's, recorded.
        answered["status"] = "501 not implemented in moto"
        out = b""
        failed = e
    else:
        failed = None
    target = environ.get("HTTP_X_AMZ_TARGET", "").encode()
    telling = any(b"Action=" + t + b"&" in body or body.endswith(b"Action=" + t) or target.endswith(t)
                  for t in TELLING)
    entry = {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING", ""),
        "headers": {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")},
        "body": base64.b64encode(body).decode(),
        "status": answered.get("status", ""),
        "answer": base64.b64encode(out if telling else b"").decode(),
    }
    entry["headers"]["content-type"] = environ.get("CONTENT_TYPE", "")
    line = json.dumps(entry) + "\n"
    with LOCK, open(PATH, "a") as f:
        f.write(line)
    if failed is not None:
        raise failed
    return [out]


def install(path):
    """Records every request this process's moto answers, from now on, in `path`
    (tests/moto_zygote.py calls it in each forked server)."""
    global PATH
    PATH = path
    moto.server.DomainDispatcherApplication.__call__ = recording


if __name__ == "__main__":
    install(os.environ["FR_IAM_RECORD"])
    moto.server.main(sys.argv[1:])
