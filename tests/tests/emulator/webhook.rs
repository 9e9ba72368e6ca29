//! Alertmanager → webhook (Function URL) → async invoke → responder → AWS,
//! with both functions served by `cargo lambda watch` on 127.0.0.1, the
//! webhook's Lambda client pointed at it by `AWS_ENDPOINT_URL_LAMBDA` and
//! every other AWS call at moto by `AWS_ENDPOINT_URL`.

use std::time::{Duration, Instant};

use anyhow::Result;
use harness::{
    Functions, desired_capacity, drain, eventually, free_port, http_request, put_secret,
    sample_event, snapshots, ssm_commands,
};

const TOKEN: &str = "local-test-token-0123456789";
const PARAM: &str = harness::TOKEN_PARAMETER;

#[tokio::test]
async fn alertmanager_webhook_hands_off_to_the_responder() -> Result<()> {
    let Functions {
        moto: _moto,
        sdk,
        fleet,
        watch,
    } = Functions::start(TOKEN, &[("WEBHOOK_TOKEN_REFRESH_SECONDS", "1".to_owned())]).await?;
    let port = watch.port;
    let url = watch.function_url("webhook");
    let post = |auth: Option<&str>, ctype: &str, body: &[u8]| {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", ctype)];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        http_request(port, "POST", &url, &headers, body)
    };
    let alert = sample_event("alertmanager-high-cpu.json", fleet.instance())?
        .replace("10.0.1.5", &fleet.private_ip);

    // Authentication and bad input: 4xx, and nothing happens.
    let (s, _) = post(None, "application/json", alert.as_bytes())?;
    assert_eq!(s, 401);
    let (s, _) = post(
        Some("wrong-token-000000000000"),
        "application/json",
        alert.as_bytes(),
    )?;
    assert_eq!(s, 401);
    let (s, body) = post(
        Some(TOKEN),
        "application/json",
        sample_event("high-cpu-alarm.json", fleet.instance())?.as_bytes(),
    )?;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("alerts"), "{body}");
    let (s, _) = post(
        Some(TOKEN),
        "application/json",
        &vec![b' '; first_responder::webhook::MAX_BODY_BYTES + 1],
    )?;
    assert_eq!(s, 413);
    // A smuggled event: one valid Alertmanager alert, plus the keys of a
    // CloudWatch alarm naming the group (or an SNS batch). Refused whole,
    // and nothing reaches the responder.
    let mut smuggled: serde_json::Value = serde_json::from_str(&alert)?;
    smuggled["alerts"] = serde_json::json!([smuggled["alerts"][0].clone()]);
    smuggled["detail-type"] = "CloudWatch Alarm State Change".into();
    smuggled["source"] = "aws.cloudwatch".into();
    smuggled["detail"] = serde_json::json!({
        "alarmName": "forged",
        "state": {"value": "ALARM", "reason": "forged", "timestamp": "2026-11-25T02:04:12.152+0000"},
        "previousState": {"value": "OK"},
        "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {
            "namespace": "AWS/EC2", "name": "CPUUtilization",
            "dimensions": {"AutoScalingGroupName": fleet.group.clone()}}}}]}
    });
    let (s, body) = post(
        Some(TOKEN),
        "application/json",
        smuggled.to_string().as_bytes(),
    )?;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("detail-type"), "{body}");
    if let Some(o) = smuggled.as_object_mut() {
        o.retain(|k, _| k != "detail-type" && k != "detail" && k != "source");
    }
    smuggled["Records"] = serde_json::json!([{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]);
    let (s, body) = post(
        Some(TOKEN),
        "application/json",
        smuggled.to_string().as_bytes(),
    )?;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("Records"), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(snapshots(&sdk).await?.is_empty());
    assert!(ssm_commands(&sdk).await?.is_empty());
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 1);

    // The node-exporter alert (only instance="<private ip>:9100"), twice in one payload.
    let started = Instant::now();
    let (s, body) = post(Some(TOKEN), "application/json", alert.as_bytes())?;
    let answered = started.elapsed();
    assert_eq!(s, 202, "{body}");
    println!("webhook answered 202 in {answered:?}");
    let accepted: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        (
            accepted["alerts"].as_u64(),
            accepted["duplicates"].as_u64(),
            accepted["accepted"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let incident = accepted["incidents"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The responder runs asynchronously; read the outcome from the account.
    let inbox = eventually(Duration::from_secs(90), || async {
        let got = drain(&sdk, &fleet.inbox_queue_url).await?;
        Ok((!got.is_empty()).then_some(got))
    })
    .await?;
    assert_eq!(inbox.len(), 1);
    let doc = inbox[0].document()?;
    assert_eq!(doc["incident_id"], incident.as_str());
    assert_eq!(doc["source"], "alertmanager");
    assert_eq!(doc["instance"], fleet.instance());
    let snaps = snapshots(&sdk).await?;
    assert_eq!(snaps.len(), 2);
    assert!(
        snaps
            .iter()
            .all(|s| s.tags["first-responder:incident-id"] == incident)
    );
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);

    // The responder's own metrics: EMF lines for the incident and its actions.
    let log = std::fs::read_to_string(&watch.log)?;
    let emf: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("\"CloudWatchMetrics\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["IncidentId"] == incident.as_str())
        .collect();
    let head = emf
        .iter()
        .find(|v| v["Incidents"] == 1)
        .expect("an incident metric line");
    assert_eq!(
        (head["Kind"].as_str(), head["Outcome"].as_str()),
        (Some("high_cpu"), Some("handled"))
    );
    assert!(head["TimeToMitigateMs"].is_i64(), "{head}");
    assert_eq!(
        emf.iter().filter(|v| v["Actions"] == 1).count(),
        4,
        "one line per action"
    );

    // Alertmanager re-sends the group at every repeat_interval: no second remediation.
    let (s, body) = post(Some(TOKEN), "application/json", alert.as_bytes())?;
    assert_eq!(s, 202, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(snapshots(&sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);
    assert_eq!(ssm_commands(&sdk).await?.len(), 1);
    assert!(
        drain(&sdk, &fleet.inbox_queue_url).await?.is_empty(),
        "no second notification"
    );

    // Resolved, sent as text/plain so the Function URL delivers it base64-encoded.
    let resolved = sample_event("alertmanager-high-cpu-resolved.json", fleet.instance())?
        .replace("10.0.1.5", &fleet.private_ip);
    let (s, body) = post(Some(TOKEN), "text/plain", resolved.as_bytes())?;
    assert_eq!(s, 202, "{body}");
    let inbox = eventually(Duration::from_secs(60), || async {
        let got = drain(&sdk, &fleet.inbox_queue_url).await?;
        Ok((!got.is_empty()).then_some(got))
    })
    .await?;
    assert!(
        inbox[0]
            .subject
            .as_deref()
            .unwrap_or_default()
            .starts_with("[OK] Resolved: HighCPUUsage")
    );
    assert_eq!(snapshots(&sdk).await?.len(), 2, "no remediation on resolve");
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);

    // The token rotates without a redeploy: the parameter holds the new and
    // the previous token, and the webhook re-reads it (every second here).
    const NEW: &str = "rotated-token-9876543210";
    let probe = br#"{"version":"4","alerts":[]}"#; // past auth, then 400
    put_secret(&sdk, PARAM, &format!("{NEW} {TOKEN}")).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for t in [NEW, TOKEN] {
        let (s, body) = post(Some(t), "application/json", probe)?;
        assert_eq!(s, 400, "{body}");
    }
    put_secret(&sdk, PARAM, NEW).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, _) = post(Some(NEW), "application/json", probe)?;
    assert_eq!(s, 400);
    let (s, _) = post(Some(TOKEN), "application/json", probe)?;
    assert_eq!(s, 401, "the previous token is retired");
    // Refused requests are counted: one metric line per window.
    let log = std::fs::read_to_string(&watch.log)?;
    let refused: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("\"RefusedRequests\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        refused.iter().any(|v| v["Status"] == "401"),
        "no RefusedRequests line for the 401s: {refused:?}"
    );
    drop(watch);
    Ok(())
}

#[tokio::test]
async fn a_failed_hand_off_is_a_503_so_alertmanager_retries() -> Result<()> {
    use first_responder::webhook::{Refusals, Request, Token, Webhook};
    // The Lambda endpoint is a loopback port with nothing listening.
    let dead = format!("http://127.0.0.1:{}", free_port()?);
    let sdk = harness::sdk_config(&dead).await;
    let webhook = Webhook {
        token: std::sync::RwLock::new(Token::new("t", TOKEN)?),
        refresh: None,
        routes: Default::default(),
        home: None,
        responder: "responder".into(),
        lambda: first_responder::aws::lambda_client(&sdk),
        refusals: Refusals::new(Duration::from_secs(60)),
        approval_key: None,
        approval_refresh: None,
        approval_wait: first_responder::webhook::APPROVAL_WAIT,
    };
    let body = sample_event("alertmanager-high-cpu.json", "i-0123456789abcdef0")?;
    let auth = format!("Bearer {TOKEN}");
    let reply = webhook
        .handle(&Request {
            method: "POST",
            authorization: Some(&auth),
            body: Some(&body),
            base64: false,
            path: "/",
            ..Default::default()
        })
        .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    let reason = reply.body["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("could not hand 1 of 1 incidents to the responder (retry)"),
        "{reason}"
    );
    // Bad input is still a 4xx, never a 5xx, whatever the state of the hand-off.
    let reply = webhook
        .handle(&Request {
            method: "POST",
            authorization: Some(&auth),
            body: Some("{}"),
            base64: false,
            path: "/",
            ..Default::default()
        })
        .await;
    assert_eq!(reply.status, 400);
    Ok(())
}

/// Grafana Alerting's contact point: the same Function URL and bearer token;
/// its payload (version 1, the rule's title as `alertname`, the value in
/// `values`) reaches the responder, routed by `ROUTES`.
#[tokio::test]
async fn a_grafana_contact_point_reaches_the_responder() -> Result<()> {
    let Functions {
        moto: _moto,
        sdk,
        fleet,
        watch,
    } = Functions::start(TOKEN, &[("ROUTES", "High CPU usage=high_cpu".to_owned())]).await?;
    let port = watch.port;
    let url = watch.function_url("webhook");
    let alert = sample_event("grafana-high-cpu.json", fleet.instance())?
        .replace("10.0.1.5", &fleet.private_ip);
    let bearer = format!("Bearer {TOKEN}");
    let (s, body) = http_request(
        port,
        "POST",
        &url,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        alert.as_bytes(),
    )?;
    assert_eq!(s, 202, "{body}");
    let accepted: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(accepted["accepted"].as_u64(), Some(1), "{body}");
    let inbox = eventually(Duration::from_secs(90), || async {
        let got = drain(&sdk, &fleet.inbox_queue_url).await?;
        Ok((!got.is_empty()).then_some(got))
    })
    .await?;
    let doc = inbox[0].document()?;
    assert_eq!(doc["incident_id"], accepted["incidents"][0]);
    assert_eq!(doc["kind"], "high_cpu");
    assert_eq!(doc["instance"], fleet.instance());
    let text = doc["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("High CPU usage") && text.contains("Value: 95.3"),
        "{text}"
    );
    // 95.3% is past the scale-out threshold: the group grew, after the evidence.
    assert_eq!(desired_capacity(&sdk, &fleet.group).await?, 2);
    assert_eq!(snapshots(&sdk).await?.len(), 2);
    Ok(())
}

/// A posted approval whose change outlasts the wait (a responder that does
/// not answer in time) gets a 202 page: the decision is with the responder,
/// the outcome comes by notification.
#[tokio::test]
async fn a_slow_approval_answers_202_and_leaves_the_change_to_the_responder() -> Result<()> {
    use first_responder::approval::{Grant, Key, Signed, Verb};
    use first_responder::webhook::{Refusals, Request, Token, Webhook};
    // Accepts the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let sdk = harness::sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let key = Key::new("test", harness::APPROVAL_KEY)?;
    let webhook = Webhook {
        token: std::sync::RwLock::new(Token::new("t", TOKEN)?),
        refresh: None,
        routes: Default::default(),
        home: None,
        responder: "responder".into(),
        lambda: first_responder::aws::lambda_client(&sdk),
        refusals: Refusals::new(Duration::from_secs(60)),
        approval_key: Some(key.clone()),
        approval_refresh: None,
        approval_wait: Duration::from_secs(1),
    };
    let signed = Signed::new(
        &key,
        Verb::Approve,
        Grant {
            incident: "inc-0011223344556677".into(),
            action: "expand_volume".into(),
            target: "vol-0123456789abcdef0".into(),
            change:
                "grow vol-0123456789abcdef0 from 100 to 120 GiB, then its partition and filesystem"
                    .into(),
            done: "cleanup_temp".into(),
            expires: chrono::Utc::now().timestamp() + 600,
            place: String::new(),
        },
    );
    let body = signed.query();
    let started = std::time::Instant::now();
    let reply = webhook
        .handle(&Request {
            method: "POST",
            path: "/approve",
            body: Some(&body),
            ..Default::default()
        })
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert!(reply.html.unwrap_or_default().contains("being carried out"));
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();
    Ok(())
}

/// The approval key rotates without a redeploy: the parameter holds the
/// current and the previous key (`CURRENT PREVIOUS`), the webhook re-reads
/// it every APPROVAL_KEY_TTL_SECONDS, a link signed before the rotation
/// works during it and is refused once the previous key is removed, and
/// that refusal is counted like any other.
#[tokio::test]
async fn the_approval_key_rotates_without_a_redeploy() -> Result<()> {
    use first_responder::approval::{Grant, Key, Signed, Verb};
    const NEW: &str = "rotated-approval-key-0123456789abcdef";
    let Functions {
        moto: _moto,
        sdk,
        fleet: _fleet,
        watch,
    } = Functions::start(TOKEN, &[("APPROVAL_KEY_TTL_SECONDS", "1".to_owned())]).await?;
    let port = watch.port;
    let url = watch.function_url("webhook");
    let link = |key: &str| -> Result<String> {
        let grant = Grant {
            incident: "inc-0011223344556677".into(),
            action: "replace_instance".into(),
            target: "i-0abc1234def567890".into(),
            change: "mark i-0abc1234def567890 Unhealthy so web-asg replaces it".into(),
            done: "snapshot".into(),
            expires: chrono::Utc::now().timestamp() + 3600,
            place: String::new(),
        };
        let s = Signed::new(&Key::new("t", key)?, Verb::Approve, grant);
        Ok(format!("{url}approve?{}", s.query()))
    };
    let open = |path: &str| http_request(port, "GET", path, &[], b"").map(|(s, _)| s);
    let before = link(harness::APPROVAL_KEY)?;
    assert_eq!(open(&before)?, 200, "the key the functions started with");
    put_secret(
        &sdk,
        harness::APPROVAL_KEY_PARAMETER,
        &format!("{NEW} {}", harness::APPROVAL_KEY),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        open(&before)?,
        200,
        "a link sent before the rotation still works during it"
    );
    assert_eq!(open(&link(NEW)?)?, 200, "links of the new key work");
    put_secret(&sdk, harness::APPROVAL_KEY_PARAMETER, NEW).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        open(&before)?,
        403,
        "removing the previous key revokes its links"
    );
    assert_eq!(open(&link(NEW)?)?, 200);
    let log = std::fs::read_to_string(&watch.log)?;
    assert!(
        log.lines()
            .filter(|l| l.contains("\"RefusedRequests\""))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["Status"] == "403"),
        "the refused link is counted"
    );
    assert!(
        !log.contains(&before[before.find('?').unwrap_or(0)..]),
        "never the link itself"
    );
    drop(watch);
    Ok(())
}

