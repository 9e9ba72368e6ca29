//! The notification: composed from the plan and the action outcomes, pure.
//! One SNS publish with `MessageStructure=json` carries a readable text for
//! email (and `default`), a JSON document for sqs and lambda, and for https
//! the same document beside the fields of a CloudWatch alarm notification,
//! which the paging services' CloudWatch integrations read.

use aws_lambda_events::sns::{CloudWatchAlarmPayload, CloudWatchAlarmTrigger, CloudWatchDimension};
use serde_json::{Value, json};
use std::fmt::Write;

use crate::alert::{AlarmState, Alert, AlertSource};

use crate::incident::Transition;
use crate::plan::{ActionName, Plan};
use crate::report::{ActionReport, Severity, Status};
use crate::text::{MAX_FIELD_CHARS, MAX_LONG_FIELD_CHARS, escape, escape_keeping_lines, quoted};

mod pager;
pub use pager::{alarm_key, cloudwatch_time, https_document, pager};

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
}

impl Notification {
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
    // counts: Prometheus disk rules fire on the free percentage.
    let value = if i.kind.is_disk() {
        crate::actions::context::disk_usage(i)
    } else {
        i.alert.value
    }
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
    // Held changes: each with its two links (signed, single-use; opening
    // one changes nothing, the page it shows asks for one press).
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

