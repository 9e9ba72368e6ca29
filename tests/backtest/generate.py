#!/usr/bin/env python3
"""A month of alarm history for `first-responder backtest`, shaped exactly
like `aws cloudwatch describe-alarm-history --history-item-type StateUpdate
--output json` (newest first, as the CLI prints it), the five alarms'
definitions as `aws cloudwatch describe-alarms --output json` prints them,
and a file of Alertmanager webhook payloads (one per line).

    generate.py OUTDIR GROUP_INSTANCE BATCH_INSTANCE [START_DAY]

The schedule is fixed (no randomness), so the counts the limits imply can be
worked out by hand; cli/tests/cli/backtest.rs checks them, and its comments
show the working. Times are UTC; day 0 is START_DAY (default 2026-10-29).
"""

import datetime as dt
import json
import pathlib
import sys

ACCOUNT = "123456789012"
REGION = "us-east-1"


def arn(name):
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def alarms(group_instance, batch_instance):
    def alarm(name, namespace, metric, dims, threshold, stat="Average", desc=""):
        return {
            "AlarmName": name,
            "AlarmArn": arn(name),
            "AlarmDescription": desc,
            "ActionsEnabled": True,
            "OKActions": [],
            "AlarmActions": [],
            "InsufficientDataActions": [],
            "StateValue": "OK",
            "MetricName": metric,
            "Namespace": namespace,
            "Statistic": stat,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        }

    return [
        alarm("web-high-cpu", "AWS/EC2", "CPUUtilization", [("InstanceId", group_instance)], 80.0,
              desc="CPU of one web instance above 80%"),
        alarm("web-cpu-storm", "AWS/EC2", "CPUUtilization", [("InstanceId", group_instance)], 90.0,
              desc="A flapping copy of web-high-cpu"),
        alarm("web-disk-full", "CWAgent", "disk_used_percent",
              [("InstanceId", group_instance), ("path", "/"), ("device", "xvda1"), ("fstype", "xfs")],
              90.0, stat="Maximum"),
        alarm("web-service-down", "AWS/EC2", "StatusCheckFailed", [("InstanceId", group_instance)], 1.0,
              stat="Maximum"),
        alarm("batch-high-cpu", "AWS/EC2", "CPUUtilization", [("InstanceId", batch_instance)], 80.0),
    ]


def stamp(t):
    # The CLI prints times with microseconds and +00:00.
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def reason_data(t, value, threshold):
    q = t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    start = (t - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:00.000+0000")
    return {
        "version": "1.0",
        "queryDate": q,
        "startDate": start,
        "statistic": "Average",
        "period": 300,
        "recentDatapoints": [value],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": start, "sampleCount": 5.0, "value": value}],
    }


def item(name, t, old, new, value, threshold):
    verb = "greater than or equal to" if new == "ALARM" else "not greater than or equal to"
    when = (t - dt.timedelta(minutes=5)).strftime("%d/%m/%y %H:%M:%S")
    reason = (f"Threshold Crossed: 1 out of the last 1 datapoints [{value} ({when})] was {verb} "
              f"the threshold ({threshold}) (minimum 1 datapoint for {old} -> {new} transition).")
    data = {
        "version": "1.0",
        "oldState": {"stateValue": old, "stateReason": "previous state"},
        "newState": {"stateValue": new, "stateReason": reason,
                     "stateReasonData": reason_data(t, value, threshold)},
    }
    return {
        "AlarmName": name,
        "AlarmType": "MetricAlarm",
        "Timestamp": stamp(t),
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old} to {new}",
        "HistoryData": json.dumps(data),
    }


def schedule(day0):
    """(alarm, time, value, threshold) of every change into ALARM."""
    d = lambda n, h, m=0: day0 + dt.timedelta(days=n, hours=h, minutes=m)
    out = []
    # web-high-cpu: twice a day for 30 days (60), 12 hours apart: nothing
    # holds it back.
    for n in range(30):
        for h in (0, 12):
            out.append(("web-high-cpu", d(n, h), 95.3, 80.0))
    # web-cpu-storm: 5 bursts of 10, two minutes apart (50).
    for n in (1, 7, 13, 19, 25):
        for k in range(10):
            out.append(("web-cpu-storm", d(n, 6, 2 * k), 97.0, 90.0))
    # web-disk-full: 10 bursts of 3, a minute apart, right after
    # web-high-cpu's noon transition (30).
    for n in range(2, 30, 3):
        for k in (1, 2, 3):
            out.append(("web-disk-full", d(n, 12, k), 97.2, 90.0))
    # web-service-down: daily at 03:00 (30).
    for n in range(30):
        out.append(("web-service-down", d(n, 3), 1.0, 1.0))
    # batch-high-cpu: an instance without the opt-in tag, twice a day for
    # 20 days (40).
    for n in range(20):
        for h in (9, 21):
            out.append(("batch-high-cpu", d(n, h), 99.0, 80.0))
    return out


def history(day0):
    items = []
    for name, t, value, threshold in schedule(day0):
        items.append(item(name, t, "OK", "ALARM", value, threshold))
        # Each recovers 4 minutes later: ALARM -> OK is not replayed.
        items.append(item(name, t + dt.timedelta(minutes=4), "ALARM", "OK", threshold / 2, threshold))
    # Noise that is not a change into ALARM.
    items.append(item("web-high-cpu", day0 - dt.timedelta(hours=1), "INSUFFICIENT_DATA", "OK", 10.0, 80.0))
    items.sort(key=lambda i: i["Timestamp"], reverse=True)
    return {"AlarmHistoryItems": items}


def alertmanager(day0):
    """Two occurrences of an alert no playbook handles, one of them sent
    again at repeat_interval, and its resolution: 2 transitions."""
    def payload(status, starts, ends="0001-01-01T00:00:00Z"):
        alert = {
            "status": status,
            "labels": {"alertname": "NodeClockSkew", "instance": "10.0.1.5:9100", "job": "node-exporter",
                       "severity": "warning"},
            "annotations": {"summary": "Clock skew detected"},
            "startsAt": starts,
            "endsAt": ends,
            "generatorURL": "http://prometheus.local/graph",
            "fingerprint": "5ef77f1f8c0dda9a",
        }
        return {
            "version": "4",
            "groupKey": "{}:{alertname=\"NodeClockSkew\"}",
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "first-responder",
            "groupLabels": {"alertname": "NodeClockSkew"},
            "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager.local",
            "alerts": [alert],
        }

    first = (day0 + dt.timedelta(days=4, hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    second = (day0 + dt.timedelta(days=16, hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ended = (day0 + dt.timedelta(days=4, hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [payload("firing", first), payload("firing", first), payload("resolved", first, ended),
            payload("firing", second)]


def main(argv):
    out = pathlib.Path(argv[1])
    group_instance, batch_instance = argv[2], argv[3]
    day0 = dt.datetime.fromisoformat(argv[4] if len(argv) > 4 else "2026-10-29").replace(tzinfo=dt.timezone.utc)
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history(day0), indent=4) + "\n")
    (out / "alarms.json").write_text(
        json.dumps({"MetricAlarms": alarms(group_instance, batch_instance), "CompositeAlarms": []}, indent=4) + "\n")
    (out / "alertmanager.jsonl").write_text("".join(json.dumps(p) + "\n" for p in alertmanager(day0)))
    n = len(schedule(day0))
    print(f"{n} transitions into ALARM over 30 days for 5 alarms, 2 Alertmanager occurrences")


if __name__ == "__main__":
    main(sys.argv)
