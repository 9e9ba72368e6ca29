//! The notification: composed from the plan and the action outcomes, pure.
//! One SNS publish with `MessageStructure=json` carries a readable text for
//! email (and `default`), a JSON document for sqs and lambda, and for https
//! the same document beside the fields of a CloudWatch alarm notification,
//! which the paging services' CloudWatch integrations read.

use aws_lambda_events::sns::{CloudWatchAlarmPayload, CloudWatchAlarmTrigger, CloudWatchDimension};
use serde_json::{Value, json};
use std::fmt::Write;

use crate::alert::{AlarmState, Alert};

use crate::incident::Transition;
use crate::plan::{ActionName, Plan};
use crate::report::{ActionReport, Severity, Status};
use crate::text::{MAX_FIELD_CHARS, MAX_LONG_FIELD_CHARS, escape, escape_keeping_lines, quoted};

mod first;
mod oncall;
mod pager;
pub use crate::alert::alarm_key;
pub use crate::oncall::{Card, PagerEvent, card, links};
pub use first::compose_first;
pub use oncall::card_for;
pub use pager::{cloudwatch_time, https_document, pager};

/// SNS: subject under 100 characters, printable ASCII only.
pub const MAX_SUBJECT: usize = 99;
/// Diagnostics kept in the notification; the full text is in the report.
pub const MAX_DIAGNOSTICS_CHARS: usize = 6_000;
/// SNS caps a message at 256 KB; stay well under it for the whole JSON.
pub const MAX_MESSAGE_BYTES: usize = 240 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub subject: String,
    pub text: String,
    pub document: Value,
    pub severity: Severity,
    /// The alert as a CloudWatch alarm notification, for `https`
    /// subscribers (see [`pager`]); None: the document alone.
    pub pager: Option<CloudWatchAlarmPayload>,
    /// The same page for a chat channel and PagerDuty ([`card`]).
    pub card: Card,
}

impl Notification {
    /// An incident's page: its severity and pager fields are the plan's.
    fn of_plan(plan: &Plan, subject: String, text: String, document: Value, card: Card) -> Self {
        Self {
            subject,
            text,
            document,
            severity: plan.severity,
            pager: Some(pager(plan)),
            card,
        }
    }

    /// What the notify action publishes: the SNS message of every protocol,
    /// and the `severity` and `state` attributes.
    pub fn message(&self) -> crate::actions::notify::Message {
        crate::actions::notify::Message {
            subject: self.subject.clone(),
            body: sns_message(self),
            severity: self.severity.as_str(),
            state: self
                .pager
                .as_ref()
                .map(|p| p.new_state_value.clone())
                .unwrap_or_default(),
        }
    }
}

/// Printable ASCII, single line, at most 99 characters.
pub fn sanitize_subject(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_SUBJECT));
    let mut last_space = false;
    for c in raw.chars() {
        let c = if c.is_ascii_graphic() {
            c
        } else if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            '?'
        };
        if c == ' ' && (last_space || out.is_empty()) {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    let trimmed = out.trim_end();
    if trimmed.len() <= MAX_SUBJECT {
        return trimmed.to_owned();
    }
    format!("{}...", trimmed[..MAX_SUBJECT - 3].trim_end())
}

/// Keeps the head of long command output, where `ps --sort` puts what matters,
/// and the note that SSM cut it, if it did.
pub fn trim_output(output: &str, max_chars: usize) -> String {
    let total = output.chars().count();
    if total <= max_chars {
        return output.trim_end().to_owned();
    }
    let (body, ssm_cut) = match output
        .trim_end()
        .strip_suffix(crate::commands::SSM_CUT_NOTE)
    {
        Some(body) => (body, true),
        None => (output, false),
    };
    let head: String = body.chars().take(max_chars).collect();
    let cut = head.rfind('\n').unwrap_or(head.len());
    format!(
        "{}\n[... {} more characters trimmed; the full output is in the incident report]{}",
        &head[..cut],
        body.chars().count() - head[..cut].chars().count(),
        if ssm_cut {
            format!("\n{}", crate::commands::SSM_CUT_NOTE)
        } else {
            String::new()
        }
    )
}

