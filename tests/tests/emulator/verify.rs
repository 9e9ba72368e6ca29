//! Verification after the fix, against the emulated account: the delayed
//! message in SQS, the alarm's state in CloudWatch (through the bridge), the
//! verdict in the state table, the escalation read back from the pager's
//! filtered queue.

use anyhow::{Context, Result};
use chrono::{TimeZone, Utc};
use first_responder::verify::{Request, Verdict};
use harness::{
    FleetSpec, World, create_verify_queue, drain, put_alarm, put_series, take_sqs_event,
};

async fn world(alarm_state: &str) -> Result<World> {
    world_of(FleetSpec::default(), alarm_state).await
}

async fn world_of(spec: FleetSpec, alarm_state: &str) -> Result<World> {
    let mut w = World::start_with_state(spec).await?;
    let instance = w.fleet.instance().to_owned();
    let dims = [("InstanceId", instance.as_str())];
    let end = Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap();
    put_series(
        &w.engine.aws.cloudwatch,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        end,
        300,
        &[40.0, 85.0, 95.3],
    )
    .await?;
    // And after the fix (which happens now, by the wall clock), still high.
    let now =
        chrono::DateTime::from_timestamp(Utc::now().timestamp() / 300 * 300, 0).context("now")?;
    put_series(
        &w.engine.aws.cloudwatch,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        now,
        300,
        &[93.0, 91.0, 90.5],
    )
    .await?;
    w.cpu_alarm(alarm_state).await?;
    w.config.verify_queue_url = Some(create_verify_queue(&w.sdk).await?);
    w.config.playbooks.high_cpu.verify_after_minutes = 0;
    Ok(w)
}

/// The fix, then the delayed message as Lambda would deliver it.
async fn fix_then_message(w: &World) -> Result<(String, Vec<Request>)> {
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let i = &r.incidents[0];
    let scale = i
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .context("scale_out")?;
    assert_eq!(scale.status.as_str(), "done", "{i:#?}");
    assert!(
        i.notes.iter().any(|n| n.starts_with(
            "the fix is checked against the alarm in 0 minutes (verification message "
        )),
        "{:?}",
        i.notes
    );
    let event = take_sqs_event(
        &w.sdk,
        w.config.verify_queue_url.as_deref().unwrap_or_default(),
    )
    .await?
    .context("the verification message")?;
    let requests = Request::from_sqs_event(&event).context("our message")?;
    Ok((i.id.clone(), requests))
}

#[tokio::test]
async fn still_firing_after_the_fix_escalates_to_the_pager_once() -> Result<()> {
    let w = world("ALARM").await?;
    let (id, requests) = fix_then_message(&w).await?;
    assert_eq!(requests, vec![Request::new(&id)]);
    // The incident's own notification (the CPU alarm is critical) is
    // drained, so that only the escalation is left to read.
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    // Ten minutes after the fix.
    let (v, now) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::StillFiring, "{v:?}");
    assert!(v.published, "{v:?}");
    assert_eq!(v.alarm_state.as_deref(), Some("ALARM"));
    assert_eq!(v.fixed, vec![format!("scale_out {}", w.fleet.group)]);
    let pager = drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    assert_eq!(pager.len(), 1, "{pager:#?}");
    assert_eq!(pager[0].attribute("severity"), Some("critical"));
    let doc = pager[0].document()?;
    let text = doc["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("first-responder did scale_out {}", w.fleet.group)),
        "{text}"
    );
    assert!(text.contains("is still firing"), "{text}");
    assert!(
        text.contains("THE METRIC SINCE THE FIX") && text.contains("latest 90.5"),
        "{text}"
    );
    assert!(text.contains("NEXT STEPS (high_cpu playbook)"), "{text}");
    assert_eq!(doc["verification"]["verdict"], "still_firing");

    assert_eq!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.len(), 1);
    // Delivered again (SQS is at-least-once), or run by hand: once.
    let again = w.check(&id, now).await?;
    assert!(!again.published, "{again:?}");
    assert_eq!(
        again.note.as_deref(),
        Some("verified earlier: not published again")
    );
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    let records = harness::state_records(&w.sdk, &w.fleet.state_table).await?;
    assert_eq!(
        records.get(&format!("incident#{id}")).map(String::as_str),
        Some("completed")
    );
    Ok(())
}

