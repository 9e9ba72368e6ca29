//! Approvals' AWS side: the key from SSM, the held actions' records and
//! links, and a posted decision carried out (recorded once, the target read
//! again, the action run through the engine, people told).

use super::{Decision, Grant, Page, Verb, record_key};
use crate::aws::rfc3339;
use crate::config::Config;
use crate::engine::Engine;
use crate::plan::{PlannedAction, plan};
use crate::report::Status;
use crate::state::Approval;

/// When the incident's alarm recovered, if it has: a CloudWatch alarm
/// read now in `OK`, or an Alertmanager alert whose resolution was
/// recorded. None when it still fires or that cannot be told (then the
/// fresh plan decides, as before).
async fn recovered_at(
    engine: &Engine,
    incident: &crate::incident::Incident,
    place: &str,
) -> Option<String> {
    let when = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    if incident.alert.source.is_cloudwatch() {
        let seen = crate::observe::alarm::describe_alarm(&engine.aws, &incident.alert.alarm_name)
            .await
            .ok()??
            .seen();
        return match seen.state {
            crate::alert::AlarmState::Ok => Some(
                seen.updated_ms
                    .and_then(when)
                    .unwrap_or_else(|| "an unknown time".into()),
            ),
            _ => None,
        };
    }
    let key = incident.resolution_key(place)?;
    let (at, _) = engine.state.as_ref()?.resolution(&key).await.ok()??;
    when(at * 1000)
}

/// A posted decision. The signature and expiry first (403, 410), then
/// the single-use record (409 once decided), then for an approval the
/// target read again: refused (412) when a fresh plan no longer decides
/// exactly the signed change (the world changed, the kill switch is on),
/// else carried out through the engine (200 once it has run).
pub async fn approve(engine: &Engine, d: &Decision, config: &Config, now: i64) -> Page {
    let Some(key) = &engine.approval_key.get(config).await else {
        return Page::message(
            503,
            "Approvals are not configured",
            "This deployment has no approval key: nothing was done.",
        );
    };
    let s = &d.signed;
    if let Err(r) = s.check(key, now) {
        tracing::warn!(status = r.status(), "refused approval link");
        return r.page();
    }
    let Some(st) = &engine.state else {
        return Page::message(503, "Approvals need the state table", "Nothing was done.");
    };
    let g = &s.grant;
    let pk = record_key(&g.incident, &g.action);
    // Who, as far as the request tells; shown escaped, never trusted.
    let ua: String = d.user_agent.chars().take(200).collect();
    let who = format!("{} ({})", d.source_ip, crate::text::escape(&ua));
    let event = match st
        .decide_approval(&pk, s.verb.as_str(), &who, now, &g.change)
        .await
    {
        Ok(Approval::Mine { event }) => event,
        Ok(Approval::OtherChange) => {
            tracing::warn!(
                status = 412,
                "approval link names another change than the one held"
            );
            return Page::message(
                412,
                "Not the change that is held",
                "Nothing was done: this link does not name the change held for approval.",
            );
        }
        Ok(Approval::Decided { status, by, result }) => {
            // The outcome when there is one; else who decided (still
            // being carried out).
            let what = if result.is_empty() {
                format!("{status} by {by}")
            } else {
                result
            };
            return Page::message(
                409,
                "Already decided",
                &format!("This change was already decided: {what}. Nothing was done again."),
            );
        }
        Ok(Approval::Missing) => {
            return Page::message(
                410,
                "This approval is no longer held",
                "Nothing was done: the held change is not on record any more.",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "approval not recorded");
            return Page::message(
                503,
                "Try again",
                "The decision could not be recorded, so nothing was done. The link still works.",
            );
        }
    };
    let (status, page, summary) = match s.verb {
        Verb::Deny => (
            "denied",
            Page::message(
                200,
                "Denied",
                &format!("{} will not be done. Nothing was changed.", g.change),
            ),
            format!("denied by {who}: nothing was done"),
        ),
        Verb::Approve => carry_out_grant(engine, g, &event, config, now, &who).await,
    };
    let when = rfc3339(now);
    let record = format!("{summary} (decided {when})");
    let (a, b) = tokio::join!(
        st.finish_approval(&pk, status, &summary),
        st.note_on_incident(&g.incident, &g.action, &record)
    );
    for e in [a, b].into_iter().filter_map(Result::err) {
        tracing::warn!(error = %e, "approval outcome not recorded");
    }
    track_decision(st, g, status, config, now).await;
    tracing::info!(incident_id = %g.incident, action = %g.action, decision = status, who = %who, "approval decided");
    tell(engine, g, config, status, &summary).await;
    page
}

