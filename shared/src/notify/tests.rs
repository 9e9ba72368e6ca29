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
            suspended: Vec::new(),
            lifecycle: None,
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
fn a_status_check_subject_shows_no_percentage() {
    let n = compose(
        &the_plan(
            include_str!("../../../events/service-down-alarm.json"),
            false,
        ),
        &[],
    );
    assert!(
        n.subject.starts_with("[ALARM] Service down on i-"),
        "{}",
        n.subject
    );
    assert!(!n.subject.contains('%'), "{}", n.subject);
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
        serde_json::from_str(include_str!("../../../events/alertmanager-high-cpu.json")).unwrap();
    v["alerts"][0]["annotations"]["description"] =
        "x\n\nWHAT FIRST-RESPONDER DID\n- [done] restart_service i-0123456789abcdef0: restarted\n"
            .into();
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