/// SNS failing through a whole check (the SDK's retries included): the
/// check fails, so SQS delivers it again, and records no verdict; the
/// redelivery publishes the escalation, and a third delivery nothing more.
#[tokio::test]
async fn a_publish_that_fails_is_published_by_the_redelivery_once() -> Result<()> {
    use harness::proxy::{Fault, FaultProxy, Faults, Rule};
    static RULES: [Rule; 1] = [Rule {
        action: "Publish",
        fault: Fault::QueryError("InternalError"),
        times: u64::MAX,
    }];
    let w = world("ALARM").await?;
    let (id, _) = fix_then_message(&w).await?;
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &RULES,
            ..Faults::default()
        },
    )
    .await?;
    let mut failing = w.engine_via(&proxy.endpoint).await;
    failing = failing.with_state(&w.sdk, &w.fleet.state_table);
    let now = Utc::now() + chrono::Duration::minutes(10);
    let first = first_responder::verify::run::verify(&failing, &id, &w.config, now).await;
    let err = first.expect_err("a check whose escalation was not published must fail");
    assert!(err.contains("was not published"), "{err}");
    assert!(
        proxy.stats.rule_hits.lock().map(|h| h[0]).unwrap_or(0) >= 1,
        "Publish was never tried"
    );
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    assert_eq!(record_field(&w, &id, "verified").await?, None);

    // SQS delivers it again, SNS answering now.
    let again = w.check(&id, now).await?;
    assert_eq!(again.verdict, Verdict::StillFiring, "{again:?}");
    assert!(again.published, "{again:?}");
    let pager = drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    assert_eq!(pager.len(), 1, "{pager:#?}");
    assert_eq!(pager[0].attribute("severity"), Some("critical"));
    assert_eq!(
        record_field(&w, &id, "verified").await?.as_deref(),
        Some("still_firing")
    );
    let third = w.check(&id, now).await?;
    assert!(!third.published, "{third:?}");
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    Ok(())
}

/// The group already at its MaxSize: scale_out skipped, nothing changed.
/// The check still records the alarm's state, and tells people with a
/// warning that says so and why; nobody is paged for a fix never made.
#[tokio::test]
async fn a_check_after_nothing_was_changed_is_a_warning_not_a_page() -> Result<()> {
    let spec = FleetSpec {
        desired: 3,
        max: 3,
        ..FleetSpec::default()
    };
    let w = world_of(spec, "ALARM").await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let i = &r.incidents[0];
    let scale = i
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .context("scale_out")?;
    assert_eq!(scale.status.as_str(), "skipped", "{i:#?}");
    assert!(
        !i.actions
            .iter()
            .any(|a| a.status.as_str() == "done" && first_responder::verify::is_fix(a.action)),
        "{i:#?}"
    );
    let event = take_sqs_event(
        &w.sdk,
        w.config.verify_queue_url.as_deref().unwrap_or_default(),
    )
    .await?
    .context("the verification message")?;
    assert_eq!(
        Request::from_sqs_event(&event).context("our message")?,
        vec![Request::new(&i.id)]
    );
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let (v, _) = ten_minutes_later(&w, &i.id).await?;
    assert_eq!(v.verdict, Verdict::StillFiring, "{v:?}");
    assert!(v.published && v.fixed.is_empty(), "{v:?}");
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0].attribute("severity"), Some("warning"));
    let subject = inbox[0].subject.as_deref().unwrap_or_default();
    assert!(subject.ends_with(": nothing was changed"), "{subject}");
    let doc = inbox[0].document()?;
    let text = doc["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("- scale_out {}: skipped", w.fleet.group)),
        "{text}"
    );
    assert!(!text.contains("first-responder did"), "{text}");
    assert_eq!(
        record_field(&w, &i.id, "verified").await?.as_deref(),
        Some("still_firing")
    );
    Ok(())
}