/// The fleet as it is now, for planning the approved change again: the
/// kill switch, and a maintenance pause set since (`first-responder pause`),
/// which holds for an approved change too; the record's demotions and runs
/// do not (the person decided).
async fn observed_now(
    engine: &Engine,
    there: &Engine,
    incident: &crate::incident::Incident,
    config: &Config,
    target: Option<&crate::target::Target>,
) -> crate::observed::Observed {
    let lookup = crate::observe::lookup(&there.aws, incident, config);
    let kill = async {
        match &config.kill_switch_parameter {
            Some(name) => engine.aws.kill_switch(name).await,
            None => Ok(false),
        }
    };
    let pauses = async {
        match &engine.state {
            Some(st) => st.history(None).await.map(|h| crate::observed::History {
                pauses: h.pauses,
                ..Default::default()
            }),
            None => Ok(Default::default()),
        }
    };
    let (mut observed, kill, history) = tokio::join!(
        crate::observe::observe_fleet(&there.aws, incident, config, lookup.as_ref()),
        kill,
        pauses
    );
    observed.kill_switch = kill;
    observed.history = history;
    observed.account = target.map(|t| t.account.as_str().to_owned());
    observed
}

/// The person's decision in the track record (approved or denied, and how
/// long after the alert), and an approved change carried out as a run done.
async fn track_decision(
    st: &crate::state::StateStore,
    g: &crate::approval::Grant,
    status: &str,
    config: &Config,
    now: i64,
) {
    let Ok(action) = serde_json::from_value::<crate::actions::ActionName>(
        serde_json::Value::String(g.action.clone()),
    ) else {
        return;
    };
    let decision = if status == "denied" {
        "denied"
    } else {
        "approved"
    };
    let mut r = st.record_decision(&g.incident, action, decision, now).await;
    if r.is_ok() && status == "done" {
        r = st
            .record_approved_done(&g.incident, action, config.history_ttl_days)
            .await;
    }
    if let Err(e) = r {
        tracing::warn!(incident_id = %g.incident, error = %e, "decision not in the track record");
    }
}

/// The answer when the alarm recovered before the change was approved.
fn not_needed(g: &Grant, who: &str, at: &str) -> (&'static str, Page, String) {
    (
        "not_needed",
        Page::message(
            409,
            "No longer needed",
            &format!(
                "{} is no longer needed: the alarm recovered at {at}. Nothing was changed.",
                g.change
            ),
        ),
        format!("approved by {who}, not done: no longer needed, the alarm recovered at {at}"),
    )
}

/// A message's claim, read again in the account and region it names.
async fn claim_holds(
    there: &Engine,
    incident: &crate::incident::Incident,
    target: Option<&crate::target::Target>,
) -> Result<(), String> {
    let seen = crate::observe::alarm::describe_alarm(&there.aws, &incident.alert.alarm_name)
        .await
        .map_err(|e| format!("the alarm could not be read: {e}"))?
        .map(|f| f.seen());
    let where_ = crate::target::described(target);
    crate::target::judge(&incident.alert, &where_, seen.as_ref()).map(|_| ())
}

/// The signed change in a plan made now, to be done: Err (why not) when
/// that plan skips it, no longer has it, or would change something else.
fn the_signed_change(fresh: &crate::plan::Plan, g: &Grant) -> Result<PlannedAction, String> {
    let planned = fresh
        .actions
        .iter()
        .find(|a| a.name.as_str() == g.action && a.target == g.target)
        .ok_or_else(|| {
            format!(
                "a plan made now no longer includes {} on {}",
                g.action, g.target
            )
        })?;
    let step = match &planned.decision {
        crate::plan::Decision::Hold(s) | crate::plan::Decision::Do(s) => s,
        crate::plan::Decision::Skip(why) | crate::plan::Decision::Fail(why) => {
            return Err(why.clone());
        }
        // The team set it to observe since: it no longer changes anything.
        crate::plan::Decision::Observe(_) => return Err(planned.reason.clone()),
    };
    if step.describe() != g.change {
        return Err(format!("a plan made now would {} instead", step.describe()));
    }
    Ok(PlannedAction {
        decision: crate::plan::Decision::Do(step.clone()),
        ..planned.clone()
    })
}

