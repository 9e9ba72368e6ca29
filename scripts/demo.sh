#!/usr/bin/env bash
# make demo: the whole flow on the local AWS emulator, in one command.
#   moto server (AWS) <- responder under `cargo lambda watch` <- `cargo lambda invoke` with events/
# With --check it also asserts the outcome (used by `make test`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK=${1:-}
# Every run starts from an empty run directory: Alertmanager's notification
# log from an earlier run would otherwise keep it from sending the same alert
# again (repeat_interval), and stale reports could pass for new ones.
[[ -n "$RUN_DIR" && "$RUN_DIR" != / ]] && rm -rf -- "$RUN_DIR"
mkdir -p "$RUN_DIR"
trap stop_all EXIT

step() { printf '\n\033[1m>>> %s\033[0m\n' "$*"; }

FLEET_BIN=$CARGO_TARGET_DIR/debug/fleet
if [ -n "${DEMO_PREBUILT:-}" ] && [ -x "$FLEET_BIN" ]; then
  # make test built the functions (as `cargo lambda watch` runs them) and
  # the fleet tool (with the tests) moments ago.
  step "Using the functions and the fleet tool this make test built"
else
  step "Building the functions and the fleet tool (dev profile)"
  # With the test build's dependency features (tests/deps/Cargo.toml): a
  # demo after make test compiles only these three.
  cargo build -q -p responder -p webhook -p integration-tests --features responder/test-deps,webhook/test-deps --bin responder --bin webhook --bin fleet
fi

step "Starting the AWS emulator (moto $(python3 -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || echo '?')) on 127.0.0.1"
start_moto
echo "moto at $MOTO_URL"

step "Seeding a fleet: Auto Scaling group web-asg (desired 1, max 3), volumes, SNS topic with SQS subscribers"
"$FLEET_BIN" seed "$MOTO_URL" >"$RUN_DIR/fleet.json"
INSTANCE=$(json_field "$RUN_DIR/fleet.json" instances)
TOPIC=$(json_field "$RUN_DIR/fleet.json" topic_arn)
echo "instance $INSTANCE in web-asg; notifications to $TOPIC"

step "Starting the instance stand-in: SSM commands run for real in a private mount namespace (its own /tmp; an xfs data volume on a loop device at /var, holding /var/tmp and /var/log; lsblk answers as a Nitro host)"
start_standin "$RUN_DIR/fleet.json"
[[ "$STANDIN" == 1 ]] && echo "SSM at $SSM_URL (moto records every command; the stand-in runs it on $INSTANCE)"

step "Starting CloudWatch (the SDK's CBOR bridged to moto's JSON 1.0): the sample alarms and their last 3 hours of datapoints"
if [[ "$STANDIN" == 1 ]]; then start_cloudwatch "$RUN_DIR/fleet.json" /var xfs; else start_cloudwatch "$RUN_DIR/fleet.json" /data ext4; fi
echo "CloudWatch at $CW_URL"

step "Where on-call lives: a chat channel (an SNS topic, as Amazon Q Developer in chat applications subscribes one) and PagerDuty (a local stand-in of Events API v2 that validates every event)"
start_oncall
echo "chat topic $CHAT_TOPIC_ARN; PagerDuty events to $PAGERDUTY_EVENTS_URL (routing key in SSM at $PAGERDUTY_ROUTING_KEY_PARAMETER)"

step "Serving the functions locally: cargo lambda watch on 127.0.0.1 (responder + webhook)"
TOKEN="demo-token-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
# The check after a fix: 10 minutes later by default, at once in the demo.
VERIFY_QUEUE=$(json_field "$RUN_DIR/fleet.json" verify_queue_url)
sed 's/^\[high_cpu\]$/[high_cpu]\nverify_after_minutes = 0/' "$ROOT/infra/playbooks.toml" >"$RUN_DIR/playbooks.toml"
# Signs the approval links (in AWS: an SSM SecureString, APPROVAL_KEY_PARAMETER).
APPROVAL_KEY="demo-approval-key-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
start_watch "$TOPIC" "$TOKEN" "$(json_field "$RUN_DIR/fleet.json" state_table)" "$VERIFY_QUEUE" "$RUN_DIR/playbooks.toml"
echo "Lambda runtime at http://127.0.0.1:$LAMBDA_PORT"