#[tokio::test]
async fn recovered_after_the_fix_is_recorded_with_a_short_notice() -> Result<()> {
    let w = world("ALARM").await?;
    let (id, _) = fix_then_message(&w).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    w.cpu_alarm("OK").await?;
    // Ten minutes after the fix.
    let (v, _) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::Recovered, "{v:?}");
    assert!(v.published);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].attribute("severity"), Some("info"));
    let text = inbox[0].text()?;
    assert!(
        text.contains("recovered 10 minutes after first-responder did scale_out"),
        "{text}"
    );
    // No page for a recovery, but the OK reaches the pager's subscription,
    // which resolves the incident the first page opened.
    let pager = drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    assert_eq!(pager.len(), 1, "{pager:#?}");
    assert_eq!(
        (pager[0].attribute("severity"), pager[0].attribute("state")),
        (Some("info"), Some("OK"))
    );
    // The record says so.
    assert_eq!(
        record_field(&w, &id, "verified").await?.as_deref(),
        Some("recovered")
    );
    assert_eq!(
        record_field(&w, &id, "verification").await?.as_deref(),
        Some("recovered 10 minutes after the fix")
    );
    Ok(())
}

#[tokio::test]
async fn without_a_queue_the_report_says_no_verification_is_scheduled() -> Result<()> {
    let mut w = world("ALARM").await?;
    w.config.verify_queue_url = None;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let i = &r.incidents[0];
    assert!(
        i.notes
            .iter()
            .any(|n| n == "no verification is scheduled (VERIFY_QUEUE_URL is not set)"),
        "{:?}",
        i.notes
    );
    assert!(!r.any_failed(), "{r:#?}");
    // An incident that changed nothing (a recovery) gets no such line.
    let ok = w.run_sample("high-cpu-ok.json").await?;
    assert!(
        ok.incidents[0]
            .notes
            .iter()
            .all(|n| !n.contains("verification")),
        "{:?}",
        ok.incidents[0].notes
    );
    Ok(())
}

/// The Alertmanager alert (by the instance's address), fixed; then its
/// delayed message. The world's CPU series stays past the rule's 80 after
/// the fix.
async fn alertmanager_fix(w: &World) -> Result<String> {
    let event = std::fs::read_to_string(harness::root().join("events/alertmanager-high-cpu.json"))?
        .replace("10.0.1.5", &w.fleet.private_ip);
    let r = w.handle(&event).await?;
    let i = &r.incidents[0];
    let (st, _) = harness::status_of(&r, "scale_out");
    assert_eq!(st, "done", "{i:#?}");
    let c = i.context.as_ref().context("the page's metric")?;
    assert_eq!(
        (c.metric.as_str(), c.threshold),
        ("AWS/EC2/CPUUtilization", Some(80.0))
    );
    let event = take_sqs_event(
        &w.sdk,
        w.config.verify_queue_url.as_deref().unwrap_or_default(),
    )
    .await?
    .context("the verification message")?;
    assert_eq!(
        Request::from_sqs_event(&event),
        Some(vec![Request::new(&i.id)])
    );
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    Ok(i.id.clone())
}

fn resolved_event(w: &World) -> Result<String> {
    Ok(
        std::fs::read_to_string(
            harness::root().join("events/alertmanager-high-cpu-resolved.json"),
        )?
        .replace("10.0.1.5", &w.fleet.private_ip),
    )
}

