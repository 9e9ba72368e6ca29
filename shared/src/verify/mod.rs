//! Verification after the fix: a while after first-responder changed
//! something, is the alarm still firing? Still firing: an escalation
//! (severity `critical`, which the pager subscription takes) saying what was
//! done, when, and what the metric did since. Recovered: the incident record
//! says so, and one short notice goes out.
//!
//! The check is a durable delayed delivery (an SQS message with a delay,
//! sent before the first change, so that a crash between the fix and the
//! check loses nothing); each incident is verified once (a conditional
//! write on its record). Pure here; the reads and the publish are in
//! `run.rs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::actions::ActionName;
use crate::report::Severity;
use crate::series::{MetricContext, rfc3339};

#[cfg(feature = "aws")]
pub mod run;

/// The IAM actions of the check (besides the alarm and metric reads of
/// `series`, and the state table's): sending it, and the three Lambda's SQS
/// event source takes with the function's role to deliver it.
pub const PERMISSIONS: &[&str] = &[
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sns:Publish",
];

pub use crate::playbook::MAX_DELAY_MINUTES;

/// The delayed message: which incident to check, and for a change held
/// for approval and carried out later, which one; everything else is read
/// from the incident's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub first_responder_verify: RequestBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBody {
    pub incident: String,
    /// Checks the approved change alone (the plan's own check came before
    /// the approval and could not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approved>,
    /// Sent again, once, because the alarm had no data the first time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

/// When a kind has no playbook to say when to check: SQS's longest delay.
pub const DEFAULT_RECHECK_MINUTES: u32 = 15;

/// A change held for approval, approved and done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    pub action: ActionName,
    pub target: String,
    /// When it was carried out (RFC 3339).
    pub at: String,
}

impl RequestBody {
    /// The record attribute that says this check was done: each check is
    /// published once, the plan's and each approved change's apart.
    pub fn mark(&self) -> String {
        match &self.approved {
            None => "verified".to_owned(),
            Some(a) => format!("verified_{}", a.action.as_str()),
        }
    }
}

impl Request {
    pub fn new(incident: &str) -> Self {
        Self {
            first_responder_verify: RequestBody {
                incident: incident.to_owned(),
                approved: None,
                again: false,
            },
        }
    }

    /// The check of a change approved and carried out at `at`.
    pub fn approved(incident: &str, approved: Approved) -> Self {
        Self {
            first_responder_verify: RequestBody {
                incident: incident.to_owned(),
                approved: Some(approved),
                again: false,
            },
        }
    }