# events/ uses a sample instance id; put the seeded one in its place.
sed "s/i-0123456789abcdef0/$INSTANCE/g" "$ROOT/events/high-cpu-alarm.json" >"$RUN_DIR/high-cpu-alarm.json"
sed "s/i-0123456789abcdef0/$INSTANCE/g" "$ROOT/events/high-cpu-ok.json" >"$RUN_DIR/high-cpu-ok.json"
# With the stand-in the data volume is a real xfs filesystem mounted at /var.
if [[ "$STANDIN" == 1 ]]; then
  sed -e "s/i-0123456789abcdef0/$INSTANCE/g" -e 's#"path": "/data"#"path": "/var"#' -e 's#"fstype": "ext4"#"fstype": "xfs"#' \
    "$ROOT/events/disk-full-alarm.json" >"$RUN_DIR/disk-full-alarm.json"
else
  sed "s/i-0123456789abcdef0/$INSTANCE/g" "$ROOT/events/disk-full-alarm.json" >"$RUN_DIR/disk-full-alarm.json"
fi
sed "s/i-0123456789abcdef0/$INSTANCE/g" "$ROOT/events/service-down-alarm.json" >"$RUN_DIR/service-down-alarm.json"
PRIVATE_IP=$(json_field "$RUN_DIR/fleet.json" private_ip)
sed "s/10\.0\.1\.5/$PRIVATE_IP/g" "$ROOT/events/alertmanager-high-cpu.json" >"$RUN_DIR/alertmanager-high-cpu.json"

show_report() {
  python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))
for i in r["incidents"]:
    print("incident", i["id"], i["kind"], "severity", i["severity"])
    c = i.get("context")
    if c:
        vals = [v for _, v in c["datapoints"]]
        lo, hi = min(vals), max(vals)
        bars = "".join("▁▂▃▄▅▆▇█"[0 if hi == lo else round((v - lo) / (hi - lo) * 7)] for v in vals[-48:])
        print("  metric  %s every %ss: %s  min %.1f max %.1f latest %.1f threshold %s, breaching since %s" % (
            c["metric"], c["period"], bars, c["min"], c["max"], c["latest"], c["threshold"], c["breach_started"]))
    f = i.get("forecast")
    if f:
        print("  forecast %+.2f points an hour, full at %s" % (f["percent_per_hour"], f["full_at"]))
    for n in i.get("notes", []):
        print("  note   ", n)
    for a in i["actions"]:
        print("  %-8s %-20s %-24s %s" % (a["status"], a["action"], a["target"], a.get("detail") or a["reason"]))
' "$1"
}

step "Alarm fires: cargo lambda invoke responder --data-file events/high-cpu-alarm.json (CPU 95.3%)"
invoke responder "$RUN_DIR/high-cpu-alarm.json" >"$RUN_DIR/alarm-report.json"
show_report "$RUN_DIR/alarm-report.json"

step "The check after the fix: the delayed message from SQS (10 minutes by default, 0 in the demo) -> cargo lambda invoke responder"
"$FLEET_BIN" sqs-event "$MOTO_URL" "$VERIFY_QUEUE" 30 >"$RUN_DIR/verify-event.json"
invoke responder "$RUN_DIR/verify-event.json" >"$RUN_DIR/verify-report.json"
python3 -c '
import json,sys
for v in json.load(open(sys.argv[1]))["verifications"]:
    print("incident %s: %s (alarm %s; fixed: %s at %s)%s" % (v["incident"], v["verdict"], v["alarm_state"], ", ".join(v["fixed"]) or "nothing", v["fixed_at"], ", escalated to the pager" if v["published"] and v["verdict"] == "still_firing" else ""))
