# Shared helpers for the demo and the local-Lambda test. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$ROOT/.run}
export PATH="$ROOT/.venv/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PIDS=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port seconds what [log]
  local deadline=$((SECONDS + $2))
  until (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "$3 did not listen on 127.0.0.1:$1 within $2 s" >&2
      [[ -z "${4:-}" ]] || show_logs "$4"
      return 1
    fi
    sleep 0.2
  done
}

# After a wait timed out: the last lines of each log named (files in
# $RUN_DIR) and where the whole of it is, then fail.
show_logs() { # log...
  local f
  for f in "$@"; do
    [[ -f "$RUN_DIR/$f" ]] || continue
    echo "--- last 30 lines of $RUN_DIR/$f ---" >&2
    tail -n 30 "$RUN_DIR/$f" >&2
  done
  echo "--- the whole logs are in $RUN_DIR/ ---" >&2
  return 1
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # The instance stand-in's sandbox runs in a process group of its own, and
  # its loop device outlives the killed processes.
  local word dev file
  if [[ -f "$RUN_DIR/standin.out" ]]; then
    while read -r word dev file; do
      [[ "$word" == holder && "$dev" =~ ^[0-9]+$ ]] && { kill -KILL -- -"$dev" 2>/dev/null || true; sleep 0.3; }
    done <"$RUN_DIR/standin.out"
    while read -r word dev file; do
      [[ "$word" == loop && "$dev" == /dev/loop* ]] || continue
      for _ in 1 2 3 4 5 6 7 8 9 10; do losetup -d "$dev" 2>/dev/null && break; sleep 0.3; done
      rm -f -- "$file"
    done <"$RUN_DIR/standin.out"
  fi
}

json_field() { # file field (first element of a list)
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v[0] if isinstance(v,list) else v)' "$1" "$2"
}

start_moto() {
  MOTO_PORT=$(free_port)
  MOTO_URL="http://127.0.0.1:$MOTO_PORT"
  # moto_server with AWS's rules moto does not enforce (tests/moto_rules.py).
  setsid "$ROOT/.venv/bin/python" "$ROOT/tests/moto_rules.py" -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN_DIR/moto.log" 2>&1 &
  PIDS+=($!)
  wait_port "$MOTO_PORT" 30 "moto_server" moto.log
}

