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
# lists them); a service not warmed here still works, built on first use.
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
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
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


def main(path):
    lock = open(path + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another zygote holds this socket
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