fn subject(plan: &Plan) -> String {
    let i = &plan.incident;
    let on = match (&plan.instance, &plan.group, &i.resource) {
        (Some(inst), Some(g), _) => format!(" on {inst} ({g})"),
        (Some(inst), None, _) => format!(" on {inst}"),
        (None, _, crate::incident::Resource::None) => String::new(),
        (None, _, r) => format!(" on {}", r.describe()),
    };
    // A disk alert's subject gives the space used, whichever way its source
    // counts: Prometheus disk rules fire on the free percentage. A value
    // shows only with its unit: a status check's 1 is not "1.0%".
    let value = if i.kind.is_disk() {
        crate::actions::context::disk_usage(i)
    } else {
        i.alert.value
    }
    .filter(|_| i.kind.measures_percent())
    .map(|v| format!(" {v:.1}%"))
    .unwrap_or_default();
    let raw = match (&i.transition, i.kind) {
        (Transition::Resolved, _) => {
            format!("[OK] Resolved: {}{on}", i.alert.alarm_name)
        }
        (_, crate::incident::IncidentKind::Unrouted) => {
            format!("[ALARM] {}: no playbook, nothing done", i.alert.alarm_name)
        }
        (_, kind) => format!("[ALARM] {}{value}{on}", kind.title()),
    };
    let prefix = if plan.dry_run { "[DRY RUN] " } else { "" };
    sanitize_subject(&format!("{prefix}{raw}"))
}

/// One line per action. Its words are first-responder's, but they may quote
/// a value that came from an event or an instance: escaped, so it stays one line.
fn action_line(a: &ActionReport) -> String {
    let what = a.detail.as_deref().unwrap_or(&a.reason);
    format!(
        "[{}] {} {}: {}",
        a.status.as_str().replace('_', " "),
        a.action.as_str(),
        escape(&a.target),
        escape(what)
    )
}

/// WHAT FIRED, the metric and the forecast: the part of the page that
/// says what happened, shared by the first page and the full report.
fn what_fired(t: &mut String, plan: &Plan) {
    let a = &plan.incident.alert;
    // Everything under WHAT FIRED comes from the event: each value quoted,
    // escaped and cut, so it cannot start a line or a section of its own.
    let _ = writeln!(t, "WHAT FIRED (as the alert says; quoted)");
    let _ = writeln!(
        t,
        "Alarm: {} ({} -> {})",
        quoted(&a.alarm_name, MAX_FIELD_CHARS),
        a.previous_state.map(|s| s.as_str()).unwrap_or("?"),
        a.state.as_str()
    );
    if let Some(m) = &a.metric {
        let _ = writeln!(
            t,
            "Metric: {} {}",
            quoted(&m.namespace, MAX_FIELD_CHARS),
            quoted(&m.name, MAX_FIELD_CHARS)
        );
        for (k, v) in &m.dimensions {
            let _ = writeln!(
                t,
                "    {} = {}",
                quoted(k, MAX_FIELD_CHARS),
                quoted(v, MAX_FIELD_CHARS)
            );
        }
    }
    match (a.value, a.threshold) {
        (Some(v), Some(th)) => {
            let _ = writeln!(t, "Value: {v:.1} (threshold {th})");
        }
        (Some(v), None) => {
            let _ = writeln!(t, "Value: {v:.1}");
        }
        _ => {}
    }
    let _ = writeln!(t, "When: {}", quoted(&a.state_timestamp, MAX_FIELD_CHARS));
    if let (Some(r), Some(acct)) = (&plan.region, &plan.account) {
        // Where every action of this incident was taken.
        let _ = writeln!(t, "Where: {r}, account {}", escape(acct));
    } else if let Some(r) = a.region.as_deref() {
        let _ = writeln!(
            t,
            "Where: {}{}",
            quoted(r, MAX_FIELD_CHARS),
            a.account
                .as_deref()
                .map(|x| format!(", account {}", quoted(x, MAX_FIELD_CHARS)))
                .unwrap_or_default()
        );
    }
    if !a.reason.is_empty() {
        let _ = writeln!(t, "Reason:");
        let _ = writeln!(t, "    {}", quoted(&a.reason, MAX_LONG_FIELD_CHARS));
    }
    if let Some(d) = a
        .description
        .as_deref()
        .filter(|d| !d.is_empty() && *d != a.reason)
    {
        let _ = writeln!(t, "Description:");
        let _ = writeln!(t, "    {}", quoted(d, MAX_LONG_FIELD_CHARS));
    }
    if let Some(c) = &plan.context {
        let _ = writeln!(t);
        let _ = writeln!(t, "THE METRIC (read from CloudWatch)");
        for line in c.lines() {
            let _ = writeln!(t, "{}", escape(&line));
        }
    }
    if let Some(f) = &plan.forecast {
        let now = crate::metrics::parse_time_ms(&a.state_timestamp)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or_else(chrono::Utc::now);
        let _ = writeln!(t, "Forecast: {}", f.describe(now));
    }
}