# cargo lambda watch serves every function of the workspace; the functions
# inherit this environment, so the SDK's AWS_ENDPOINT_URL points them at moto.
# The webhook hands incidents to the responder with an asynchronous Lambda
# invoke; AWS_ENDPOINT_URL_LAMBDA points that one client at cargo lambda watch.
# SSM answered by the instance stand-in when it could start (root), else
# by the emulator itself (empty command output).
start_standin() { # fleet_json
  SSM_URL=$MOTO_URL
  setsid "$FLEET_BIN" ssm-standin "$MOTO_URL" "$1" >"$RUN_DIR/standin.out" 2>"$RUN_DIR/standin.log" &
  PIDS+=($!)
  local deadline=$((SECONDS + 60)) line=""
  until line=$(head -n 1 "$RUN_DIR/standin.out" 2>/dev/null) && [[ -n "$line" ]]; do
    if ((SECONDS >= deadline)); then echo "the instance stand-in did not start" >&2; show_logs standin.log; fi
    sleep 0.2
  done
  case "$line" in
    http://*) SSM_URL=$line; STANDIN=1 ;;
    *)
      STANDIN=0
      until SSM_URL=$(sed -n 2p "$RUN_DIR/standin.out" 2>/dev/null) && [[ "$SSM_URL" == http://* ]]; do
        if ((SECONDS >= deadline)); then echo "the SSM stand-in did not start" >&2; show_logs standin.log; fi
        sleep 0.2
      done
      echo "The instance stand-in cannot run here (${line#unavailable: }): the instance answers the disk preflight as a Xen instance prints it; other SSM commands get the emulator's empty output."
      ;;
  esac
}

# CloudWatch through the harness's bridge (moto has no CBOR, the SDK only
# CBOR), with the sample alarms and their last 3 hours seeded.
start_cloudwatch() { # fleet_json disk_path disk_fstype
  setsid "$FLEET_BIN" cloudwatch "$MOTO_URL" "$1" "$2" "$3" >"$RUN_DIR/cloudwatch.out" 2>"$RUN_DIR/cloudwatch.log" &
  PIDS+=($!)
  local deadline=$((SECONDS + 60))
  until CW_URL=$(head -n 1 "$RUN_DIR/cloudwatch.out" 2>/dev/null) && [[ -n "$CW_URL" ]]; do
    if ((SECONDS >= deadline)); then echo "the CloudWatch bridge did not start" >&2; show_logs cloudwatch.log; fi
    sleep 0.2
  done
}

# The demo's chat channel and PagerDuty stand-in (`fleet oncall`): sets
# CHAT_TOPIC_ARN, CHAT_QUEUE_URL, PAGERDUTY_EVENTS_URL and
# PAGERDUTY_ROUTING_KEY_PARAMETER for start_watch.
start_oncall() {
  setsid "$FLEET_BIN" oncall "$MOTO_URL" "$RUN_DIR/pagerduty-events.json" >"$RUN_DIR/oncall.out" 2>"$RUN_DIR/oncall.log" &
  PIDS+=($!)
  local deadline=$((SECONDS + 60)) line=""
  until line=$(head -n 1 "$RUN_DIR/oncall.out" 2>/dev/null) && [[ -n "$line" ]]; do
    if ((SECONDS >= deadline)); then echo "the on-call stand-ins did not start" >&2; show_logs oncall.log; fi
    sleep 0.2
  done
  CHAT_TOPIC_ARN=$(json_field "$RUN_DIR/oncall.out" chat_topic_arn)
  CHAT_QUEUE_URL=$(json_field "$RUN_DIR/oncall.out" chat_queue_url)
  PAGERDUTY_EVENTS_URL=$(json_field "$RUN_DIR/oncall.out" events_url)
  PAGERDUTY_ROUTING_KEY_PARAMETER=$(json_field "$RUN_DIR/oncall.out" routing_key_parameter)
}

# --ignore-changes: a file written into the checkout while the demo runs (a
# log, an editor's swap file) would otherwise restart the functions and lose
# the invocation in flight, which then never answers.
start_watch() { # topic_arn webhook_token state_table [verify_queue_url playbooks_file]
  LAMBDA_PORT=$(free_port)
  AWS_ENDPOINT_URL=$MOTO_URL AWS_ENDPOINT_URL_SSM=${SSM_URL:-$MOTO_URL} AWS_ENDPOINT_URL_CLOUDWATCH=${CW_URL:-$MOTO_URL} AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$LAMBDA_PORT" \
  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true \
  APPROVAL_KEY=${APPROVAL_KEY:-} APPROVAL_BASE_URL="http://127.0.0.1:$LAMBDA_PORT/lambda-url/webhook/" \
  CHAT_TOPIC_ARN=${CHAT_TOPIC_ARN:-} PAGERDUTY_ROUTING_KEY_PARAMETER=${PAGERDUTY_ROUTING_KEY_PARAMETER:-} PAGERDUTY_EVENTS_URL=${PAGERDUTY_EVENTS_URL:-} \
  NOTIFY_TOPIC_ARN=$1 WEBHOOK_TOKEN=$2 STATE_TABLE=$3 VERIFY_QUEUE_URL=${4:-} PLAYBOOKS_FILE=${5:-} RESPONDER_FUNCTION=responder DIAGNOSTICS_TIMEOUT_SECONDS=20 \
    setsid cargo lambda watch --ignore-changes --features test-deps --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" >"$RUN_DIR/watch.log" 2>&1 &
  PIDS+=($!)
  wait_port "$LAMBDA_PORT" 120 "cargo lambda watch" watch.log
}

# POST a file to a function's URL (as Alertmanager would), with a bearer token.
post_url() { # function token file
  python3 - "$LAMBDA_PORT" "$1" "$2" "$3" <<'PY'
import sys, time, urllib.request, urllib.error
port, fn, token, path = sys.argv[1:]
req = urllib.request.Request(f"http://127.0.0.1:{port}/lambda-url/{fn}/", data=open(path, "rb").read(), method="POST",
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
t = time.monotonic()
try:
    with urllib.request.urlopen(req, timeout=120) as r:
        status, body = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read().decode()
print(f"HTTP {status} in {1000 * (time.monotonic() - t):.0f} ms: {body}")
PY
}

# An approval link as a person uses it: open it (GET: the page, which
# changes nothing), then press its one button (the form's POST), then press
# it again. Prints what each answered.
approve_link() { # url
  python3 - "$1" <<'PY'
import html.parser, sys, urllib.error, urllib.parse, urllib.request
url = sys.argv[1]

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.fields = {}; self.action = None; self.at = None; self.text = {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form": self.action = a.get("action")
        if tag == "input": self.fields[a["name"]] = a.get("value", "")
        if a.get("id") or tag == "h1": self.at = a.get("id") or tag
    def handle_data(self, d):
        if self.at: self.text[self.at] = self.text.get(self.at, "") + d
    def handle_endtag(self, tag):
        if tag in ("h1", "p", "dd"): self.at = None

def fetch(u, data=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(u, data=data), timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

status, body = fetch(url)
p = Page(); p.feed(body)
print(f"GET  {status}: {p.text.get('h1')} {p.text.get('change')} | incident {p.text.get('incident')} | already done: {p.text.get('done')} | expires {p.text.get('expires')}")
form = urllib.parse.urljoin(url, p.action)
data = urllib.parse.urlencode(p.fields).encode()
for n in ("press", "again"):
    status, body = fetch(form, data)
    r = Page(); r.feed(body)
    print(f"POST {status} ({n}): {r.text.get('h1')}: {r.text.get('result')}")
PY
}

invoke() { # function event_file
  cargo lambda invoke "$1" --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --data-file "$2"
}

# The real Alertmanager on 127.0.0.1 (clustering off), one webhook receiver:
# the webhook function's URL, with the bearer token from a file.
start_alertmanager() { # webhook_token
  AM_PORT=$(free_port)
  mkdir -p "$RUN_DIR/alertmanager"
  umask 077; printf '%s' "$1" >"$RUN_DIR/alertmanager/token"; umask 022
  cat >"$RUN_DIR/alertmanager/alertmanager.yml" <<YML
route:
  receiver: first-responder
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: first-responder
    webhook_configs:
      - url: "http://127.0.0.1:$LAMBDA_PORT/lambda-url/webhook/"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: "$RUN_DIR/alertmanager/token"
YML
  setsid prometheus-alertmanager --config.file="$RUN_DIR/alertmanager/alertmanager.yml" \
    --storage.path="$RUN_DIR/alertmanager/data" --web.listen-address="127.0.0.1:$AM_PORT" \
    --cluster.listen-address= --log.level=debug >"$RUN_DIR/alertmanager.log" 2>&1 &
  PIDS+=($!)
  wait_port "$AM_PORT" 30 "alertmanager" alertmanager.log
}
