//! Where on-call lives: every message of a disk incident in a chat channel
//! (Amazon Q Developer's custom notification, validated against the schema
//! written from AWS's page) in one thread; PagerDuty triggered, escalated
//! and resolved by one key through a stand-in that validates each event
//! against the Events API v2 schema; retries on 429 and 5xx; console links
//! in every notification; an Alertmanager alert's generator and silence links.

use anyhow::{Context, Result};
use first_responder::config::OnCall;
use first_responder::playbook::{DEFAULT_TEXT, Playbooks};
use harness::pagerduty::PagerDutyStandIn;
use harness::schema::{CHAT, Validator};
use harness::{APPROVAL_KEY, FleetSpec, World, drain, sample_event, status_of};
use serde_json::Value;

const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";
const KEY_PARAMETER: &str = "/first-responder/pagerduty-routing-key";

/// The chat topic with a queue subscribed, the routing key in SSM, and
/// the stand-in: the world configured to page through all three.
async fn on_call(w: &mut World) -> Result<(String, PagerDutyStandIn)> {
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let topic = sns
        .create_topic()
        .name("oncall-chat")
        .send()
        .await?
        .topic_arn()
        .context("no topic arn")?
        .to_owned();
    let queue = harness::subscribe_queue(&sns, &sqs, &topic, "oncall-chat-channel", None).await?;
    aws_sdk_ssm::Client::new(&w.sdk)
        .put_parameter()
        .name(KEY_PARAMETER)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(ROUTING_KEY)
        .send()
        .await?;
    let pd = PagerDutyStandIn::start().await?;
    w.config.oncall = OnCall {
        chat_topic_arn: Some(topic),
        pagerduty_routing_key_parameter: Some(KEY_PARAMETER.into()),
        pagerduty_events_url: pd.url.clone(),
    };
    Ok((queue, pd))
}

/// The chat channel's messages, each the custom notification itself.
async fn chat_messages(w: &World, queue: &str) -> Result<Vec<Value>> {
    drain(&w.sdk, queue)
        .await?
        .iter()
        .map(|m| serde_json::from_str(&m.message).context("a chat message is not JSON"))
        .collect()
}

/// The sample disk alarm on the root filesystem (`/`, xvda1, xfs), where
/// /tmp, /var/tmp and /var/log live.
fn root_disk(instance: &str) -> Result<String> {
    Ok(sample_event("disk-full-alarm.json", instance)?
        .replace("\"path\": \"/data\"", "\"path\": \"/\"")
        .replace("\"device\": \"xvdf\"", "\"device\": \"xvda1\"")
        .replace("\"fstype\": \"ext4\"", "\"fstype\": \"xfs\""))
}

/// The sample disk alarm's recovery: the same alarm, ALARM -> OK, later.
fn disk_ok(instance: &str) -> Result<String> {
    let mut v: Value = serde_json::from_str(&root_disk(instance)?)?;
    v["id"] = "5b0e3c52-8a0d-4f4e-9f57-1d3a3b0c6a99".into();
    v["time"] = "2026-11-25T02:34:12Z".into();
    v["detail"]["previousState"] = v["detail"]["state"].clone();
    v["detail"]["state"]["value"] = "OK".into();
    v["detail"]["state"]["timestamp"] = "2026-11-25T02:34:12.152+0000".into();
    v["detail"]["state"]["reason"] = "Threshold Crossed: 1 out of the last 1 datapoints [61.0 (25/11/26 02:29:00)] was not greater than or equal to the threshold (90.0).".into();
    Ok(v.to_string())
}

const CONSOLE: &str = "https://us-east-1.console.aws.amazon.com/";