/// Held changes, each with its two links (signed, single-use; opening one
/// changes nothing, the page it shows asks for one press).
fn held_links(t: &mut String, actions: &[ActionReport]) {
    let held: Vec<&ActionReport> = actions.iter().filter(|r| r.approve_url.is_some()).collect();
    if !held.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "AWAITING YOUR APPROVAL");
        for r in held {
            let _ = writeln!(t, "- {} {}", r.action.as_str(), escape(&r.target));
            if let Some(u) = &r.approve_url {
                let _ = writeln!(t, "  approve: {u}");
            }
            if let Some(u) = &r.deny_url {
                let _ = writeln!(t, "  deny:    {u}");
            }
        }
    }
}

/// The full report's JSON document (`https` subscribers, the record):
/// `text` is the email's body, `share` each output's part of the budget.
fn report_document(
    plan: &Plan,
    subject: &str,
    actions: &[ActionReport],
    share: usize,
    text: &str,
) -> Value {
    let i = &plan.incident;
    let steps = plan.next_steps();
    document(
        plan,
        subject,
        false,
        json!({
            "notes": plan.notes,
            "actions": actions.iter().map(|r| {
                let mut j = json!({
                    "action": r.action,
                    "target": r.target,
                    "status": r.status,
                    "reason": r.reason,
                    "detail": r.detail,
                    "ids": r.ids,
                    "output": r.output.as_deref().map(|o| trim_output(o, share)),
                });
                if r.status == Status::AwaitingApproval {
                    j["approve_url"] = json!(r.approve_url);
                    j["deny_url"] = json!(r.deny_url);
                }
                j
            }).collect::<Vec<_>>(),
            "diagnostics": actions
                .iter()
                .find(|r| r.action == ActionName::CollectDiagnostics)
                .and_then(|r| r.output.as_deref().map(|out| json!({
                    "instance": r.target,
                    "output": trim_output(out, MAX_DIAGNOSTICS_CHARS),
                }))),
            "context": plan.context,
            "forecast": plan.forecast,
            "next_steps": if i.transition == Transition::Firing { steps } else { &[] },
            "text": text,
        }),
    )
}

/// Composes the notification. `actions` are the outcomes of everything but
/// the notification itself.
pub fn compose(plan: &Plan, actions: &[ActionReport]) -> Notification {
    let i = &plan.incident;
    let subject = subject(plan);
    // What the instance printed: diagnostics, evidence, cleanup and grow logs.
    let outputs: Vec<(String, &str)> = actions
        .iter()
        .filter_map(|r| {
            let head = match r.action {
                ActionName::CollectDiagnostics => format!("DIAGNOSTICS FROM {}", r.target),
                ActionName::CollectEvidence => format!("EVIDENCE FROM {}", r.target),
                other => format!("OUTPUT OF {} ON {}", other.as_str(), r.target),
            };
            r.output.as_deref().map(|o| (head, o))
        })
        .collect();

    let mut t = heading(plan, &subject);
    if plan.dry_run {
        let _ = writeln!(t, "DRY RUN: nothing in AWS was changed.");
    }
    let _ = writeln!(t);
    what_fired(&mut t, plan);
    let _ = writeln!(t);
    let _ = writeln!(t, "WHAT FIRST-RESPONDER DID");
    for n in &plan.notes {
        let _ = writeln!(t, "- {}", escape(n));
    }
    if actions.is_empty() && plan.notes.is_empty() {
        let _ = writeln!(t, "- nothing");
    }
    for r in actions {
        let _ = writeln!(t, "- {}", action_line(r));
    }
    held_links(&mut t, actions);
    let share = MAX_DIAGNOSTICS_CHARS / outputs.len().max(1);
    for (head, out) in &outputs {
        let _ = writeln!(t);
        let _ = writeln!(t, "{head}");
        let body = if out.trim().is_empty() {
            "(the command printed nothing)".to_owned()
        } else {
            escape_keeping_lines(&trim_output(out, share))
        };
        let _ = writeln!(t, "{body}");
    }
    let steps = plan.next_steps();
    if !steps.is_empty() && i.transition == Transition::Firing {
        let _ = writeln!(t);
        let _ = writeln!(t, "NEXT STEPS ({} playbook)", i.kind);
        for (n, s) in steps.iter().enumerate() {
            let _ = writeln!(t, "{}. {s}", n + 1);
        }
    }

    let mut lines = card_head(plan);
    lines.extend(plan.notes.iter().cloned());
    let card = card_for(plan, actions, lines);
    links_text(&mut t, &card.links);
    let mut document = report_document(plan, &subject, actions, share, &t);
    document["links"] = json!(card.links);

    Notification::of_plan(plan, subject, t, document, card)
}