' "$RUN_DIR/verify-report.json"

step "Disk alarm fires: cargo lambda invoke responder --data-file events/disk-full-alarm.json (97.2% used)"
invoke responder "$RUN_DIR/disk-full-alarm.json" >"$RUN_DIR/disk-report.json"
show_report "$RUN_DIR/disk-report.json"

echo; echo "A caller without the webhook's token is refused:"
post_url webhook "wrong-token-0000000000" "$RUN_DIR/alertmanager-high-cpu.json" | tee "$RUN_DIR/webhook-401.txt"
if command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; then
  step "Prometheus fires too: amtool alert add HighCPUUsage instance=$PRIVATE_IP:9100 -> Alertmanager ($(prometheus-alertmanager --version 2>&1 | head -n1 | cut -d' ' -f3)) -> webhook Function URL -> responder"
  start_alertmanager "$TOKEN"
  echo "Alertmanager at http://127.0.0.1:$AM_PORT, receiver: http://127.0.0.1:$LAMBDA_PORT/lambda-url/webhook/ with the bearer token from a file"
  amtool alert add --alertmanager.url="http://127.0.0.1:$AM_PORT" alertname=HighCPUUsage \
    instance="$PRIVATE_IP:9100" job=node-exporter severity=warning \
    --annotation=summary="High CPU usage detected" --annotation=value=95.3
  echo "waiting for Alertmanager to notify the webhook and the responder to finish..."
  "$FLEET_BIN" wait "$MOTO_URL" "$RUN_DIR/fleet.json" 3 90 || show_logs alertmanager.log watch.log moto.log
  # The responder publishes before the webhook answers Alertmanager, which
  # logs its success only then: wait for that line too.
  for _ in $(seq 1 150); do grep -q 'msg="Notify success"' "$RUN_DIR/alertmanager.log" && break; sleep 0.2; done
  grep -m1 'msg="Notify success"' "$RUN_DIR/alertmanager.log" | tee "$RUN_DIR/alertmanager-sent.txt" ||
    show_logs alertmanager.log watch.log
else
  step "Prometheus fires too (Alertmanager is not installed: the payload it would send, POSTed to the webhook's Function URL)"
  post_url webhook "$TOKEN" "$RUN_DIR/alertmanager-high-cpu.json" | tee "$RUN_DIR/webhook-202.txt"
  "$FLEET_BIN" wait "$MOTO_URL" "$RUN_DIR/fleet.json" 3 90 || show_logs watch.log moto.log
fi

step "Alarm recovers: cargo lambda invoke responder --data-file events/high-cpu-ok.json"
invoke responder "$RUN_DIR/high-cpu-ok.json" >"$RUN_DIR/ok-report.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([(a["action"],a["status"]) for a in r["incidents"][0]["actions"]])' "$RUN_DIR/ok-report.json"

step "What happened in the emulated AWS account"
"$FLEET_BIN" show "$MOTO_URL" "$RUN_DIR/fleet.json" | tee "$RUN_DIR/account.txt"

step "What on-call saw: the chat channel's messages (one thread per incident) and the PagerDuty events (one key per incident)"
"$FLEET_BIN" oncall-show "$MOTO_URL" "$CHAT_QUEUE_URL" "$RUN_DIR/pagerduty-events.json" | tee "$RUN_DIR/oncall.txt"

step "The service stops answering: cargo lambda invoke responder --data-file events/service-down-alarm.json (replacing an instance is held for a person)"
invoke responder "$RUN_DIR/service-down-alarm.json" >"$RUN_DIR/service-down-report.json"
show_report "$RUN_DIR/service-down-report.json"
APPROVE_URL=$(python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))
print(next(a["approve_url"] for a in r["incidents"][0]["actions"] if a["status"] == "awaiting_approval"))' "$RUN_DIR/service-down-report.json")
echo "approve: $APPROVE_URL"
"$FLEET_BIN" health "$MOTO_URL" "$INSTANCE" | tee "$RUN_DIR/health-before.txt"