/// A disk incident on `/`: the cleanup at once (a first page), the
/// expansion held for a person (its links in the report), the check after
/// the fix (still firing), the recovery. Chat: the four messages, one
/// thread. PagerDuty: opened, given the links, escalated, resolved, one key.
#[tokio::test]
async fn a_disk_incident_reaches_chat_in_one_thread_and_pagerduty_by_one_key() -> Result<()> {
    let mut w = World::start_with_state(FleetSpec::default()).await?;
    let (queue, pd) = on_call(&mut w).await?;
    let chat_schema = Validator::start(CHAT).await?;
    // The expansion waits for a person here, so its links are in the pages.
    w.config.playbooks = Playbooks::parse(
        "test",
        &format!(
            "{DEFAULT_TEXT}\n[scopes.everywhere]\n[scopes.everywhere.modes]\nexpand_volume = \"approve\"\n"
        ),
    )?;
    w.config.approval_key = Some(first_responder::approval::Key::new("test", APPROVAL_KEY)?);
    w.config.approval_base_url = Some("https://approve.example.invalid".into());
    let instance = w.fleet.instance().to_owned();

    // 1. It fires, on the root filesystem: the cleanup runs at once (so a
    // first page goes out), the expansion waits for a person.
    let r = w.handle(&root_disk(&instance)?).await?;
    let inc = &r.incidents[0];
    let id = inc.id.clone();
    let (st, _) = status_of(&r, "expand_volume");
    assert_eq!(st, "awaiting_approval", "{r:#?}");
    let held = inc
        .actions
        .iter()
        .find(|a| a.approve_url.is_some())
        .context("held")?;
    let (approve, deny) = (
        held.approve_url.clone().context("approve")?,
        held.deny_url.clone().context("deny")?,
    );
    let notify = inc
        .actions
        .iter()
        .find(|a| a.action.as_str() == "notify")
        .context("notify")?;
    let detail = notify.detail.clone().unwrap_or_default();
    assert!(detail.contains("chat: published to "), "{detail}");
    assert!(detail.contains("PagerDuty trigger accepted"), "{detail}");
    // The report's JSON document and email carry the console links, in
    // the alarm's own account and region.
    assert!(
        inc.links.iter().any(|l| l.href
            == format!(
                "{CONSOLE}cloudwatch/home?region=us-east-1#alarmsV2:alarm/web-data-disk-full"
            )
            && l.text == "alarm web-data-disk-full (account 123456789012, us-east-1)"),
        "{:?}",
        inc.links
    );
    assert!(inc.links.iter().any(|l| {
        l.href
            .ends_with(&format!("#InstanceDetails:instanceId={instance}"))
    }));
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(!inbox.is_empty());
    for m in &inbox {
        let doc = m.document()?;
        let text = doc["text"].as_str().unwrap_or_default();
        assert!(text.contains("\nLINKS\n- alarm web-data-disk-full (account 123456789012, us-east-1): https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/web-data-disk-full"), "{text}");
        assert!(
            doc["links"].as_array().is_some_and(|l| !l.is_empty()),
            "{doc:#}"
        );
    }

    // 2. The check after the fix: the alarm is still in ALARM.
    let dims = [
        ("InstanceId", instance.as_str()),
        ("path", "/data"),
        ("device", "xvdf"),
        ("fstype", "ext4"),
    ];
    let alarm_in = |state: &'static str| {
        harness::put_alarm(
            &w.engine.aws.cloudwatch,
            "web-data-disk-full",
            "CWAgent",
            "disk_used_percent",
            &dims,
            300,
            90.0,
            state,
        )
    };
    alarm_in("ALARM").await?;
    let v = w.check(&id, chrono::Utc::now()).await?;
    assert_eq!(v.verdict.as_str(), "still_firing", "{v:?}");
    let check = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(check.len(), 1, "{check:?}");
    assert!(check[0].text()?.contains(&format!(
        "{CONSOLE}cloudwatch/home?region=us-east-1#alarmsV2:alarm/web-data-disk-full"
    )));

    // 3. It recovers: the alarm's OK, a new state change of the same alarm.
    alarm_in("OK").await?;
    let ok = w.handle(&disk_ok(&instance)?).await?;
    assert_eq!(ok.incidents[0].transition, "resolved", "{ok:#?}");
    assert_ne!(ok.incidents[0].id, id);
    let recovered = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(recovered.len(), 1);
    assert!(
        recovered[0]
            .text()?
            .contains(&format!("{CONSOLE}cloudwatch/home"))
    );

    // Chat: every message valid, one thread (the firing incident's), the
    // held change's links as markdown links.
    let chat = chat_messages(&w, &queue).await?;
    let kinds: Vec<&str> = chat
        .iter()
        .map(|m| m["content"]["title"].as_str().unwrap_or(""))
        .collect();
    // The first page, the report, the check, the recovery.
    assert_eq!(chat.len(), 4, "{kinds:?}");
    for head in [
        "\\[ON IT\\] Disk full",
        "\\[ALARM\\] Disk full",
        "\\[ESCALATION\\] Still firing after the fix",
        "\\[OK\\] Resolved",
    ] {
        assert!(
            kinds.iter().any(|k| k.starts_with(head)),
            "{head}: {kinds:?}"
        );
    }
    for m in &chat {
        chat_schema.assert_valid(m).await?;
        assert_eq!(m["metadata"]["threadId"], id.as_str(), "{m:#}");
        assert_eq!(m["metadata"]["eventType"], "first-responder.disk_full");
        assert!(m["content"]["description"].as_str().unwrap_or("").contains("[alarm web-data-disk-full (account 123456789012, us-east-1)](https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/web-data-disk-full)"), "{m:#}");
    }
    let with_links = chat
        .iter()
        .find(|m| {
            m["content"]["description"]
                .as_str()
                .unwrap_or("")
                .contains("[approve](")
        })
        .context("no chat message with the held change's links")?;
    let d = with_links["content"]["description"].as_str().unwrap_or("");
    assert!(
        d.contains(&format!("[approve]({approve}) · [deny]({deny})")),
        "{d}"
    );
    assert!(
        with_links["metadata"]["relatedResources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == instance.as_str()))
    );
    assert_eq!(with_links["content"]["keywords"][0], "disk_full");
    assert!(
        kinds
            .last()
            .is_some_and(|t| t.starts_with("\\[OK\\] Resolved")),
        "{kinds:?}"
    );

    // PagerDuty: every event valid; triggers from the firing pages, one
    // critical trigger from the check, one resolve; all by the incident id.
    let got = pd.received();
    let actions: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                r.event["event_action"].as_str().unwrap_or("").to_owned(),
                r.event["payload"]["severity"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    for r in &got {
        assert_eq!(r.invalid, None, "{:#}", r.event);
        assert_eq!(r.status, 202);
        assert_eq!(r.event["dedup_key"], id.as_str(), "{:#}", r.event);
        assert_eq!(r.event["routing_key"], ROUTING_KEY);
    }
    // The first page opened it; the report, which carries the held
    // change's links, adds them to the open incident under the same key;
    // the check escalates it (critical); the recovery resolves it.
    let summary = |i: usize| {
        got[i].event["payload"]["summary"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(actions.len(), 4, "{actions:?}");
    let n = got.len();
    assert_eq!(actions[0].0, "trigger", "{actions:?}");
    assert!(
        summary(0).starts_with("[ON IT] Disk full"),
        "{}",
        summary(0)
    );
    assert_eq!(actions[1].0, "trigger", "{actions:?}");
    assert!(
        summary(1).starts_with("[ALARM] Disk full"),
        "{}",
        summary(1)
    );
    assert_eq!(
        actions[2],
        ("trigger".to_owned(), "critical".to_owned()),
        "{actions:?}"
    );
    assert_eq!(actions[3].0, "resolve", "{actions:?}");
    let first = &got[0].event;
    assert_eq!(first["payload"]["source"], instance.as_str());
    assert_eq!(first["payload"]["class"], "disk_full");
    assert_eq!(first["payload"]["component"], "disk_used_percent");
    assert_eq!(
        first["payload"]["custom_details"]["incident_id"],
        id.as_str()
    );
    let links = |e: &Value| e["links"].as_array().cloned().unwrap_or_default();
    assert!(
        links(first)
            .iter()
            .any(|l| l["href"].as_str().is_some_and(|h| h.starts_with(CONSOLE)))
    );
    assert!(
        !links(first).iter().any(|l| l["href"] == approve.as_str()),
        "the first page has no links yet"
    );
    let with_approve = &got[1];
    assert!(
        links(&with_approve.event)
            .iter()
            .any(|l| l["href"] == approve.as_str()),
        "{:#}",
        with_approve.event
    );
    assert!(
        links(&with_approve.event)
            .iter()
            .any(|l| l["href"] == deny.as_str())
    );
    assert!(
        got[n - 2].event["payload"]["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("[ESCALATION] Still firing after the fix"),
        "{:#}",
        got[n - 2].event
    );
    Ok(())
}

/// The first page opens the PagerDuty incident and the chat thread; the
/// report after it adds to the thread and tells PagerDuty nothing more.
#[tokio::test]
async fn the_first_page_opens_pagerduty_and_the_report_follows_in_chat() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let (queue, pd) = on_call(&mut w).await?;
    w.config.first_page_budget = Some(std::time::Duration::from_millis(1));
    let r = w
        .handle(&sample_event("high-cpu-alarm.json", w.fleet.instance())?)
        .await?;
    let id = &r.incidents[0].id;
    assert!(
        r.incidents[0]
            .notes
            .iter()
            .any(|n| n.starts_with("a short first page went out")),
        "{r:#?}"
    );
    let got = pd.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].event["event_action"], "trigger");
    assert_eq!(got[0].event["dedup_key"], id.as_str());
    assert!(
        got[0].event["payload"]["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("[ON IT]")
    );
    assert_eq!(got[0].invalid, None);
    let schema = Validator::start(CHAT).await?;
    let chat = chat_messages(&w, &queue).await?;
    assert_eq!(chat.len(), 2, "{chat:#?}");
    for m in &chat {
        schema.assert_valid(m).await?;
        assert_eq!(m["metadata"]["threadId"], id.as_str());
    }
    Ok(())
}

/// A 429 then 202 is retried once; a 500 three times is reported in the
/// notification's outcome, and SNS still delivers.
#[tokio::test]
async fn pagerduty_is_retried_on_429_and_a_failing_pagerduty_never_blocks_sns() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let (_queue, pd) = on_call(&mut w).await?;
    let instance = w.fleet.instance().to_owned();
    let event = sample_event("high-cpu-alarm.json", &instance)?;
    pd.answer_next(&[429]);
    let r = w.handle(&event).await?;
    let got = pd.received();
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 202]);
    assert!(got.iter().all(|r| r.invalid.is_none()), "{got:?}");
    let notify = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "notify")
        .context("notify")?;
    assert_eq!(notify.status.as_str(), "done");
    let detail = notify.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("PagerDuty trigger accepted")
            && detail.contains("after 2 attempts (HTTP 429"),
        "{detail}"
    );
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;

    pd.clear();
    pd.answer_next(&[500, 500, 500]);
    let later = event.replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let r = w.handle(&later).await?;
    let got = pd.received();
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 500]
    );
    let notify = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "notify")
        .context("notify")?;
    assert_eq!(notify.status.as_str(), "done", "{notify:?}");
    let detail = notify.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("PagerDuty trigger failed after 3 attempts: HTTP 500"),
        "{detail}"
    );
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(!inbox.is_empty(), "SNS delivered nothing");
    Ok(())
}

