//! The delayed check's AWS side: schedule it (SQS, with a delay), and run
//! it (the incident's record, the alarm's state, the metric since the fix,
//! the once-only mark, the publish).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    Request, Stored, Verdict, Verification, alertmanager_verdict, compose, legacy_resolution_key,
    place_of, resolution_key,
};
use crate::aws::sdk_error;
use crate::config::Config;
use crate::engine::Engine;
use crate::series::rfc3339;

/// Sends the delayed check for `incident`; Ok(message id).
pub async fn schedule_verification(
    engine: &Engine,
    queue_url: &str,
    incident: &str,
    delay: Duration,
) -> Result<String, String> {
    let body = serde_json::to_string(&Request::new(incident)).map_err(|e| e.to_string())?;
    send_check(engine, queue_url, body, delay).await
}

async fn send_check(
    engine: &Engine,
    queue_url: &str,
    body: String,
    delay: Duration,
) -> Result<String, String> {
    let delay = i32::try_from(delay.as_secs().min(900)).unwrap_or(900);
    engine
        .aws
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .delay_seconds(delay)
        .send()
        .await
        .map(|o| o.message_id().unwrap_or_default().to_owned())
        .map_err(|e| format!("SendMessage to {queue_url}: {}", sdk_error(&e)))
}

/// Sends the delayed check of a change approved and carried out.
pub async fn schedule_approved_check(
    engine: &Engine,
    queue_url: &str,
    incident: &str,
    approved: super::Approved,
    delay: Duration,
) -> Result<String, String> {
    let body =
        serde_json::to_string(&Request::approved(incident, approved)).map_err(|e| e.to_string())?;
    send_check(engine, queue_url, body, delay).await
}