step "The on-call opens the link from the email (a GET: the page only) and presses Approve (the form's POST), then presses it again"
approve_link "$APPROVE_URL" | tee "$RUN_DIR/approval.txt"
"$FLEET_BIN" health "$MOTO_URL" "$INSTANCE" | tee "$RUN_DIR/health-after.txt"

if [[ "$CHECK" == "--check" ]]; then
  step "Checking the outcome"
  python3 - "$RUN_DIR" "$STANDIN" <<'PY'
import json, re, sys
run = sys.argv[1]
standin = sys.argv[2] == "1"
alarm = json.load(open(f"{run}/alarm-report.json"))["incidents"][0]
ok = json.load(open(f"{run}/ok-report.json"))["incidents"][0]
account = open(f"{run}/account.txt").read()
disk = json.load(open(f"{run}/disk-report.json"))["incidents"][0]
got = [(a["action"], a["status"]) for a in disk["actions"]]
if standin:
    # /var is full, and holds /var/tmp and /var/log: cleaned, then grown.
    assert got == [("cleanup_temp", "done"), ("archive_logs", "done"), ("expand_volume", "done"), ("notify", "done")], got
else:
    # /data is full; /tmp, /var/tmp and /var/log live on /: cleaning them would free nothing there.
    assert got == [("cleanup_temp", "skipped"), ("archive_logs", "skipped"), ("expand_volume", "done"), ("notify", "done")], got
# Rising 2 points an hour: sized for 2 days more (about 41 GiB), not the rule's 30.
grown_to = re.search(r": (\d+) GiB, 1 modification\(s\) -> (\d+) GiB", account)
assert grown_to and 39 <= int(grown_to.group(1)) <= 42, account
assert disk["forecast"]["full_at"].startswith("2026-11-25T03:"), disk["forecast"]
assert alarm["context"]["metric"] == "AWS/EC2/CPUUtilization" and len(alarm["context"]["datapoints"]) == 34, alarm["context"]
# One of one 5-minute period fired it (evaluated at 02:04: the period 01:59),
# and the two before it breached too: since 01:49.
assert alarm["context"]["breach_started"] == "2026-11-25T01:49:00Z", alarm["context"]
assert "tag first-responder:purpose = before expand_volume" in account, account
got = [(a["action"], a["status"]) for a in alarm["actions"]]
want = [("snapshot", "done"), ("collect_diagnostics", "done"), ("scale_out", "done"), ("notify", "done")]
assert got == want, got
if standin:
    # What the instance really printed, and the filesystem really grown.
    diag = [a for a in alarm["actions"] if a["action"] == "collect_diagnostics"][0]
    assert "%CPU" in (diag.get("output") or ""), diag
    grown = [a for a in disk["actions"] if a["action"] == "expand_volume"][0]
    assert "/var is now" in (grown.get("detail") or ""), grown
    assert "is on NVMe disk nvme1n1 whose serial is vol" in (grown.get("detail") or ""), grown
assert [(a["action"], a["status"]) for a in ok["actions"]] == [("notify", "done")], ok
assert open(f"{run}/webhook-401.txt").read().startswith("HTTP 401"), "wrong token not refused"
import os, re
if os.path.exists(f"{run}/alertmanager-sent.txt"):
    assert 'msg="Notify success"' in open(f"{run}/alertmanager-sent.txt").read()
else:
    accepted = open(f"{run}/webhook-202.txt").read()
    assert accepted.startswith("HTTP 202") and '"duplicates":1' in accepted, accepted