    let document = document(
        plan,
        &subject,
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
            "text": t,
        }),
    );

    Notification {
        subject,
        text: t,
        document,
        severity: plan.severity,
        pager: Some(pager(plan)),
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

/// The first page: sent while the work goes on, when it takes longer than
/// `FIRST_PAGE_BUDGET_SECONDS` (see `engine::first_page`). It says what
/// fired, the metric when it is in, and what is under way, and that the
/// full report follows; its pager fields are the report's, so a paging
/// service opens the incident now and the report lands on the same one.
/// `typical`: how long the plan's work typically takes.
pub fn compose_first(plan: &Plan, typical: std::time::Duration) -> Notification {
    let full = subject(plan);
    let subject = sanitize_subject(&match full.strip_prefix("[ALARM] ") {
        Some(rest) => format!("[ON IT] {rest}"),
        None => format!("[ON IT] {full}"),
    });
    let mut t = heading(plan, &subject);
    let _ = writeln!(
        t,
        "first-responder is on it: the work below typically takes about {} s. The full \
         report (what was done, the diagnostics, the next steps) follows when it ends.",
        typical.as_secs().max(1)
    );
    let _ = writeln!(t);
    what_fired(&mut t, plan);
    // What runs now, then after it, then what waits for a person: the
    // planner's own words for each step.
    let mut under_way = Vec::new();
    let mut then = Vec::new();
    let mut held = Vec::new();
    let first_stage = plan
        .actions
        .iter()
        .filter(|a| {
            a.name != ActionName::Notify && matches!(a.decision, crate::plan::Decision::Do(_))
        })
        .map(|a| a.stage)
        .min();
    for a in plan.actions.iter().filter(|a| a.name != ActionName::Notify) {
        match &a.decision {
            crate::plan::Decision::Do(step) => {
                let line = (a.name.as_str(), escape(&step.describe()));
                if Some(a.stage) == first_stage {
                    under_way.push(line);
                } else {
                    then.push(line);
                }
            }
            crate::plan::Decision::Hold(step) => {
                held.push((a.name.as_str(), escape(&step.describe())))
            }
            _ => {}
        }
    }
    for (head, lines) in [
        ("UNDER WAY", &under_way),
        ("THEN, DEPENDING ON WHAT THAT FINDS", &then),
        (
            "TO BE HELD FOR YOUR APPROVAL (links in the full report)",
            &held,
        ),
    ] {
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "{head}");
        for (name, what) in lines {
            let _ = writeln!(t, "- {name}: {what}");
        }
    }
    let step = |(name, what): &(&str, String)| json!({"action": name, "step": what});
    let document = document(
        plan,
        &subject,
        true,
        json!({
            "typical_seconds": typical.as_secs(),
            "under_way": under_way.iter().map(step).collect::<Vec<_>>(),
            "then": then.iter().map(step).collect::<Vec<_>>(),
            "held": held.iter().map(step).collect::<Vec<_>>(),
            "context": plan.context,
            "text": t,
        }),
    );
    Notification {
        subject,
        text: t,
        document,
        severity: plan.severity,
        pager: Some(pager(plan)),
    }
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
mod tests {
    use super::*;
    use crate::alert::parse_event;
    use crate::config::Config;
    use crate::ids::{GroupName, VolumeId};
    use crate::incident::Incident;
    use crate::plan::{ActionName, AttachedVolume, GroupState, Observed, plan};
    use crate::report::Status;

    fn the_plan(src: &str, dry_run: bool) -> Plan {
        let i = Incident::from_alert(parse_event(src.as_bytes()).unwrap().remove(0)).unwrap();
        let observed = Observed {
            kill_switch: Ok(false),
            resolved: None,
            resolved_in: None,
            volumes: Ok(vec![AttachedVolume {
                id: VolumeId::parse("t", "vol-0000000000000000a").unwrap(),
                device: Some("/dev/xvda".into()),
                size_gib: Some(8),
                volume_type: None,
                tags: Default::default(),
            }]),
            group: Ok(Some(GroupState {
                name: GroupName::parse("t", "web-asg").unwrap(),
                desired: 1,
                min: 1,
                max: 3,
                tags: Default::default(),
            })),
            ..Observed::nothing()
        };
        let c = Config {
            notify_topic_arn: Some("arn:aws:sns:us-east-1:1:t".into()),
            dry_run,
            ..Config::default()
        };
        plan(&i, &observed, &c)
    }

    fn outcomes() -> Vec<ActionReport> {
        let mut snap = ActionReport::new(
            ActionName::Snapshot,
            "vol-0000000000000000a",
            Status::Done,
            "evidence",
        );
        snap.detail = Some("snap-0123 of vol-0000000000000000a (/dev/xvda)".into());
        snap.ids = vec!["snap-0123".into()];
        let mut diag = ActionReport::new(
            ActionName::CollectDiagnostics,
            "i-0123456789abcdef0",
            Status::Done,
            "diag",
        );
        diag.output = Some(format!(
            "== top processes by CPU ==\nUSER PID %CPU\n{}",
            "java 100 99.0\n".repeat(2000)
        ));
        let scale = ActionReport::new(
            ActionName::ScaleOut,
            "web-asg",
            Status::Failed,
            "SetDesiredCapacity of web-asg to 2: Throttling",
        );
        vec![snap, diag, scale]
    }

    #[test]
    fn subject_is_short_printable_and_says_what() {
        let n = compose(
            &the_plan(include_str!("../../../events/high-cpu-alarm.json"), false),
            &outcomes(),
        );
        assert_eq!(
            n.subject,
            "[ALARM] High CPU 95.3% on i-0123456789abcdef0 (web-asg)"
        );
        assert_eq!(n.severity, Severity::Critical);
        let n = compose(
            &the_plan(include_str!("../../../events/high-cpu-alarm.json"), true),
            &outcomes(),
        );
        assert!(n.subject.starts_with("[DRY RUN] [ALARM] High CPU"));
    }

    #[test]
    fn a_disk_subject_gives_the_space_used_whichever_way_the_source_counts() {
        // CloudWatch's agent counts used space; the Prometheus rule, free space.
        let cw = compose(
            &the_plan(include_str!("../../../events/disk-full-alarm.json"), false),
            &[],
        );
        let prom = the_plan(
            include_str!("../../../events/alertmanager-disk-full.json"),
            false,
        );
        let free = prom.incident.alert.value.unwrap();
        let prom = compose(&prom, &[]);
        assert!(
            cw.subject.starts_with("[ALARM] Disk full 9"),
            "{}",
            cw.subject
        );
        assert!(
            prom.subject
                .starts_with(&format!("[ALARM] Disk full {:.1}% ", 100.0 - free)),
            "{} (free {free})",
            prom.subject
        );
    }

    #[test]
    fn sanitize_subject_cases() {
        assert_eq!(sanitize_subject("a\nb\tc\u{0}d"), "a b c d");
        assert_eq!(sanitize_subject("  CPU — 95%  "), "CPU ? 95%");
        let long = sanitize_subject(&"x".repeat(300));
        assert_eq!(long.len(), MAX_SUBJECT);
        assert!(long.ends_with("..."));
        for s in [&"é".repeat(200), &"a b ".repeat(100), "\u{202e}evil"] {
            let out = sanitize_subject(s);
            assert!(
                out.len() <= MAX_SUBJECT && out.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "{out:?}"
            );
        }
    }

    #[test]
    fn body_reports_every_action_the_output_and_next_steps() {
        let n = compose(
            &the_plan(include_str!("../../../events/high-cpu-alarm.json"), false),
            &outcomes(),
        );
        let t = &n.text;
        for needle in [
            "Alarm: \"web-high-cpu\" (OK -> ALARM)",
            "Metric: \"AWS/EC2\" \"CPUUtilization\"\n    \"InstanceId\" = \"i-0123456789abcdef0\"",
            "Value: 95.3 (threshold 80)",
            "[done] snapshot vol-0000000000000000a: snap-0123 of vol-0000000000000000a (/dev/xvda)",
            "[failed] scale_out web-asg: SetDesiredCapacity of web-asg to 2: Throttling",
            "DIAGNOSTICS FROM i-0123456789abcdef0",
            "== top processes by CPU ==",
            "more characters trimmed",
            "NEXT STEPS (high_cpu playbook)",
            "1. Look at CPU usage in detail on the instance (top, htop).",
            "5. Consider scaling",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        assert!(t.len() < 10_000, "{}", t.len());
        let d = &n.document;
        assert_eq!(d["kind"], "high_cpu");
        assert_eq!(d["severity"], "critical");
        assert_eq!(d["actions"][0]["ids"][0], "snap-0123");
        assert_eq!(d["actions"][2]["status"], "failed");
        assert_eq!(d["next_steps"].as_array().unwrap().len(), 5);
    }

    /// An annotation that tries to print a section of its own, and a name
    /// with a right-to-left override: shown quoted and escaped on one line.
    #[test]
    fn event_text_cannot_forge_lines_of_the_email() {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/alertmanager-high-cpu.json"))
                .unwrap();
        v["alerts"][0]["annotations"]["description"] =
            "x\n\nWHAT FIRST-RESPONDER DID\n- [done] restart_service i-0123456789abcdef0: restarted\n".into();
        v["alerts"][0]["labels"]["team"] = "ops\u{202e}nimda\r\nWhere: us-east-1".into();
        v["alerts"][0]["labels"]["instance"] = "i-0123456789abcdef0".into();
        v["alerts"] = serde_json::json!([v["alerts"][0].clone()]);
        let p = the_plan(&v.to_string(), false);
        let n = compose(&p, &outcomes());
        let lines: Vec<&str> = n.text.lines().collect();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("WHAT FIRST-RESPONDER DID"))
                .count(),
            1,
            "{}",
            n.text
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("- [done] restart_service")),
            "{}",
            n.text
        );
        assert!(!lines.iter().any(|l| l.starts_with("Where:")), "{}", n.text);
        assert!(
            !n.text.contains('\u{202e}') && !n.text.contains('\r'),
            "{}",
            n.text
        );
        assert!(
            n.text
                .contains("    \"x\\n\\nWHAT FIRST-RESPONDER DID\\n- [done] restart_service"),
            "{}",
            n.text
        );
        assert!(
            n.text
                .contains("\"team\" = \"ops\\u{202e}nimda\\r\\nWhere: us-east-1\""),
            "{}",
            n.text
        );
        // A very long field is cut, and says so.
        v["alerts"][0]["annotations"]["description"] = "y".repeat(5000).into();
        let n = compose(&the_plan(&v.to_string(), false), &outcomes());
        assert!(
            n.text.contains("[cut: 5000 characters, first 1000 shown]"),
            "{}",
            n.text
        );
        assert!(n.text.lines().all(|l| l.chars().count() < 1200));
    }

    #[test]
    fn resolved_notice_is_short_and_has_no_next_steps() {
        let n = compose(
            &the_plan(include_str!("../../../events/high-cpu-ok.json"), false),
            &[],
        );
        assert_eq!(
            n.subject,
            "[OK] Resolved: web-high-cpu on i-0123456789abcdef0 (web-asg)"
        );
        assert_eq!(n.severity, Severity::Info);
        assert!(!n.text.contains("NEXT STEPS"));
        assert!(n.text.contains("no remediation on recovery"));
        assert!(n.text.contains("(ALARM -> OK)"));
    }

    #[test]
    fn sns_message_has_a_body_per_protocol_and_fits() {
        let n = compose(
            &the_plan(include_str!("../../../events/high-cpu-alarm.json"), false),
            &outcomes(),
        );
        let m: Value = serde_json::from_str(&sns_message(&n)).unwrap();
        assert_eq!(m["default"], n.text);
        assert_eq!(m["email"], n.text);
        for p in ["sqs", "https", "lambda"] {
            let doc: Value = serde_json::from_str(m[p].as_str().unwrap()).unwrap();
            assert_eq!(doc["incident_id"], n.document["incident_id"]);
        }
        // A pathological text still yields a deliverable message.
        let mut huge = n.clone();
        huge.text = "x".repeat(400_000);
        huge.document["text"] = Value::String(huge.text.clone());
        assert!(sns_message(&huge).len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn trim_output_keeps_the_head_on_a_line_boundary() {
        let out = "line\n".repeat(100);
        let t = trim_output(&out, 52);
        assert!(t.starts_with("line\nline\n"));
        assert!(t.contains("more characters trimmed"));
        assert_eq!(trim_output("short\n", 100), "short");
    }

    #[test]
    fn trim_output_keeps_the_note_that_ssm_cut_the_output() {
        use crate::commands::{SSM_CUT_NOTE, SSM_STDOUT_LIMIT, with_cut_note};
        assert!(SSM_CUT_NOTE.contains(&SSM_STDOUT_LIMIT.to_string()));
        let out = with_cut_note(&"line\n".repeat(SSM_STDOUT_LIMIT / 5));
        let t = trim_output(&out, 60);
        assert!(t.starts_with("line\nline\n"), "{t}");
        assert!(t.contains("more characters trimmed"), "{t}");
        assert!(t.ends_with(SSM_CUT_NOTE), "{t}");
        assert!(t.len() < 400, "{t}");
    }

    /// The `https` (and `http`) message as a pager's CloudWatch integration
    /// reads it: typed by `aws_lambda_events`' CloudWatch alarm payload.
    fn pager_view(
        n: &Notification,
        key: &str,
    ) -> (aws_lambda_events::sns::CloudWatchAlarmPayload, Value) {
        let msg: Value = serde_json::from_str(&sns_message(n)).unwrap();
        let text = msg[key].as_str().unwrap();
        (
            serde_json::from_str(text).unwrap(),
            serde_json::from_str(text).unwrap(),
        )
    }

    #[test]
    fn the_https_message_is_a_cloudwatch_alarm_notification_and_the_sqs_one_ours() {
        let n = compose(
            &the_plan(include_str!("../../../events/high-cpu-alarm.json"), false),
            &outcomes(),
        );
        let (cw, raw) = pager_view(&n, "https");
        assert_eq!(cw.alarm_name, "web-high-cpu");
        assert_eq!(
            (cw.new_state_value.as_str(), cw.old_state_value.as_str()),
            ("ALARM", "OK")
        );
        assert_eq!(cw.state_change_time, "2026-11-25T02:04:12.152+0000");
        assert_eq!(
            cw.alarm_arn,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu"
        );
        assert_eq!(cw.aws_account_id, "123456789012");
        assert_eq!(cw.trigger.metric_name.as_deref(), Some("CPUUtilization"));
        assert_eq!(cw.trigger.namespace.as_deref(), Some("AWS/EC2"));
        assert_eq!(cw.trigger.threshold, 80.0);
        assert_eq!(cw.trigger.dimensions[0].name, "InstanceId");
        // Types as AWS documents them, and first-responder's own fields beside.
        assert!(
            raw["AlarmName"].is_string() && raw["Trigger"]["Threshold"].is_f64(),
            "{raw}"
        );
        assert!(
            raw["Trigger"]["Period"].is_i64() && raw["Trigger"]["Dimensions"].is_array(),
            "{raw}"
        );
        assert_eq!(raw["incident_id"], n.document["incident_id"]);
        assert_eq!(raw["severity"], "critical");
        let (http, _) = pager_view(&n, "http");
        assert_eq!(http, cw);
        // The sqs and lambda documents stay first-responder's own.
        let msg: Value = serde_json::from_str(&sns_message(&n)).unwrap();
        for key in ["sqs", "lambda"] {
            let doc: Value = serde_json::from_str(msg[key].as_str().unwrap()).unwrap();
            assert_eq!(doc, n.document);
            assert!(doc.get("AlarmName").is_none());
        }
    }

    #[test]
    fn an_alertmanager_alert_opens_and_resolves_one_pager_incident() {
        let firing = include_str!("../../../events/alertmanager-high-cpu.json");
        let resolved = include_str!("../../../events/alertmanager-high-cpu-resolved.json");
        let (f, _) = pager_view(&compose(&the_plan(firing, false), &[]), "https");
        let (r, _) = pager_view(&compose(&the_plan(resolved, false), &[]), "https");
        assert_eq!(f.alarm_name, "HighCPUUsage [7e4a1c9b2d3f5a60]");
        assert_eq!(r.alarm_name, f.alarm_name, "the same key resolves it");
        assert_eq!(
            (f.new_state_value.as_str(), r.new_state_value.as_str()),
            ("ALARM", "OK")
        );
        assert_eq!(f.state_change_time, "2026-11-25T02:04:00.000+0000");
        assert_eq!(f.trigger.namespace.as_deref(), Some("prometheus"));
        assert_eq!(f.trigger.threshold, 80.0, "the rule's threshold annotation");
    }
}