#[tokio::test]
async fn an_alertmanager_alert_without_its_resolved_delivery_and_past_its_threshold_escalates()
-> Result<()> {
    let mut w = world("ALARM").await?;
    w.config.notify_on_resolve = false;
    let id = alertmanager_fix(&w).await?;
    // Only a datapoint from after the fix judges it: none yet, not judged.
    let (v, _) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::Unknown, "{v:?}");
    assert!(!v.published, "{v:?}");
    assert!(
        v.note
            .as_deref()
            .unwrap_or_default()
            .starts_with("no datapoint of AWS/EC2/CPUUtilization since the fix at "),
        "{v:?}"
    );
    // The next period, after the fix: still high.
    let instance = w.fleet.instance().to_owned();
    let next = chrono::DateTime::from_timestamp(Utc::now().timestamp() / 300 * 300 + 300, 0)
        .context("the next period")?;
    put_series(
        &w.engine.aws.cloudwatch,
        "AWS/EC2",
        "CPUUtilization",
        &[("InstanceId", instance.as_str())],
        next,
        300,
        &[90.5],
    )
    .await?;
    let (v, _) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::StillFiring, "{v:?}");
    assert!(v.published, "{v:?}");
    let note = v.note.clone().unwrap_or_default();
    assert!(
        note.contains("no resolved delivery from Alertmanager")
            && note.contains("latest 90.5, threshold 80"),
        "{note}"
    );
    let pager = drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    assert_eq!(pager.len(), 1, "{pager:#?}");
    assert_eq!(pager[0].attribute("severity"), Some("critical"));
    let text = pager[0].text()?;
    assert!(
        text.contains("THE METRIC SINCE THE FIX") && text.contains("latest 90.5"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn an_alertmanager_resolved_delivery_recovers_it_and_one_notice_is_enough() -> Result<()> {
    // The metric still past the threshold: the resolved delivery decides.
    let mut w = world("ALARM").await?;
    // Resolve notices off: the check sends the one short notice.
    w.config.notify_on_resolve = false;
    let id = alertmanager_fix(&w).await?;
    let r = w.handle(&resolved_event(&w)?).await?;
    assert!(r.incidents[0].transient_error.is_none(), "{r:#?}");
    let (v, _) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::Recovered, "{v:?}");
    assert!(
        v.note
            .as_deref()
            .unwrap_or_default()
            .starts_with("Alertmanager resolved the alert at "),
        "{v:?}"
    );
    assert!(v.published, "{v:?}");
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0].attribute("severity"), Some("info"));
    let item = record_field(&w, &id, "verification").await?;
    assert_eq!(item.as_deref(), Some("recovered 10 minutes after the fix"));

    // Resolve notices on: the resolved delivery told people; the check
    // records the recovery and sends nothing more.
    let mut w = world("ALARM").await?;
    w.config.notify_on_resolve = true;
    let id = alertmanager_fix(&w).await?;
    let r = w.handle(&resolved_event(&w)?).await?;
    let (st, _) = harness::status_of(&r, "notify");
    assert_eq!(st, "done", "{r:#?}");
    assert_eq!(
        drain(&w.sdk, &w.fleet.inbox_queue_url).await?.len(),
        1,
        "the resolve notice"
    );
    let (v, _) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::Recovered, "{v:?}");
    assert!(!v.published, "{v:?}");
    assert_eq!(
        v.note.as_deref(),
        Some(
            "recovered 10 minutes after the fix; the resolve notice already said so: no recovery notice"
        )
    );
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    assert_eq!(
        record_field(&w, &id, "verification").await?.as_deref(),
        Some("recovered 10 minutes after the fix")
    );
    Ok(())
}

#[tokio::test]
async fn a_cloudwatch_ok_that_was_announced_gets_no_second_notice() -> Result<()> {
    let mut w = world("ALARM").await?;
    w.config.notify_on_resolve = true;
    let (id, _) = fix_then_message(&w).await?;
    w.cpu_alarm("OK").await?;
    // The alarm's OK, delivered and announced.
    let ok = w.run_sample("high-cpu-ok.json").await?;
    let (st, _) = harness::status_of(&ok, "notify");
    assert_eq!(st, "done", "{ok:#?}");
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let (v, _) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::Recovered, "{v:?}");
    assert!(!v.published, "{v:?}");
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    Ok(())
}

/// The check as the delayed message runs it, ten minutes after the fix:
/// its verification and the time it ran at.
async fn ten_minutes_later(
    w: &World,
    id: &str,
) -> Result<(first_responder::verify::Verification, chrono::DateTime<Utc>)> {
    let now = Utc::now() + chrono::Duration::minutes(10);
    let v = w.check(id, now).await?;
    Ok((v, now))
}