    /// The requests in an SQS event, or None when it is not one of ours.
    pub fn from_sqs_event(event: &serde_json::Value) -> Option<Vec<Request>> {
        let records = event.get("Records")?.as_array()?;
        let all: Vec<Request> = records
            .iter()
            .filter(|r| r.get("eventSource").and_then(|s| s.as_str()) == Some("aws:sqs"))
            .filter_map(|r| serde_json::from_str(r.get("body")?.as_str()?).ok())
            .collect();
        (!all.is_empty() && all.len() == records.len()).then_some(all)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    StillFiring,
    Recovered,
    Unknown,
}

impl Verdict {
    /// From a CloudWatch alarm's `StateValue`.
    pub fn of_alarm_state(state: &str) -> Self {
        match state {
            "ALARM" => Self::StillFiring,
            "OK" => Self::Recovered,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StillFiring => "still_firing",
            Self::Recovered => "recovered",
            Self::Unknown => "unknown",
        }
    }
}

/// What the incident's record says was done (the stored report).
#[derive(Clone, Debug, Deserialize)]
pub struct Stored {
    pub id: String,
    pub kind: String,
    pub alarm_name: String,
    #[serde(default)]
    pub alarm_key: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub actions: Vec<StoredAction>,
    /// When the alert fired (its state change, or Alertmanager's `startsAt`).
    #[serde(default)]
    pub alarm_time: Option<String>,
    /// What the page read of the metric.
    #[serde(default)]
    pub context: Option<StoredContext>,
    /// Where it acted, when not in the deployment's own account and region.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// The console links its notifications carried.
    #[serde(default)]
    pub links: Vec<crate::oncall::links::Link>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct StoredContext {
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub dimensions: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StoredAction {
    pub action: String,
    pub target: String,
    pub status: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
}

pub use crate::incident::{legacy_resolution_key, place_of, resolution_key};

/// Whether an action changes the service (and so is worth checking):
/// evidence, diagnostics and the notification are not fixes.
pub fn is_fix(a: ActionName) -> bool {
    a.is_fix()
}

impl Stored {
    /// The fixes that were done, and when the first began.
    pub fn fixes(&self) -> (Vec<&StoredAction>, Option<DateTime<Utc>>) {
        let done: Vec<&StoredAction> = self
            .actions
            .iter()
            .filter(|a| a.status == "done")
            .filter(|a| {
                serde_json::from_value::<ActionName>(serde_json::Value::String(a.action.clone()))
                    .is_ok_and(is_fix)
            })
            .collect();
        let at = done
            .iter()
            .filter_map(|a| a.started_at.as_deref())
            .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .min();
        (done, at)
    }
}

/// An Alertmanager alert has no state to ask for: its resolved delivery,
/// recorded when it came, says it recovered. Without one, the instance's
/// metric against the rule's threshold: still past it, still firing; back
/// within it, recovered (Alertmanager resolves a group interval or more
/// after the metric does). With neither, still firing: Alertmanager sends
/// resolved deliveries (`send_resolved`, on by default for webhooks) and
/// none came. (verdict, why)
pub fn alertmanager_verdict(
    resolved_at: Option<DateTime<Utc>>,
    metric: Result<&MetricContext, &str>,
    fixed_at: Option<DateTime<Utc>>,
) -> (Verdict, String) {
    if let Some(t) = resolved_at {
        return (
            Verdict::Recovered,
            format!("Alertmanager resolved the alert at {}", rfc3339(t)),
        );
    }
    let c = match metric {
        Ok(c) => c,
        // No series to read (an agent that does not publish it by
        // InstanceId, say): nothing says it still fires.
        Err(why) => {
            return (
                Verdict::Unknown,
                format!(
                    "no resolved delivery from Alertmanager, and the instance's metric cannot be read ({why}): not judged"
                ),
            );
        }
    };
    // Only datapoints whose period starts at or after the fix judge it: one
    // from before would say the fix failed when it never had the chance.
    let Some(latest) = c
        .datapoints
        .iter()
        .rfind(|p| fixed_at.is_none_or(|f| p.at >= f))
    else {
        return (
            Verdict::Unknown,
            format!(
                "no datapoint of {} since the fix at {} yet: not judged",
                c.metric,
                fixed_at.map(rfc3339).unwrap_or_default()
            ),
        );
    };
    let latest = latest.value;
    match c.threshold {
        Some(th) if latest > th => (
            Verdict::StillFiring,
            format!(
                "no resolved delivery from Alertmanager, and {} is still past the rule's threshold (latest {latest:.1}, threshold {th})",
                c.metric
            ),
        ),
        Some(th) => (
            Verdict::Recovered,
            format!(
                "{} is back within the rule's threshold (latest {latest:.1}, threshold {th}); Alertmanager's resolved delivery has not come yet",
                c.metric
            ),
        ),
        None => (
            Verdict::StillFiring,
            format!(
                "no resolved delivery from Alertmanager (the rule gives no threshold to read {} against)",
                c.metric
            ),
        ),
    }
}

/// What `first-responder verify --json` prints and the delayed check logs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verification {
    pub incident: String,
    pub verdict: Verdict,
    /// When the check ran (RFC 3339).
    pub checked: String,
    /// The alarm's state as CloudWatch gave it, when it was read.
    pub alarm_state: Option<String>,
    /// The fixes, as "action target".
    pub fixed: Vec<String>,
    pub fixed_at: Option<String>,
    pub minutes_after_fix: Option<i64>,
    /// Whether this check published (a second check of the same incident
    /// does not).
    pub published: bool,
    /// Why the verdict is unknown, or what else the reader should know.
    pub note: Option<String>,
    /// The incident's changes held for approval, and where each stands
    /// (an unanswered link past its expiry is marked expired here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// The check's verdict as a CloudWatch alarm notification for the pager:
/// the incident's own `AlarmName`, so an escalation lands on the incident
/// the first page opened (`ALARM`) and a recovery resolves it (`OK`).
pub fn pager(
    stored: &Stored,
    v: &Verification,
    reason: &str,
) -> aws_lambda_events::sns::CloudWatchAlarmPayload {
    let mut p = aws_lambda_events::sns::CloudWatchAlarmPayload::default();
    p.alarm_name = stored
        .alarm_key
        .clone()
        .unwrap_or_else(|| stored.alarm_name.clone());
    p.alarm_description = format!(
        "first-responder's check after the fix of incident {}",
        stored.id
    );
    p.new_state_value = match v.verdict {
        Verdict::Recovered => "OK",
        _ => "ALARM",
    }
    .to_owned();
    p.old_state_value = "ALARM".to_owned();
    p.new_state_reason = reason.to_owned();
    p.state_change_time = crate::notify::cloudwatch_time(&v.checked);
    p.trigger.threshold = stored
        .context
        .as_ref()
        .and_then(|c| c.threshold)
        .unwrap_or_default();
    p.trigger.evaluation_periods = 1;
    p
}

/// The escalation or the recovery notice: (subject, text, severity).
pub fn compose(
    stored: &Stored,
    v: &Verification,
    metric_lines: &[String],
    next_steps: &[String],
) -> Option<(String, String, Severity)> {
    use std::fmt::Write;
    let (subject, severity, mut t) = opening(stored, v)?;
    if !metric_lines.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "THE METRIC SINCE THE FIX (read from CloudWatch)");
        for l in metric_lines {
            let _ = writeln!(t, "{}", crate::text::escape(l));
        }
    }
    if !v.held.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "HELD FOR APPROVAL");
        for h in &v.held {
            let _ = writeln!(t, "- {}", crate::text::escape(h));
        }
    }
    if v.verdict == Verdict::StillFiring && !next_steps.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "NEXT STEPS ({} playbook)", stored.kind);
        for (n, s) in next_steps.iter().enumerate() {
            let _ = writeln!(t, "{}. {s}", n + 1);
        }
    }
    Some((crate::notify::sanitize_subject(&subject), t, severity))
}