ids = re.findall(r"tag first-responder:incident-id = (inc-[0-9a-f]+)", account)
am_incident = [i for i in set(ids) if i not in (alarm["id"], disk["id"])]
assert len(am_incident) == 1, ids
am_incident = am_incident[0]
# CloudWatch alarm: 1 -> 2. The Alertmanager alert (another occurrence) takes
# its own evidence but finds the group in its scale-out cooldown.
assert "web-asg: desired capacity 2" in account, account
assert "[skipped] scale_out web-asg: cooldown: scale_out of web-asg was done recently" in account, account
assert account.count("tag first-responder:incident-id = " + alarm["id"]) == 2, account
assert account.count("tag first-responder:incident-id = " + am_incident) == 2, account
assert "Subject: [ALARM] High CPU 95.3%" in account and "Subject: [OK] Resolved: web-high-cpu" in account, account
# The disk's expansion typically takes a minute: a short first page went
# out as soon as it was planned, then the report (one more notification).
assert account.count("== Notification") == 6, account
assert "Subject: [ON IT] Disk full" in account, account
assert any(n.startswith("a short first page went out") for n in disk["notes"]), disk["notes"]
assert not any("first page" in n for n in alarm["notes"]), alarm["notes"]
# The CPU and disk alarms are critical, and so is the escalation (the CPU
# alarm is still ALARM after the scale-out); the runbook labels HighCPUUsage
# a warning. The pager also takes every OK (it resolves what a page opened),
# and the disk's first page (the page opens the incident; the report lands
# on it).
assert "received 5 message(s)" in account, account
assert "    [OK] Resolved: web-high-cpu" in account, account
assert "Subject: [ESCALATION] Still firing after the fix: web-high-cpu" in account, account
assert "THE METRIC SINCE THE FIX" in account and "latest 91.0" in account, account
v = json.load(open(f"{run}/verify-report.json"))["verifications"]
assert [(x["incident"], x["verdict"], x["published"]) for x in v] == [(alarm["id"], "still_firing", True)], v
assert any(n.startswith("the fix is checked against the alarm in 0 minutes") for n in alarm["notes"]), alarm["notes"]
# One approval end to end: held, shown by a GET that changed nothing,
# carried out once by the press, refused the second time.
down = json.load(open(f"{run}/service-down-report.json"))["incidents"][0]
held = [a for a in down["actions"] if a["status"] == "awaiting_approval"]
assert [a["action"] for a in held] == ["replace_instance"], down["actions"]
assert held[0]["approve_url"].startswith("http://127.0.0.1:") and held[0]["deny_url"], held
assert open(f"{run}/health-before.txt").read().strip().endswith(": HEALTHY")
approval = open(f"{run}/approval.txt").read()
assert "GET  200: Approve this change?" in approval, approval
assert "POST 200 (press): Done:" in approval, approval
assert "POST 409 (again): Already decided" in approval, approval
assert open(f"{run}/health-after.txt").read().strip().endswith(": UNHEALTHY")
# On-call: the CPU alarm's incident opened in PagerDuty by its report,
# escalated by the check (critical), resolved by the recovery, one key; the
# disk's by its first page; every event valid; chat in one thread each.
events = json.load(open(f"{run}/pagerduty-events.json"))
assert events and all(e["invalid"] is None and e["status"] == 202 for e in events), events
cpu = [(e["event"]["event_action"], e["event"].get("payload", {}).get("severity")) for e in events if e["event"]["dedup_key"] == alarm["id"]]
assert cpu == [("trigger", "critical"), ("trigger", "critical"), ("resolve", None)], cpu
assert any(e["event"]["dedup_key"] == disk["id"] and e["event"]["payload"]["summary"].startswith("[ON IT] Disk full") for e in events), events
oncall = open(f"{run}/oncall.txt").read()
assert "INVALID" not in oncall and oncall.count("(valid)") >= 5, oncall
assert oncall.count("thread " + alarm["id"]) == 3, oncall
assert oncall.count("thread " + disk["id"]) == 2, oncall
assert "[alarm web-high-cpu (account 123456789012, us-east-1)](https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/web-high-cpu)" in oncall, oncall
print("demo check: 1 passed, 0 failed")
PY
fi