/// One text field of the incident's record in the state table.
async fn record_field(w: &World, id: &str, field: &str) -> Result<Option<String>> {
    let item = aws_sdk_dynamodb::Client::new(&w.sdk)
        .get_item()
        .table_name(&w.fleet.state_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("incident#{id}")),
        )
        .send()
        .await?;
    Ok(item
        .item()
        .and_then(|i| i.get(field))
        .and_then(|v| v.as_s().ok())
        .cloned())
}

/// A held change nobody answered: the check after the fix marks its link
/// expired (the record says so, a later POST finds it decided) and says so
/// in its notice; before its expiry it only reports it as still waiting.
#[tokio::test]
async fn the_check_after_the_fix_expires_an_unanswered_approval() -> Result<()> {
    let mut w = World::start_with_state(FleetSpec::default()).await?;
    w.config.approval_key = Some(first_responder::approval::Key::new(
        "test",
        harness::APPROVAL_KEY,
    )?);
    w.config.approval_base_url = Some("http://127.0.0.1:9/lambda-url/webhook/".into());
    let instance = w.fleet.instance().to_owned();
    let event = harness::sample_event("service-down-alarm.json", &instance)?;
    let r = w.handle(&event).await?;
    let i = &r.incidents[0];
    let held = i
        .actions
        .iter()
        .find(|a| a.action.as_str() == "replace_instance")
        .context("no replace_instance")?;
    assert_eq!(held.status.as_str(), "awaiting_approval", "{i:#?}");
    assert!(held.approve_url.is_some(), "{i:#?}");
    let pk = first_responder::approval::record_key(&i.id, "replace_instance");
    let status = |item: Option<std::collections::BTreeMap<String, String>>| {
        item.and_then(|m| m.get("status").cloned())
            .unwrap_or_default()
    };
    // Within the link's hour: still waiting.
    let v = w.check(&i.id, Utc::now()).await?;
    assert_eq!(v.held.len(), 1, "{v:?}");
    assert!(v.held[0].contains("still awaiting approval"), "{v:?}");
    assert_eq!(
        status(harness::state_item(&w.sdk, &w.fleet.state_table, &pk).await?),
        "pending"
    );
    // Past it: expired, and nothing was done.
    let later = Utc::now() + chrono::Duration::minutes(61);
    let v = w.check(&i.id, later).await?;
    assert!(
        v.held[0].starts_with("replace_instance ") && v.held[0].contains("expired unanswered"),
        "{v:?}"
    );
    assert_eq!(
        status(harness::state_item(&w.sdk, &w.fleet.state_table, &pk).await?),
        "expired"
    );
    assert_eq!(
        harness::instance_health(&w.sdk, &instance).await?,
        "HEALTHY"
    );
    Ok(())
}

/// An approval binds the exact change held and is no longer needed once
/// the alarm recovered: a link naming another change is refused (412) and
/// leaves the record pending; once the alarm is OK, the real link answers
/// 409 "no longer needed" and nothing is changed.
#[tokio::test]
async fn an_approval_acts_only_on_the_change_held_and_not_once_the_alarm_recovered() -> Result<()> {
    use first_responder::approval::{Decision, Key, Signed, Verb};
    let mut w = World::start_with_state(FleetSpec::default()).await?;
    let key = Key::new("test", harness::APPROVAL_KEY)?;
    w.config.approval_key = Some(key.clone());
    w.config.approval_base_url = Some("http://127.0.0.1:9/lambda-url/webhook/".into());
    let instance = w.fleet.instance().to_owned();
    let cw = w.cloudwatch.client(&w.sdk);
    let (r, signed) = held_replacement(&w).await?;
    let i = &r.incidents[0];
    let decide = |s: Signed| Decision {
        signed: s,
        source_ip: "127.0.0.1".into(),
        user_agent: "test".into(),
    };
    let pk = first_responder::approval::record_key(&i.id, "replace_instance");
    let status = || async {
        Ok::<_, anyhow::Error>(
            harness::state_item(&w.sdk, &w.fleet.state_table, &pk)
                .await?
                .and_then(|m| m.get("status").cloned())
                .unwrap_or_default(),
        )
    };
    // Signed with the key, but naming another change: refused, still pending.
    let mut other = signed.grant.clone();
    other.change = format!("{} and terminate it", other.change);
    let page = first_responder::approval::run::approve(
        &w.engine,
        &decide(Signed::new(&key, Verb::Approve, other)),
        &w.config,
        Utc::now().timestamp(),
    )
    .await;
    assert_eq!(page.status, 412, "{}", page.html);
    assert!(
        page.html.contains("Not the change that is held"),
        "{}",
        page.html
    );
    assert_eq!(status().await?, "pending");
    // The alarm recovers: the real link changes nothing.
    cw.set_alarm_state()
        .alarm_name("web-status-check-failed")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("recovered in the test")
        .send()
        .await?;
    let page = first_responder::approval::run::approve(
        &w.engine,
        &decide(signed),
        &w.config,
        Utc::now().timestamp(),
    )
    .await;
    assert_eq!(page.status, 409, "{}", page.html);
    assert!(
        page.html
            .contains("is no longer needed: the alarm recovered at"),
        "{}",
        page.html
    );
    assert_eq!(
        harness::instance_health(&w.sdk, &instance).await?,
        "HEALTHY"
    );
    assert_eq!(status().await?, "not_needed");
    Ok(())
}