/// The verdict's opening lines, with the subject and the severity (None:
/// nothing to say).
fn opening(stored: &Stored, v: &Verification) -> Option<(String, Severity, String)> {
    use std::fmt::Write;
    let name = crate::text::escape(&stored.alarm_name);
    let on = stored
        .instance
        .as_deref()
        .or(stored.group.as_deref())
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    let did = if v.fixed.is_empty() {
        "nothing".to_owned()
    } else {
        v.fixed.join(", ")
    };
    let at = v.fixed_at.as_deref().unwrap_or("an unknown time");
    let minutes = v.minutes_after_fix.unwrap_or(0);
    let mut t = String::new();
    let (subject, severity) = match v.verdict {
        // Nothing was changed: there is no fix that failed, so no critical
        // page; a notice says it still fires and why nothing was done.
        Verdict::StillFiring if v.fixed.is_empty() => {
            let _ = writeln!(
                t,
                "The alarm {name} is still firing at {}; first-responder changed nothing:",
                v.checked
            );
            for line in unchanged(stored) {
                let _ = writeln!(t, "- {}", crate::text::escape(&line));
            }
            let _ = writeln!(
                t,
                "Incident {} | {} | severity warning",
                stored.id, stored.kind
            );
            (
                format!("[STILL FIRING] {name}{on}: nothing was changed"),
                Severity::Warning,
            )
        }
        Verdict::StillFiring => {
            let _ = writeln!(
                t,
                "first-responder did {did} at {at}; the alarm {name} is still firing {minutes} minutes later."
            );
            let _ = writeln!(
                t,
                "Incident {} | {} | severity critical",
                stored.id, stored.kind
            );
            (
                format!("[ESCALATION] Still firing after the fix: {name}{on}"),
                Severity::Critical,
            )
        }
        // Observe mode (or nothing to change): it recovered by itself, so
        // the change it would have made was not needed this time.
        Verdict::Recovered if v.fixed.is_empty() => recovered_unchanged(&mut t, stored, v, &on),
        Verdict::Recovered => {
            let _ = writeln!(
                t,
                "The alarm {name} recovered {minutes} minutes after first-responder did {did} (at {at})."
            );
            let _ = writeln!(t, "Incident {} | {}", stored.id, stored.kind);
            (
                format!("[RECOVERED] {name}{on} after the fix"),
                Severity::Info,
            )
        }
        // The second check found no data either: said once, as a warning.
        Verdict::Unknown if v.alarm_state.as_deref() == Some("INSUFFICIENT_DATA") => {
            let _ = writeln!(
                t,
                "The alarm {name} had no data (INSUFFICIENT_DATA) at its check after the fix and again at {}: whether the fix worked is not known.",
                v.checked
            );
            if !v.fixed.is_empty() {
                let _ = writeln!(t, "first-responder did {did} at {at}.");
            }
            let _ = writeln!(
                t,
                "Incident {} | {} | severity warning",
                stored.id, stored.kind
            );
            (
                format!("[NO DATA] {name}{on}: the check after the fix cannot tell"),
                Severity::Warning,
            )
        }
        Verdict::Unknown => return None,
    };
    Some((subject, severity, t))
}

