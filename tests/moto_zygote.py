#!/usr/bin/env python3
"""A warm parent for the test suites' moto servers (tests/src/emulator.rs).

Starting moto_server costs about 1.4 CPU-seconds before its first answer
(importing moto and building each service's routes), and every emulator test
wants a server of its own: moto keeps one state per process. This process
pays that once: it imports moto, builds the routes of the services the
product calls, then listens on a Unix socket. Each connection asks for a
server; the zygote forks, and the child (an empty moto, as a fresh
moto_server would be) binds a free loopback port, answers "PID PORT", and
serves until the connection closes: when the test that asked drops its
handle, or dies, its server goes with it.

Usage: moto_zygote.py SOCKET. One zygote per socket (a lock beside it); it
exits after IDLE_SECONDS without a request. A request is one JSON line:
{"record": PATH or ""}: with a PATH, the server records every request and its
answer there (tests/iam/record_moto.py).
"""
import fcntl
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
import traceback

IDLE_SECONDS = 60
# The services the product and the harness call (make test's IAM recording
# lists them), by moto's backend names, which for these are also their
# botocore model names; a service not warmed here still works, built on
# first use.
SERVICES = ("ec2", "ssm", "sns", "sqs", "autoscaling", "dynamodb", "cloudwatch", "sts", "iam", "scheduler",
            "events", "logs")


def serve(conn, app, record):
    """In the forked child: one moto server until `conn` closes."""
    from werkzeug.serving import make_server
    from moto.moto_api._internal import mock_random
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    # The parent's random state would give every server the same ids.
    random.seed()
    mock_random.seed()
    # moto_server's request lines went nowhere; here they would fill the
    # zygote's log, which is for its own errors.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if record:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "iam"))
        import record_moto

        record_moto.install(record)
    import moto_rules

    server = make_server("127.0.0.1", 0, moto_rules.with_harness_route(app), threaded=True,
                         request_handler=MotoRequestHandler)
    port = server.server_port
    # What moto_server sets: some answers name the server's port.
    os.environ["MOTO_PORT"] = str(port)

    def watch():
        try:
            while conn.recv(64):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    conn.sendall(f"{os.getpid()} {port}\n".encode())
    server.serve_forever()
    os._exit(0)


# Amazon images kept of moto's catalogue (see small_ami_catalogue).
AMIS_KEPT = 8


def small_ami_catalogue(path):
    """moto loads some 1,300 Amazon images into every account and region it
    first sees, each with a snapshot it files as the account's own, so an
    account's DescribeSnapshots answered 1,300 snapshots AWS would not list
    and cost a second to serialize. A few of the same catalogue serve every
    test (they need one image to launch from); MOTO_AMIS_PATH is moto's own
    switch for this."""
    from moto.utilities.utils import load_resource

    amis = [a for a in load_resource("ec2/resources/amis.json") if a.get("platform") != "windows"]
    with open(path, "w") as f:
        json.dump(amis[:AMIS_KEPT], f)
    os.environ["MOTO_AMIS_PATH"] = path


def cache_service_models():
    """moto 5.2 reads a service's botocore model from disk for every request
    it parses or answers (a new loader each time): a fifth of its CPU in the
    suites. The model is the same for every request; read it once."""
    import functools

    import moto.core.utils as utils

    utils._load_service_model = functools.cache(utils._load_service_model)
    for service in SERVICES:
        utils.get_service_model(service)


def main(path):
    lock = open(path + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another zygote holds this socket
    # Before moto's EC2 models are imported: they read it at import.
    small_ami_catalogue(path + ".amis.json")
    cache_service_models()
    # AWS's rules moto does not enforce (tests/moto_rules.py).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import moto_rules

    moto_rules.install()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    # Each service's routes, built before any fork: what a fresh server builds
    # on its first request to that service.
    for service in SERVICES:
        app.app_instances[service] = create_backend_app(service)
    # Children are reaped by the kernel.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(IDLE_SECONDS)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                return
            conn.settimeout(10)
            try:
                request = json.loads(conn.makefile().readline() or "{}")
            except (OSError, ValueError):
                conn.close()
                continue
            conn.settimeout(None)
            if os.fork() == 0:
                listener.close()
                # The lock is the zygote's alone: a server outliving it must
                # not keep the next zygote from starting.
                lock.close()
                try:
                    serve(conn, app, request.get("record") or "")
                except BaseException:
                    traceback.print_exc()
                    sys.stderr.flush()
                os._exit(1)
            conn.close()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main(sys.argv[1])