/// A held replace_instance. The plan's check, ten minutes on, finds it
/// unanswered: it pages nobody, and its warning says the change is still
/// waiting. Approved 20 minutes after the plan, the change runs and sends
/// its own check, which judges it (the alarm still fires: an escalation
/// that names it), once.
#[tokio::test]
async fn a_change_approved_later_is_checked_after_it_runs() -> Result<()> {
    use first_responder::approval::{Decision, Key};
    let mut w = World::start_with_state(FleetSpec::default()).await?;
    w.config.approval_key = Some(Key::new("test", harness::APPROVAL_KEY)?);
    w.config.approval_base_url = Some("http://127.0.0.1:9/lambda-url/webhook/".into());
    let queue = create_verify_queue(&w.sdk).await?;
    w.config.verify_queue_url = Some(queue.clone());
    w.config.playbooks.service_down.verify_after_minutes = 0;
    let instance = w.fleet.instance().to_owned();
    let (r, signed) = held_replacement(&w).await?;
    let i = &r.incidents[0];
    assert_eq!(
        harness::status_of(&r, "replace_instance").0,
        "awaiting_approval",
        "{i:#?}"
    );
    let plan_check = take_sqs_event(&w.sdk, &queue)
        .await?
        .context("the plan's check")?;
    assert_eq!(
        Request::from_sqs_event(&plan_check),
        Some(vec![Request::new(&i.id)])
    );
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;

    // Ten minutes on, nobody has answered.
    let (v, _) = ten_minutes_later(&w, &i.id).await?;
    assert_eq!(v.verdict, Verdict::StillFiring, "{v:?}");
    assert!(v.fixed.is_empty(), "{v:?}");
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0].attribute("severity"), Some("warning"));
    let text = inbox[0].text()?;
    assert!(
        text.contains(&format!(
            "HELD FOR APPROVAL\n- replace_instance {instance}: still awaiting approval"
        )),
        "{text}"
    );

    // Approved 20 minutes after the plan: done, and its check is sent.
    let approved_at = Utc::now() + chrono::Duration::minutes(20);
    let page = first_responder::approval::run::approve(
        &w.engine,
        &Decision {
            signed,
            source_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        },
        &w.config,
        approved_at.timestamp(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("checked against the alarm in 0 minutes"),
        "{}",
        page.html
    );
    let message = take_sqs_event(&w.sdk, &queue)
        .await?
        .context("the approved change's check")?;
    let requests = Request::from_sqs_event(&message).context("our message")?;
    let body = &requests[0].first_responder_verify;
    let approved = body.approved.as_ref().context("names the change")?;
    assert_eq!(approved.action.as_str(), "replace_instance");
    assert_eq!(approved.target, instance);
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;

    let later = approved_at + chrono::Duration::minutes(10);
    let v = first_responder::verify::run::verify_request(body, &w.engine, &w.config, later)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(v.verdict, Verdict::StillFiring, "{v:?}");
    assert_eq!(v.fixed, vec![format!("replace_instance {instance}")]);
    assert!(v.held.is_empty() && v.published, "{v:?}");
    let pager = drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    assert_eq!(pager.len(), 1, "{pager:#?}");
    assert_eq!(pager[0].attribute("severity"), Some("critical"));
    let text = pager[0].text()?;
    assert!(
        text.starts_with(&format!(
            "first-responder did replace_instance {instance} at "
        )),
        "{text}"
    );
    // Delivered again: nothing more.
    let again = first_responder::verify::run::verify_request(body, &w.engine, &w.config, later)
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(!again.published, "{again:?}");
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    assert_eq!(
        record_field(&w, &i.id, "verified_replace_instance")
            .await?
            .as_deref(),
        Some("still_firing")
    );
    assert_eq!(
        record_field(&w, &i.id, "verified").await?.as_deref(),
        Some("still_firing")
    );
    Ok(())
}