/// A Prometheus alert's page links to its rule and to Alertmanager's own
/// silence form for its labels.
#[tokio::test]
async fn an_alertmanager_alert_links_to_its_rule_and_a_silence_form() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let (queue, _pd) = on_call(&mut w).await?;
    let event =
        std::fs::read_to_string(harness::root().join("events/alertmanager-disk-full.json"))?
            .replace("10.0.1.5", &w.fleet.private_ip);
    let r = w.handle(&event).await?;
    let links = &r.incidents[0].links;
    assert!(
        links
            .iter()
            .any(|l| l.href == "http://prometheus.example:9090/graph?g0.expr=up"),
        "{links:?}"
    );
    let silence = links
        .iter()
        .find(|l| l.text.starts_with("silence DiskSpaceLow for 1 h"))
        .with_context(|| format!("{links:?}"))?;
    assert!(
        silence
            .href
            .starts_with("http://alertmanager.example:9093/#/silences/new?filter=%7B"),
        "{silence:?}"
    );
    assert!(
        silence.href.contains("alertname%3D%22DiskSpaceLow%22"),
        "{silence:?}"
    );
    // The instance, found by its private address, links into the console.
    assert!(
        links
            .iter()
            .any(|l| l.href.contains("#InstanceDetails:instanceId=")),
        "{links:?}"
    );
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    for m in &inbox {
        assert!(m.text()?.contains("- silence DiskSpaceLow for 1 h (Alertmanager): http://alertmanager.example:9093/#/silences/new?filter="));
    }
    let chat = chat_messages(&w, &queue).await?;
    let schema = Validator::start(CHAT).await?;
    for m in &chat {
        schema.assert_valid(m).await?;
        assert!(
            m["content"]["description"]
                .as_str()
                .unwrap_or("")
                .contains("(http://alertmanager.example:9093/#/silences/new?filter=")
        );
    }
    Ok(())
}