/// Checks the incident now (the plan's check): Err for what a retry can
/// fix (no state table, the record unreadable or still in progress).
pub async fn verify(
    engine: &Engine,
    incident: &str,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Verification, String> {
    verify_request(
        &Request::new(incident).first_responder_verify,
        engine,
        config,
        now,
    )
    .await
}

/// Checks what the request names: the plan's changes, or one approved
/// change alone.
pub async fn verify_request(
    request: &super::RequestBody,
    engine: &Engine,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Verification, String> {
    let incident = request.incident.as_str();
    let st = engine
        .state
        .as_ref()
        .ok_or("verification needs the state table (STATE_TABLE)")?;
    let (stored, marks) = completed_record(st, incident).await?;
    let mut v = started(request, &stored, now);
    // Held changes: an unanswered link past its expiry is spent now
    // (the POST checks the expiry too; this closes the record).
    v.held = held_lines(st, &stored, incident, now).await;
    if let Some(a) = &request.approved {
        let done = format!("{} ", a.action.as_str());
        v.held.retain(|h| !h.starts_with(&done));
    }
    // The alarm and the metric are where the incident acted. An account
    // no longer allowed is not checked (a retry would not change that).
    let here = match engine
        .for_account(
            stored.account_id.as_deref(),
            stored.region.as_deref(),
            config,
            incident,
        )
        .await
    {
        Ok((a, _)) => a,
        Err(crate::engine::members::Unreachable::Failed(e)) => return Err(e),
        Err(crate::engine::members::Unreachable::Refused(why)) => {
            v.note = Some(format!("not checked: {why}"));
            return Ok(v);
        }
    };
    // The alert's resolution, when one was recorded since it fired (an
    // earlier episode's does not count).
    let fixed_at = v
        .fixed_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let fired = stored
        .alarm_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or(fixed_at);
    let resolution = recorded_resolution(st, &stored, incident)
        .await?
        .filter(|(at, _)| fired.is_none_or(|t| *at >= t.timestamp()));
    let metric_lines = if stored.source.as_deref() == Some("alertmanager") {
        let resolved_at = resolution.and_then(|(at, _)| DateTime::from_timestamp(at, 0));
        check_alertmanager(&here, &stored, (fixed_at, now), resolved_at, &mut v).await
    } else {
        check_alarm(&here, &stored, (fixed_at, now), &mut v).await
    };
    let judged = Judged {
        stored,
        metric_lines,
        announced: resolution.is_some_and(|(_, notified)| notified),
        verified_before: marks.contains(&request.mark()),
    };
    tell_once(engine, st, request, judged, v, config, now).await
}

/// What the check found, beside its verification.
struct Judged {
    stored: Stored,
    metric_lines: Vec<String>,
    /// A resolve notice went out for the alert already.
    announced: bool,
    /// This check recorded its verdict before (a redelivery).
    verified_before: bool,
}

/// The verification as it starts: what was fixed and when, nothing judged.
fn started(request: &super::RequestBody, stored: &Stored, now: DateTime<Utc>) -> Verification {
    let (fixed, fixed_at) = match &request.approved {
        None => {
            let (fixes, fixed_at) = stored.fixes();
            let fixed = fixes
                .iter()
                .map(|a| format!("{} {}", a.action, a.target))
                .collect();
            (fixed, fixed_at)
        }
        Some(a) => (
            vec![format!("{} {}", a.action.as_str(), a.target)],
            DateTime::parse_from_rfc3339(&a.at)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        ),
    };
    Verification {
        incident: request.incident.clone(),
        verdict: Verdict::Unknown,
        checked: rfc3339(now),
        alarm_state: None,
        fixed,
        fixed_at: fixed_at.map(rfc3339),
        minutes_after_fix: fixed_at.map(|t| (now - t).num_minutes()),
        published: false,
        note: None,
        held: Vec::new(),
    }
}

/// Publishes what the check found, then records it: once per check.
async fn tell_once(
    engine: &Engine,
    st: &crate::state::StateStore,
    request: &super::RequestBody,
    j: Judged,
    mut v: Verification,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Verification, String> {
    let incident = request.incident.as_str();
    let mark = request.mark();
    if j.verified_before {
        v.note = Some("verified earlier: not published again".into());
        return Ok(v);
    }
    let no_data =
        v.verdict == Verdict::Unknown && v.alarm_state.as_deref() == Some("INSUFFICIENT_DATA");
    if v.verdict == Verdict::Unknown && !(no_data && request.again) {
        if no_data {
            check_again(engine, request, &j.stored, &mut v, config).await?;
        }
        return Ok(v);
    }
    record_verdicts(st, request, &j.stored, v.verdict, config, now).await;
    let summary = match (v.verdict, v.minutes_after_fix) {
        (Verdict::Recovered, Some(m)) => format!("recovered {m} minutes after the fix"),
        (Verdict::StillFiring, Some(m)) => format!("still firing {m} minutes after the fix"),
        (Verdict::Unknown, _) => "no data: the alarm was INSUFFICIENT_DATA twice".to_owned(),
        (verdict, _) => verdict.as_str().replace('_', " "),
    };
    // A resolve notice already told people: no second one.
    if v.verdict == Verdict::Recovered && j.announced {
        st.mark_verified(
            incident,
            &mark,
            v.verdict.as_str(),
            &summary,
            now.timestamp(),
        )
        .await?;
        v.note = Some(format!(
            "{summary}; the resolve notice already said so: no recovery notice"
        ));
        return Ok(v);
    }
    // Published first, then recorded: a publish that failed is an error, so
    // SQS delivers the check again and the escalation is not lost. A
    // delivery that published and died before recording it publishes again
    // (the pager de-duplicates on the incident); a lost page cannot be.
    let kind = crate::incident::IncidentKind::parse(&j.stored.kind);
    publish_verification(engine, &j.stored, &mut v, &j.metric_lines, kind, config)
        .await
        .map_err(|e| format!("the check of incident {incident} was not published ({e}): it is checked again when SQS delivers it again"))?;
    if !st
        .mark_verified(
            incident,
            &mark,
            v.verdict.as_str(),
            &summary,
            now.timestamp(),
        )
        .await?
    {
        v.note = Some("another delivery of this check recorded its verdict first".into());
    }
    Ok(v)
}

/// The verdict on each change the check judges (the plan's, done or
/// observed; or the one approved change) in the track record
/// (`state/track.rs`). Written before the publish, the same again on a
/// redelivery; a failure is logged, the check goes on.
async fn record_verdicts(
    st: &crate::state::StateStore,
    request: &super::RequestBody,
    stored: &Stored,
    verdict: Verdict,
    config: &Config,
    now: DateTime<Utc>,
) {
    let judged: Vec<crate::actions::ActionName> = match &request.approved {
        Some(a) => vec![a.action],
        None => stored
            .actions
            .iter()
            .filter(|a| a.status == "done" || a.status == "observed")
            .filter_map(|a| {
                serde_json::from_value(serde_json::Value::String(a.action.clone())).ok()
            })
            .filter(|a: &crate::actions::ActionName| a.is_fix())
            .collect(),
    };
    for a in judged {
        if let Err(e) = st
            .record_verdict(
                &request.incident,
                a,
                verdict.as_str(),
                now.timestamp(),
                config.history_ttl_days,
            )
            .await
        {
            tracing::warn!(incident_id = %request.incident, action = a.as_str(), error = %e, "verdict not recorded");
        }
    }
}

/// The alarm had no data (`INSUFFICIENT_DATA`): the check is sent again,
/// once, after the kind's delay; the second time it says so.
async fn check_again(
    engine: &Engine,
    request: &super::RequestBody,
    stored: &Stored,
    v: &mut Verification,
    config: &Config,
) -> Result<(), String> {
    let Some(queue) = &config.verify_queue_url else {
        v.note =
            Some("the alarm has no data (INSUFFICIENT_DATA); no queue to check again on".into());
        return Ok(());
    };
    let minutes = crate::incident::IncidentKind::parse(&stored.kind)
        .and_then(|k| config.playbooks.get(k))
        .map_or(super::DEFAULT_RECHECK_MINUTES, |pb| pb.verify_after_minutes);
    let again = Request {
        first_responder_verify: super::RequestBody {
            again: true,
            ..request.clone()
        },
    };
    let body = serde_json::to_string(&again).map_err(|e| e.to_string())?;
    let delay = Duration::from_secs(u64::from(minutes) * 60);
    send_check(engine, queue, body, delay).await.map_err(|e| {
        format!("the alarm has no data and its check could not be sent again ({e}): retried")
    })?;
    v.note = Some(format!(
        "the alarm has no data (INSUFFICIENT_DATA): checked again in {minutes} minutes"
    ));
    Ok(())
}

/// The incident's record, once its delivery completed, and the checks
/// recorded on it (Err: not yet, or unreadable: a retry may find it).
async fn completed_record(
    st: &crate::state::StateStore,
    incident: &str,
) -> Result<(Stored, Vec<String>), String> {
    let record = st
        .incident_record(incident)
        .await?
        .ok_or_else(|| format!("no record of incident {incident} in the state table"))?;
    if record.status != "completed" {
        return Err(format!(
            "incident {incident} is still being handled ({}): checked again later",
            record.status
        ));
    }
    let stored = serde_json::from_str(&record.outcome)
        .map_err(|e| format!("the record of incident {incident} cannot be read: {e}"))?;
    Ok((stored, record.marks))
}

/// An Alertmanager alert's verdict: its recorded resolution and the
/// instance's metric since the fix against the rule's threshold. The
/// metric's lines for the notice.
async fn check_alertmanager(
    here: &Engine,
    stored: &Stored,
    (fixed_at, now): (Option<DateTime<Utc>>, DateTime<Utc>),
    resolved_at: Option<DateTime<Utc>>,
    v: &mut Verification,
) -> Vec<String> {
    let kind = crate::incident::IncidentKind::parse(&stored.kind);
    let page = stored.context.clone().unwrap_or_default();
    let instance = stored
        .instance
        .as_deref()
        .and_then(|i| crate::ids::InstanceId::parse("instance", i).ok());
    let metric = match (kind, instance, fixed_at) {
        (Some(k), Some(i), Some(since)) => {
            crate::observe::metric::instance_series(
                &here.aws,
                k,
                &i,
                &page.dimensions,
                page.threshold,
                since,
                now,
            )
            .await
        }
        (_, None, _) => Err("the incident names no instance".to_owned()),
        _ => Err("no fix was done to read it since".to_owned()),
    };
    let lines = match &metric {
        Ok(c) => c.lines_since(),
        Err(e) => vec![format!("(the metric could not be read: {e})")],
    };
    let (verdict, why) = alertmanager_verdict(
        resolved_at,
        metric.as_ref().map_err(String::as_str),
        fixed_at,
    );
    v.verdict = verdict;
    v.note = Some(why);
    lines
}

/// A CloudWatch alarm's verdict: its state now. The metric's lines since
/// the fix, for the notice.
async fn check_alarm(
    here: &Engine,
    stored: &Stored,
    (fixed_at, now): (Option<DateTime<Utc>>, DateTime<Utc>),
    v: &mut Verification,
) -> Vec<String> {
    let alarm = match crate::observe::alarm::alarm_now(&here.aws, &stored.alarm_name).await {
        Ok(alarm) => alarm,
        Err(e) => {
            v.note = Some(e);
            return Vec::new();
        }
    };
    let state = alarm
        .state_value()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    v.verdict = Verdict::of_alarm_state(&state);
    v.alarm_state = Some(state);
    let Some(since) = fixed_at else {
        return Vec::new();
    };
    match crate::observe::metric::alarm_series(&here.aws, &alarm, since, now).await {
        Ok(c) => c.lines_since(),
        Err(e) => vec![format!("(the metric could not be read: {e})")],
    }
}

/// The escalation or recovery notice for a check that decided, with
/// the metric since the fix and the playbook's next steps.
async fn publish_verification(
    engine: &Engine,
    stored: &Stored,
    v: &mut Verification,
    metric_lines: &[String],
    kind: Option<crate::incident::IncidentKind>,
    config: &Config,
) -> Result<(), String> {
    let incident = v.incident.clone();
    let steps = kind
        .map(|k| config.playbooks.next_steps(k).to_vec())
        .unwrap_or_default();
    let Some((subject, text, severity)) = compose(stored, v, metric_lines, &steps) else {
        return Ok(());
    };
    let Some(topic) = &config.notify_topic_arn else {
        v.note = Some("no NOTIFY_TOPIC_ARN: nothing published".into());
        return Ok(());
    };
    let reason = text.lines().next().unwrap_or_default().to_owned();
    let card = super::card(stored, v, &text, steps, Utc::now());
    let mut text = text;
    crate::notify::links_text(&mut text, &card.links);
    let doc = serde_json::json!({
        "version": 1,
        "incident_id": incident,
        "kind": stored.kind,
        "severity": severity,
        "subject": subject,
        "verification": &*v,
        "links": card.links,
        "text": text,
    });
    let n = crate::notify::Notification {
        subject: subject.clone(),
        text,
        document: doc,
        severity,
        pager: Some(super::pager(stored, v, &reason)),
        card,
    };
    let sent = engine
        .deliver(config, topic, &stored.kind, &incident, &n)
        .await;
    if !sent.oncall.is_empty() {
        v.note = Some(match v.note.take() {
            Some(n) => format!("{n}; {}", sent.oncall.join("; ")),
            None => sent.oncall.join("; "),
        });
    }
    match sent.outcome.status {
        crate::report::Status::Done => {
            v.published = true;
            Ok(())
        }
        _ => Err(sent.outcome.detail),
    }
}

/// The alert's resolution as recorded (under the key that names where it
/// was, else the key of the release before).
async fn recorded_resolution(
    st: &crate::state::StateStore,
    stored: &Stored,
    incident: &str,
) -> Result<Option<(i64, bool)>, String> {
    let source = stored.source.as_deref().unwrap_or_default();
    let place = place_of(stored.account_id.as_deref(), stored.region.as_deref());
    let Some(key) = resolution_key(source, &stored.alarm_name, incident, &place) else {
        return Ok(None);
    };
    if let Some(r) = st.resolution(&key).await? {
        return Ok(Some(r));
    }
    match legacy_resolution_key(source, &stored.alarm_name, incident) {
        Some(old) => st.resolution(&old).await,
        None => Ok(None),
    }
}

/// A line for each change held for approval: expired now (closing its
/// record), still pending, or decided.
async fn held_lines(
    st: &crate::state::StateStore,
    stored: &Stored,
    incident: &str,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut held = Vec::new();
    for a in stored
        .actions
        .iter()
        .filter(|a| a.status == "awaiting_approval")
    {
        let pk = crate::approval::record_key(incident, &a.action);
        let line = match st.expire_approval(&pk, now.timestamp()).await {
            Ok(Some((status, _))) if status == "expired" => {
                format!(
                    "{} {}: the approval link expired unanswered; nothing was done",
                    a.action, a.target
                )
            }
            Ok(Some((status, expires))) if status == "pending" => format!(
                "{} {}: still awaiting approval (the link expires at {})",
                a.action,
                a.target,
                rfc3339(DateTime::from_timestamp(expires, 0).unwrap_or(now))
            ),
            Ok(Some((status, _))) => format!("{} {}: {status}", a.action, a.target),
            Ok(None) => format!("{} {}: held without a link", a.action, a.target),
            Err(e) => format!("{} {}: approval unknown ({e})", a.action, a.target),
        };
        held.push(line);
    }
    held
}