/// The alarm has no data at the check: it is sent again, once; still none,
/// a warning says the fix cannot be judged, and the record says unknown.
#[tokio::test]
async fn an_alarm_without_data_is_checked_again_once_then_reported() -> Result<()> {
    let w = world("ALARM").await?;
    let (id, _) = fix_then_message(&w).await?;
    // After the fix the metric stops arriving.
    w.cloudwatch
        .client(&w.sdk)
        .set_alarm_state()
        .alarm_name("web-high-cpu")
        .state_value(aws_sdk_cloudwatch::types::StateValue::InsufficientData)
        .state_reason("no datapoints in the test")
        .send()
        .await?;
    drain(&w.sdk, &w.fleet.pager_queue_url).await?;
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let (v, now) = ten_minutes_later(&w, &id).await?;
    assert_eq!(v.verdict, Verdict::Unknown, "{v:?}");
    assert!(!v.published, "{v:?}");
    assert_eq!(
        v.note.as_deref(),
        Some("the alarm has no data (INSUFFICIENT_DATA): checked again in 0 minutes")
    );
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    let queue = w.config.verify_queue_url.clone().unwrap_or_default();
    let message = take_sqs_event(&w.sdk, &queue)
        .await?
        .context("the check sent again")?;
    let requests = Request::from_sqs_event(&message).context("our message")?;
    let body = &requests[0].first_responder_verify;
    assert!(body.again && body.incident == id, "{body:?}");
    let again = first_responder::verify::run::verify_request(body, &w.engine, &w.config, now)
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(again.published, "{again:?}");
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0].attribute("severity"), Some("warning"));
    let subject = inbox[0].subject.as_deref().unwrap_or_default();
    assert!(subject.starts_with("[NO DATA] web-high-cpu"), "{subject}");
    assert_eq!(
        record_field(&w, &id, "verified").await?.as_deref(),
        Some("unknown")
    );
    // No third message, and a redelivery publishes nothing more.
    assert!(take_sqs_event(&w.sdk, &queue).await?.is_none());
    let third = first_responder::verify::run::verify_request(body, &w.engine, &w.config, now)
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(!third.published, "{third:?}");
    Ok(())
}

/// A status-check alarm firing on the fleet's first instance, handled: the
/// report, and the approval link of the replace_instance it holds.
async fn held_replacement(
    w: &World,
) -> Result<(first_responder::Report, first_responder::approval::Signed)> {
    use first_responder::approval::{Signed, Verb};
    let instance = w.fleet.instance().to_owned();
    put_alarm(
        &w.cloudwatch.client(&w.sdk),
        "web-status-check-failed",
        "AWS/EC2",
        "StatusCheckFailed",
        &[("InstanceId", &instance)],
        60,
        1.0,
        "ALARM",
    )
    .await?;
    let r = w
        .handle(&harness::sample_event(
            "service-down-alarm.json",
            &instance,
        )?)
        .await?;
    let link = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "replace_instance")
        .context("no replace_instance")?
        .approve_url
        .clone()
        .context("no link")?;
    let signed = Signed::parse(Verb::Approve, link.split_once('?').context("no query")?.1)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((r, signed))
}