/// The silence link's matchers, as the real Alertmanager reads them: the
/// filter the link carries (every label, a value with a quote, a comma
/// and a backslash included) selects exactly the alert, and a 1 h silence
/// made with it silences the alert. (Debian's Alertmanager ships no web UI,
/// so the form itself is not opened; `amtool` parses matchers as it does.)
#[tokio::test]
async fn the_silence_links_matchers_select_the_alert_in_a_real_alertmanager() -> Result<()> {
    use harness::alertmanager::{Alertmanager, Receiver};
    let am = Alertmanager::start(&Receiver {
        url: "http://127.0.0.1:9/",
        token: "unused-token-000000000000000000",
        repeat_interval: "1h",
    })?;
    let labels = std::collections::BTreeMap::from([
        ("alertname".to_owned(), "DiskSpaceLow".to_owned()),
        ("instance".to_owned(), "10.0.0.5:9100".to_owned()),
        ("mountpoint".to_owned(), "/data".to_owned()),
        ("team".to_owned(), "a \"b\", c\\d".to_owned()),
    ]);
    let other = std::collections::BTreeMap::from([
        ("alertname".to_owned(), "DiskSpaceLow".to_owned()),
        ("instance".to_owned(), "10.0.0.6:9100".to_owned()),
        ("mountpoint".to_owned(), "/data".to_owned()),
        ("team".to_owned(), "a \"b\", c\\d".to_owned()),
    ]);
    am.post(&serde_json::json!([{ "labels": labels }, { "labels": other }]))?;
    let link = first_responder::oncall::links::silence_form(&am.url(), &labels)
        .context("no silence link")?;
    let encoded = link
        .split_once("#/silences/new?filter=")
        .context("not the silence form")?
        .1;
    let filter = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()?
        .into_owned();
    assert!(
        filter.starts_with("{alertname=\"DiskSpaceLow\",") && filter.ends_with('}'),
        "{filter}"
    );
    // The form's `{m1,m2,…}` is the UI's grouping; the API (and amtool)
    // take one matcher an argument, each parsed by Alertmanager itself.
    let matchers = split_matchers(&filter)?;
    assert_eq!(matchers.len(), 4, "{matchers:?}");
    let amtool = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new("amtool")
            .arg(format!("--alertmanager.url={}", am.url()))
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let with = |head: &[&str]| -> Vec<String> {
        head.iter()
            .map(|s| (*s).to_owned())
            .chain(matchers.iter().cloned())
            .collect()
    };
    let args = with(&["alert", "query", "-o", "json"]);
    let found = amtool(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let found: Vec<Value> = serde_json::from_str(&found)?;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["labels"]["instance"], "10.0.0.5:9100");
    let args = with(&[
        "silence",
        "add",
        "--duration=1h",
        "--comment=from the page",
        "--author=on-call",
    ]);
    let id = amtool(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let silences: Vec<Value> = serde_json::from_str(&amtool(&["silence", "query", "-o", "json"])?)?;
    assert_eq!(silences.len(), 1, "{silences:#?}");
    assert_eq!(silences[0]["id"], id.trim());
    let args = with(&["alert", "query", "-o", "json", "--silenced"]);
    let silenced: Vec<Value> = serde_json::from_str(&amtool(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?)?;
    assert_eq!(silenced.len(), 1, "{silenced:#?}");
    Ok(())
}

/// `{a="x",b="y, z"}` into `a="x"`, `b="y, z"`: commas inside a quoted
/// value (with its `\"` and `\\` escapes) do not split.
fn split_matchers(filter: &str) -> Result<Vec<String>> {
    let inner = filter
        .strip_prefix('{')
        .and_then(|f| f.strip_suffix('}'))
        .context("not {…}")?;
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    Ok(out)
}
