#!/usr/bin/env python3
"""AWS rules moto does not enforce, enforced in every moto the suites and the
demo start (tests/moto_zygote.py installs them; `make demo` runs this file
as its moto_server). Each is AWS's documented behaviour, not a fault:

- EC2 ModifyVolume: refused with `IncorrectModificationState` while the
  volume's latest modification is still `modifying` or `optimizing`, and with
  `VolumeModificationRateExceeded` within 6 hours of the latest one that did
  not fail (the EC2 API reference: "After modifying a volume, you must wait at
  least six hours ... before you can modify the same volume"; newer pages
  allow four in a rolling 24 hours, each after the previous one completed:
  6-hour spacing keeps within both). moto accepts every one.

- DynamoDB: a conditional write is atomic (DynamoDB checks the condition and
  writes the item as one step). moto checks and writes without a lock, so two
  concurrent `PutItem ... attribute_not_exists` could both succeed on its
  threaded server: every write is serialised here.

And one harness-only route, for what a test cannot otherwise set up (moto
completes every modification at once, and dates it now):

  POST /_harness/ec2/volume-modification
  {"volume": "vol-...", "age_seconds": 7200, "state": "optimizing"}

sets the volume's latest modification's start to `age_seconds` ago and its
state (`modifying`, `optimizing`, `completed`, `failed`). Answers 200 with
the modification, or 404 when the volume has none.
"""
import datetime
import json
import sys

MIN_SPACING = datetime.timedelta(hours=6)
ROUTE = "/_harness/ec2/volume-modification"
STATES = ("modifying", "optimizing", "completed", "failed")


def _patch_modifications():
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import elastic_block_store as ebs
    from moto.core.utils import utcnow

    ebs.VolumeModification.modification_state = property(lambda self: getattr(self, "harness_state", "completed"))
    ebs.VolumeModification.progress = property(
        lambda self: 100 if getattr(self, "harness_state", "completed") == "completed" else 50)
    original = ebs.EBSBackend.modify_volume

    def modify_volume(self, volume_id, *args, **kwargs):
        volume = self.get_volume(volume_id)
        live = [m for m in volume.modifications if m.modification_state != "failed"]
        if live:
            latest = max(live, key=lambda m: m.start_time)
            if latest.modification_state in ("modifying", "optimizing"):
                raise EC2ClientError(
                    "IncorrectModificationState",
                    f"Cannot modify volume {volume_id} as it is currently being modified.")
            if utcnow() - latest.start_time < MIN_SPACING:
                raise EC2ClientError(
                    "VolumeModificationRateExceeded",
                    "You've reached the maximum modification rate per volume limit. "
                    "Wait at least 6 hours between modifications per EBS volume.")
        return original(self, volume_id, *args, **kwargs)

    ebs.EBSBackend.modify_volume = modify_volume


def _find_volume(volume_id):
    from moto.ec2.models import ec2_backends

    for account in list(ec2_backends.keys()):
        for region in list(ec2_backends[account].keys()):
            volume = ec2_backends[account][region].volumes.get(volume_id)
            if volume is not None:
                return volume
    return None


def _set_modification(body):
    from moto.core.utils import utcnow

    asked = json.loads(body or b"{}")
    volume = _find_volume(str(asked.get("volume", "")))
    if volume is None or not volume.modifications:
        return "404 Not Found", {"error": f"no modification of {asked.get('volume')!r}"}
    state = asked.get("state", "completed")
    if state not in STATES:
        return "400 Bad Request", {"error": f"state {state!r}: one of {', '.join(STATES)}"}
    latest = max(volume.modifications, key=lambda m: m.start_time)
    latest.start_time = utcnow() - datetime.timedelta(seconds=float(asked.get("age_seconds", 0)))
    latest.end_time = latest.start_time
    latest.harness_state = state
    return "200 OK", {"volume": volume.id, "target_size": latest.target_size,
                      "start_time": latest.start_time.isoformat(), "state": state}


def with_harness_route(app):
    """The WSGI app, with the harness's route in front of it."""

    def routed(environ, start_response):
        if environ.get("PATH_INFO") != ROUTE:
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        status, answer = _set_modification(environ["wsgi.input"].read(length) if length else b"")
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    return routed


def _atomic_dynamodb_writes():
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def install():
    """Enforces the rules above in this process's moto, from now on."""
    _patch_modifications()
    _atomic_dynamodb_writes()


if __name__ == "__main__":
    import moto.server

    install()
    moto.server.main(sys.argv[1:])