/// Plans again from the stored event and carries the action out when
/// the plan still decides the signed change. (status, page, summary).
async fn carry_out_grant(
    engine: &Engine,
    g: &Grant,
    event: &str,
    config: &Config,
    now: i64,
    who: &str,
) -> (&'static str, Page, String) {
    let refuse = |why: String| {
        (
            "refused",
            Page::message(
                412,
                "Not done: things changed since the plan",
                &format!("{} was not done: {why}. Nothing was changed.", g.change),
            ),
            format!("approved by {who}, refused: {why}"),
        )
    };
    let incident = serde_json::from_str(event)
        .map_err(|e| e.to_string())
        .and_then(|v| crate::respond::incidents_each(v, &config.routes).map_err(|e| e.to_string()))
        .ok()
        .and_then(|b| b.incidents.into_iter().find(|i| i.id == g.incident));
    let Some(incident) = incident else {
        return refuse("the alert it came from no longer reads as this incident".into());
    };
    // In the account and region the alert came from, as the plan was.
    let place = match engine.for_incident(&incident, config).await {
        Ok(x) => x,
        Err(why) => return refuse(why.to_string()),
    };
    let (there, target) = (place.engine, place.target);
    // The link names where it was made for: another place is not this change.
    let here = target
        .as_ref()
        .map(crate::target::Target::place)
        .unwrap_or_default();
    if !g.place.is_empty() && g.place != here {
        return refuse(format!(
            "the link was made for {}, the incident now reads as {here}",
            g.place
        ));
    }
    // An alarm that recovered since needs no change.
    if let Some(at) =
        recovered_at(&there, &incident, &crate::target::place_of(target.as_ref())).await
    {
        return not_needed(g, who, &at);
    }
    // A message's claim is checked again where it said: an alarm that
    // has recovered (or was never there) approves nothing.
    if place.read_alarm
        && let Err(why) = claim_holds(&there, &incident, target.as_ref()).await
    {
        return refuse(why);
    }
    let observed = observed_now(engine, &there, &incident, config, target.as_ref()).await;
    let mut fresh = plan(&incident, &observed, config);
    fresh.set_target(target.as_ref(), config);
    let go = match the_signed_change(&fresh, g) {
        Ok(go) => go,
        Err(why) => return refuse(why),
    };
    let (r, transient) = there.carry_out_approved(&go, &fresh, config, now).await;
    let what = r.detail.clone().unwrap_or_else(|| r.reason.clone());
    let what = match transient {
        Some(t) => format!("{what} (state table: {t})"),
        None => what,
    };
    let (status, title) = match r.status {
        Status::Done => ("done", "Done"),
        Status::Skipped => ("skipped", "Not done"),
        _ => ("failed", "Failed"),
    };
    let check = match r.status {
        Status::Done => check_approved(engine, g, &incident, config, now).await,
        _ => String::new(),
    };
    (
        status,
        Page::message(200, title, &format!("{}: {what}{check}", g.change)),
        format!("approved by {who}: {status}: {what}{check}"),
    )
}

/// The approved change, done, gets its own check after the fix: the plan's
/// came before the approval and could not judge it. What to add to the
/// outcome's line.
async fn check_approved(
    engine: &Engine,
    g: &Grant,
    incident: &crate::incident::Incident,
    config: &Config,
    now: i64,
) -> String {
    let (Some(queue), Ok(action)) = (
        config.verify_queue_url.as_deref(),
        serde_json::from_value::<crate::actions::ActionName>(serde_json::Value::String(
            g.action.clone(),
        )),
    ) else {
        return String::new();
    };
    let minutes = config
        .playbooks
        .get(incident.kind)
        .map_or(0, |pb| pb.verify_after_minutes);
    let approved = crate::verify::Approved {
        action,
        target: g.target.clone(),
        at: rfc3339(now),
    };
    let delay = std::time::Duration::from_secs(u64::from(minutes) * 60);
    match crate::verify::run::schedule_approved_check(engine, queue, &g.incident, approved, delay)
        .await
    {
        Ok(_) => format!("; checked against the alarm in {minutes} minutes"),
        Err(e) => {
            tracing::warn!(incident_id = %g.incident, error = %e, "the approved change's check was not scheduled");
            format!("; its check after the fix could not be scheduled ({e})")
        }
    }
}

/// A short notification of the decision and what came of it.
async fn tell(engine: &Engine, g: &Grant, config: &Config, status: &str, summary: &str) {
    let Some(topic) = &config.notify_topic_arn else {
        return;
    };
    let subject: String = format!("[first-responder] {} {status}: {}", g.action, g.target)
        .chars()
        .take(100)
        .collect();
    let text = format!(
        "{}\n\nChange: {}\nIncident: {}\n",
        crate::text::escape(summary),
        crate::text::escape(&g.change),
        g.incident
    );
    let n = crate::notify::Notification {
        subject: subject.clone(),
        document: serde_json::json!({
            "version": 1,
            "incident_id": g.incident,
            "approval": {"action": g.action, "target": g.target, "change": g.change, "status": status, "summary": summary},
            "subject": subject,
            "text": text,
        }),
        card: crate::notify::Card {
            incident_id: g.incident.clone(),
            kind: "approval".into(),
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect(),
            resources: vec![g.target.clone()],
            source: g.target.clone(),
            dedup_key: g.incident.clone(),
            // A person's answer tells PagerDuty nothing: the incident's
            // pages and its check do.
            pager: crate::notify::PagerEvent::None,
            ..Default::default()
        },
        text,
        severity: crate::report::Severity::Warning,
        pager: None,
    };
    let sent = engine
        .deliver(config, topic, "approval", &g.incident, &n)
        .await;
    if sent.outcome.status != Status::Done {
        tracing::warn!(detail = %sent.outcome.detail, "approval notice not sent");
    }
}