/// What fired and the metric's line, for the chat card.
fn card_head(plan: &Plan) -> Vec<String> {
    let a = &plan.incident.alert;
    let mut head = format!(
        "{} ({} -> {})",
        a.alarm_name,
        a.previous_state.map(|s| s.as_str()).unwrap_or("?"),
        a.state.as_str()
    );
    match (a.value, a.threshold) {
        (Some(v), Some(th)) => head.push_str(&format!(": {v:.1} (threshold {th})")),
        (Some(v), None) => head.push_str(&format!(": {v:.1}")),
        _ => {}
    }
    let mut lines = vec![head];
    if let Some(c) = &plan.context {
        lines.extend(c.lines().into_iter().take(2));
    }
    lines
}

/// LINKS: each link on its own line, for the email.
pub fn links_text(t: &mut String, links: &[links::Link]) {
    if links.is_empty() {
        return;
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "LINKS");
    for l in links {
        let _ = writeln!(t, "- {}: {}", escape(&l.text), l.href);
    }
}

/// The first lines of every page's text: the subject and the incident.
fn heading(plan: &Plan, subject: &str) -> String {
    let i = &plan.incident;
    let mut t = String::new();
    let _ = writeln!(t, "{subject}");
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Incident {} | {} | severity {}",
        i.id,
        i.kind,
        plan.severity.as_str()
    );
    t
}

/// The JSON document's fields every page has, with `rest` (its own) added.
fn document(plan: &Plan, subject: &str, first_page: bool, rest: Value) -> Value {
    let i = &plan.incident;
    let mut d = json!({
        "version": 1,
        "first_page": first_page,
        "incident_id": i.id,
        "kind": i.kind,
        "transition": i.transition.as_str(),
        "severity": plan.severity,
        "dry_run": plan.dry_run,
        "subject": subject,
        "alarm": alarm_json(&i.alert),
        "instance": plan.instance,
        "resource": i.resource,
        "source": i.alert.source.as_str(),
        "group": plan.group,
        // Where the actions were taken (with many accounts).
        "account": plan.account,
        "region": plan.region,
    });
    if let (Some(d), Value::Object(rest)) = (d.as_object_mut(), rest) {
        d.extend(rest);
    }
    d
}

fn alarm_json(a: &Alert) -> Value {
    json!({
        "name": a.alarm_name,
        "arn": a.alarm_arn,
        "state": a.state,
        "previous_state": a.previous_state,
        "timestamp": a.state_timestamp,
        "reason": a.reason,
        "value": a.value,
        "threshold": a.threshold,
        "metric": a.metric,
        "region": a.region,
        "account": a.account,
    })
}

/// The `Message` for `Publish` with `MessageStructure=json`.
pub fn sns_message(n: &Notification) -> String {
    let doc = n.document.to_string();
    let https = https_document(n.pager.as_ref(), &n.document).to_string();
    let msg = json!({
        "default": n.text,
        "email": n.text,
        "sqs": doc,
        "http": https,
        "https": https,
        "lambda": doc,
    })
    .to_string();
    if msg.len() <= MAX_MESSAGE_BYTES {
        return msg;
    }
    // Far beyond what trimmed diagnostics produce; keep the notice deliverable.
    let short = format!(
        "{}\n\n[message too large for SNS; the full text is in the incident report {}]",
        trim_output(&n.text, 20_000),
        n.document["incident_id"].as_str().unwrap_or("")
    );
    let doc = json!({"incident_id": n.document["incident_id"], "subject": n.subject, "truncated": true, "text": short});
    let https = https_document(n.pager.as_ref(), &doc).to_string();
    let doc = doc.to_string();
    json!({"default": short, "email": short, "sqs": doc, "http": https, "https": https, "lambda": doc}).to_string()
}

#[cfg(test)]
mod tests;