/// Recovered with nothing changed (observe mode, or nothing to change):
/// the change it would have made was not needed this time.
fn recovered_unchanged(
    t: &mut String,
    stored: &Stored,
    v: &Verification,
    on: &str,
) -> (String, Severity) {
    use std::fmt::Write;
    let name = crate::text::escape(&stored.alarm_name);
    let _ = writeln!(
        t,
        "The alarm {name} recovered by {} without any change by first-responder:",
        v.checked
    );
    for line in unchanged(stored) {
        let _ = writeln!(t, "- {}", crate::text::escape(&line));
    }
    let _ = writeln!(t, "Incident {} | {}", stored.id, stored.kind);
    (
        format!("[RECOVERED] {name}{on} without a change"),
        Severity::Info,
    )
}

/// Why each change of the plan was not made (held ones are listed under
/// HELD FOR APPROVAL).
fn unchanged(stored: &Stored) -> Vec<String> {
    let lines: Vec<String> = stored
        .actions
        .iter()
        .filter(|a| a.status != "done" && a.status != "awaiting_approval")
        .filter(|a| {
            serde_json::from_value::<ActionName>(serde_json::Value::String(a.action.clone()))
                .is_ok_and(is_fix)
        })
        .map(|a| {
            let why = a
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            format!(
                "{} {}: {}{why}",
                a.action,
                a.target,
                a.status.replace('_', " ")
            )
        })
        .collect();
    if lines.is_empty() {
        vec!["the plan held no change it could make".to_owned()]
    } else {
        lines
    }
}

/// The notice's card: still firing triggers PagerDuty again (critical, the
/// escalation's words) under the incident's key, a recovery resolves it.
pub fn card(
    stored: &Stored,
    v: &Verification,
    text: &str,
    steps: Vec<String>,
    now: DateTime<Utc>,
) -> crate::oncall::Card {
    use crate::oncall::PagerEvent;
    let resources: Vec<String> = stored
        .instance
        .iter()
        .chain(&stored.group)
        .cloned()
        .collect();
    crate::oncall::Card {
        incident_id: v.incident.clone(),
        kind: stored.kind.clone(),
        lines: text
            .lines()
            .skip(2)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        actions: Vec::new(),
        held: Vec::new(),
        next_steps: if v.verdict == Verdict::StillFiring {
            steps
        } else {
            Vec::new()
        },
        account: stored.account_id.clone(),
        account_id: stored.account_id.clone(),
        region: stored.region.clone(),
        source: resources
            .first()
            .cloned()
            .unwrap_or_else(|| stored.alarm_name.clone()),
        resources,
        links: stored.links.clone(),
        pager: match v.verdict {
            Verdict::StillFiring => PagerEvent::Trigger,
            Verdict::Recovered => PagerEvent::Resolve,
            Verdict::Unknown => PagerEvent::None,
        },
        dedup_key: v.incident.clone(),
        component: None,
        group: stored.group.clone(),
        timestamp: Some(crate::series::rfc3339(now)),
        pager_severity: (v.verdict == Verdict::StillFiring).then_some("critical"),
    }
}

#[cfg(test)]
mod tests;