/// A token bound to an account, through the real webhook: its alerts may
/// name that account only; naming another, or none (the home account, not
/// in its list), is refused with 403 and nothing reaches the responder.
#[tokio::test]
async fn a_token_bound_to_an_account_acts_only_there() -> Result<()> {
    const BOUND: &str = "team-b-token-0123456789";
    let Functions {
        moto: _moto,
        sdk,
        fleet,
        watch,
    } = Functions::start(
        &format!("{BOUND}@222222222222"),
        &[("HOME_ACCOUNT_ID", "123456789012".to_owned())],
    )
    .await?;
    let url = watch.function_url("webhook");
    let bearer = format!("Bearer {BOUND}");
    let post = |account: Option<&str>| -> Result<(u16, String)> {
        let mut v: serde_json::Value = serde_json::from_str(&sample_event(
            "alertmanager-high-cpu.json",
            fleet.instance(),
        )?)?;
        for a in v["alerts"].as_array_mut().into_iter().flatten() {
            if let Some(x) = account {
                a["labels"]["account_id"] = x.into();
            }
        }
        http_request(
            watch.port,
            "POST",
            &url,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &bearer),
            ],
            v.to_string().as_bytes(),
        )
    };
    let (s, body) = post(Some("333333333333"))?;
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("this token may act only in 222222222222"),
        "{body}"
    );
    let (s, body) = post(None)?;
    assert_eq!(s, 403, "the home account is not in its list: {body}");
    let (s, body) = post(Some("222222222222"))?;
    assert_eq!(s, 202, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(snapshots(&sdk).await?.is_empty(), "nothing done at home");
    Ok(())
}
