//! One-tap approvals end to end: both functions under `cargo lambda watch`,
//! AWS in moto. An incident whose playbook holds a change sends the link in
//! its notification; the link, read back from the SQS subscriber, is opened
//! in headless Chromium (Debian's, driven by Playwright), the button pressed,
//! and the change read back from the emulated account. Every way a link must
//! act on nothing is tried against the same functions.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use first_responder::approval::{Grant, Key, Signed, Verb};
use harness::{
    APPROVAL_KEY, Functions, desired_capacity, drain, eventually, http_request, instance_health,
    sample_event, state_item,
};
use serde_json::Value;

const TOKEN: &str = "approval-test-token-0123456789";
const KILL: &str = "/first-responder/kill-switch";

/// The responder invoked as EventBridge would (synchronously here, to read
/// its report).
fn invoke(port: u16, event: &str) -> Result<Value> {
    let (s, body) = http_request(
        port,
        "POST",
        "/2015-03-31/functions/responder/invocations",
        &[("Content-Type", "application/json")],
        event.as_bytes(),
    )?;
    if s != 200 {
        bail!("responder answered {s}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn action<'a>(report: &'a Value, name: &str) -> Result<&'a Value> {
    report["incidents"][0]["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == name))
        .with_context(|| format!("no {name} in {report:#}"))
}

/// The held action's links, from the notification the inbox subscriber got.
async fn links_from_inbox(f: &Functions, name: &str) -> Result<(String, String, Value)> {
    let docs = eventually(Duration::from_secs(30), || async {
        let got = drain(&f.sdk, &f.fleet.inbox_queue_url).await?;
        let docs: Vec<Value> = got.iter().filter_map(|d| d.document().ok()).collect();
        Ok((!docs.is_empty()).then_some(docs))
    })
    .await?;
    for d in docs {
        if let Some(a) = d["actions"].as_array().and_then(|a| {
            a.iter()
                .find(|x| x["action"] == name && x["status"] == "awaiting_approval")
        }) {
            let approve = a["approve_url"]
                .as_str()
                .context("no approve_url")?
                .to_owned();
            let deny = a["deny_url"].as_str().context("no deny_url")?.to_owned();
            let text = d["text"].as_str().unwrap_or_default();
            assert!(text.contains("AWAITING YOUR APPROVAL"), "{text}");
            assert!(text.contains(&approve), "the email's text carries the link");
            return Ok((approve, deny, d));
        }
    }
    bail!("no held {name} in the notifications")
}

/// Path and query of a link served on 127.0.0.1.
fn path_of(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .context("not a loopback link")?;
    let (_, path) = rest.split_once('/').context("no path")?;
    Ok(format!("/{path}"))
}

fn get(port: u16, url: &str) -> Result<(u16, String)> {
    http_request(
        port,
        "GET",
        &path_of(url)?,
        &[("User-Agent", "LinkScanner/1.0")],
        b"",
    )
}

/// The form's POST, as a browser sends it (or a replay of one).
fn post(port: u16, url: &str) -> Result<(u16, String)> {
    let path = path_of(url)?;
    let (route, query) = path.split_once('?').context("no query")?;
    http_request(
        port,
        "POST",
        route,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("User-Agent", "curl/8 (replay)"),
        ],
        query.as_bytes(),
    )
}

async fn pending(f: &Functions, incident: &str, action: &str) -> Result<String> {
    let pk = first_responder::approval::record_key(incident, action);
    Ok(state_item(&f.sdk, &f.fleet.state_table, &pk)
        .await?
        .and_then(|i| i.get("status").cloned())
        .unwrap_or_default())
}

fn chromium(url: &str, again: bool) -> Result<Value> {
    let root = harness::root();
    let mut cmd = std::process::Command::new(root.join(".venv/bin/python"));
    cmd.arg(root.join("tests/browser/approve.py")).arg(url);
    if again {
        cmd.arg("--again");
    }
    let out = cmd.output().context("running tests/browser/approve.py")?;
    if !out.status.success() {
        bail!(
            "the browser run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn playbooks_holding_scale_out() -> Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(harness::root().join("infra/playbooks.toml"))?;
    let held = text.replacen(
        "[high_cpu.scale_out]\n",
        "[high_cpu.scale_out]\napproval = \"required\"\n",
        1,
    );
    anyhow::ensure!(held != text, "no [high_cpu.scale_out] table");
    let path =
        std::env::temp_dir().join(format!("fr-approval-playbooks-{}.toml", std::process::id()));
    std::fs::write(&path, held)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_change_is_carried_out_once_by_a_press_in_the_browser_and_never_by_anything_else()
-> Result<()> {
    let playbooks = playbooks_holding_scale_out()?;
    let f = Functions::start(
        TOKEN,
        &[
            ("PLAYBOOKS_FILE", playbooks.display().to_string()),
            ("KILL_SWITCH_PARAMETER", KILL.to_owned()),
        ],
    )
    .await?;
    harness::put_secret(&f.sdk, KILL, "off").await?;
    let port = f.watch.port;
    let ssm_put = |value: &'static str| {
        let sdk = f.sdk.clone();
        async move { harness::put_secret(&sdk, KILL, value).await }
    };

    // 1. service_down on a group instance: the evidence is taken, the
    //    replacement held, and nothing else waits for it.
    let instance = f.fleet.instance().to_owned();
    let r = invoke(port, &sample_event("service-down-alarm.json", &instance)?)?;
    let incident = r["incidents"][0]["id"]
        .as_str()
        .context("no id")?
        .to_owned();
    assert_eq!(action(&r, "snapshot")?["status"], "done", "{r:#}");
    assert_eq!(action(&r, "collect_evidence")?["status"], "done");
    let held = action(&r, "replace_instance")?;
    assert_eq!(held["status"], "awaiting_approval", "{r:#}");
    assert!(held["approve_url"].is_string() && held["deny_url"].is_string());
    assert_eq!(instance_health(&f.sdk, &instance).await?, "HEALTHY");
    let (approve, deny, doc) = links_from_inbox(&f, "replace_instance").await?;
    assert!(approve.starts_with(&format!(
        "http://127.0.0.1:{port}/lambda-url/webhook/approve?"
    )));
    assert!(deny.contains("/lambda-url/webhook/deny?"));
    assert_eq!(doc["incident_id"], incident.as_str());

    // 2. A GET alone (a mail scanner, a link preview) changes nothing.
    let (s, page) = get(port, &approve)?;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains(&format!("mark {instance} Unhealthy so")),
        "{page}"
    );
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert_eq!(pending(&f, &incident, "replace_instance").await?, "pending");
    assert_eq!(instance_health(&f.sdk, &instance).await?, "HEALTHY");

    // 3. One changed character, and a link signed to expire in the past:
    //    refused without saying why, nothing done.
    let tampered = approve.replacen("replace_instance", "replace_instancf", 1);
    assert_eq!(get(port, &tampered)?.0, 403);
    assert_eq!(post(port, &tampered)?.0, 403);
    let changed_target = approve.replacen(&instance, &instance.replacen('i', "I", 1), 1);
    assert_eq!(post(port, &changed_target)?.0, 403);
    let key = Key::new("test", APPROVAL_KEY)?;
    let query = approve.split_once('?').context("no query")?.1;
    let mut grant: Grant = Signed::parse(Verb::Approve, query)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .grant;
    grant.expires = chrono::Utc::now().timestamp() - 60;
    let expired = Signed::new(&key, Verb::Approve, grant)
        .link(&format!("http://127.0.0.1:{port}/lambda-url/webhook/"));
    let (s, page) = get(port, &expired)?;
    assert_eq!(s, 410, "{page}");
    assert!(!page.contains("<form"), "an expired link offers no button");
    assert_eq!(post(port, &expired)?.0, 410);
    assert_eq!(pending(&f, &incident, "replace_instance").await?, "pending");
    assert_eq!(instance_health(&f.sdk, &instance).await?, "HEALTHY");

    // 4. The browser: the page states the change, the button carries it out
    //    once; going back and pressing again does nothing more.
    let seen = chromium(&approve, true)?;
    assert_eq!(seen["get"]["status"], 200, "{seen:#}");
    let change = seen["get"]["change"].as_str().unwrap_or_default();
    assert!(
        change.contains(&format!("mark {instance} Unhealthy")),
        "{seen:#}"
    );
    assert_eq!(seen["get"]["incident"], incident.as_str());
    assert!(
        seen["get"]["done"]
            .as_str()
            .unwrap_or_default()
            .contains("snapshot"),
        "{seen:#}"
    );
    assert_eq!(seen["get"]["forms"], 1);
    assert!(
        seen["get"]["csp"]
            .as_str()
            .unwrap_or_default()
            .contains("form-action 'self'")
    );
    assert_eq!(seen["press"]["method"], "POST");
    assert_eq!(seen["press"]["status"], 200, "{seen:#}");
    assert_eq!(seen["press"]["h1"], "Done", "{seen:#}");
    assert_eq!(instance_health(&f.sdk, &instance).await?, "UNHEALTHY");
    assert_eq!(seen["again"]["status"], 409, "{seen:#}");
    assert!(
        seen["again"]["result"]
            .as_str()
            .unwrap_or_default()
            .contains("already decided"),
        "{seen:#}"
    );
    // A replayed POST and the deny link, after the decision: 409, nothing.
    assert_eq!(post(port, &approve)?.0, 409);
    assert_eq!(post(port, &deny)?.0, 409);
    // The decision is in the incident's record, with who sent it.
    let record = state_item(
        &f.sdk,
        &f.fleet.state_table,
        &format!("incident#{incident}"),
    )
    .await?
    .context("no incident record")?;
    let decided = record
        .get("approval_replace_instance")
        .context("no decision in the incident record")?;
    assert!(decided.starts_with("approved by 127.0.0.1 ("), "{decided}");
    assert!(decided.contains("HeadlessChrome"), "{decided}");
    assert!(decided.contains(": done: "), "{decided}");
    // And people were told who approved what, and what came of it.
    let told = eventually(Duration::from_secs(30), || async {
        let got = drain(&f.sdk, &f.fleet.inbox_queue_url).await?;
        Ok(got.into_iter().find(|d| {
            d.subject
                .as_deref()
                .is_some_and(|s| s.contains("replace_instance done"))
        }))
    })
    .await?;
    assert!(
        told.document()?["text"]
            .as_str()
            .unwrap_or_default()
            .contains("approved by 127.0.0.1")
    );

    // 5. The world changes between plan and approval: the group is no longer
    //    at the planned capacity. Refused, nothing changed.
    let before = desired_capacity(&f.sdk, &f.fleet.group).await?;
    let r = invoke(port, &sample_event("high-cpu-alarm.json", &instance)?)?;
    let cpu = r["incidents"][0]["id"]
        .as_str()
        .context("no id")?
        .to_owned();
    assert_eq!(
        action(&r, "scale_out")?["status"],
        "awaiting_approval",
        "{r:#}"
    );
    assert_eq!(
        action(&r, "collect_diagnostics")?["status"],
        "done",
        "{r:#}"
    );
    let (approve_scale, _, _) = links_from_inbox(&f, "scale_out").await?;
    assert!(
        approve_scale.contains(&format!("desired+{before}+-%3E+{}", before + 1)),
        "{approve_scale}"
    );
    aws_sdk_autoscaling::Client::new(&f.sdk)
        .set_desired_capacity()
        .auto_scaling_group_name(&f.fleet.group)
        .desired_capacity(before + 1)
        .send()
        .await?;
    let (s, page) = post(port, &approve_scale)?;
    assert_eq!(s, 412, "{page}");
    assert!(page.contains("things changed since the plan"), "{page}");
    assert!(
        page.contains(&format!("desired {} -&gt; {}", before + 1, before + 2)),
        "{page}"
    );
    assert_eq!(desired_capacity(&f.sdk, &f.fleet.group).await?, before + 1);
    assert_eq!(pending(&f, &cpu, "scale_out").await?, "refused");
    assert_eq!(post(port, &approve_scale)?.0, 409);

    // 6. The kill switch turned on after the plan: refused.
    let later = sample_event("high-cpu-alarm.json", &instance)?.replace(
        "2026-11-25T02:04:12.152+0000",
        "2026-11-25T03:04:12.152+0000",
    );
    let r = invoke(port, &later)?;
    assert_eq!(
        action(&r, "scale_out")?["status"],
        "awaiting_approval",
        "{r:#}"
    );
    let (approve_later, _, _) = links_from_inbox(&f, "scale_out").await?;
    ssm_put("on").await?;
    let (s, page) = post(port, &approve_later)?;
    assert_eq!(s, 412, "{page}");
    assert!(page.contains("kill switch"), "{page}");
    assert_eq!(desired_capacity(&f.sdk, &f.fleet.group).await?, before + 1);
    ssm_put("off").await?;

    // 7. A deny acts on nothing, and its approve link is then spent.
    let alone = f.fleet.standalone.clone();
    let event = sample_event("service-down-alarm.json", &alone)?.replace(
        "2026-11-25T02:04:12.152+0000",
        "2026-11-25T04:04:12.152+0000",
    );
    let r = invoke(port, &event)?;
    let third = r["incidents"][0]["id"]
        .as_str()
        .context("no id")?
        .to_owned();
    assert_eq!(
        action(&r, "reboot")?["status"],
        "awaiting_approval",
        "{r:#}"
    );
    let (approve_reboot, deny_reboot, _) = links_from_inbox(&f, "reboot").await?;
    let (s, page) = post(port, &deny_reboot)?;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Denied"), "{page}");
    assert_eq!(pending(&f, &third, "reboot").await?, "denied");
    assert_eq!(post(port, &approve_reboot)?.0, 409);
    let _ = std::fs::remove_file(playbooks);
    Ok(())
}
