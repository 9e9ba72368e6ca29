use super::*;

fn stored() -> Stored {
    serde_json::from_value(serde_json::json!({
        "id": "inc-1", "kind": "high_cpu", "alarm_name": "web-high-cpu\nForged: line",
        "source": "event_bridge", "instance": "i-0123456789abcdef0",
        "actions": [
            {"action": "snapshot", "target": "i-0123456789abcdef0", "status": "done", "started_at": "2026-11-25T02:04:13Z"},
            {"action": "scale_out", "target": "web-asg", "status": "done", "started_at": "2026-11-25T02:04:14Z"},
            {"action": "kill_process", "target": "i-0123456789abcdef0", "status": "skipped"},
            {"action": "notify", "target": "topic", "status": "done", "started_at": "2026-11-25T02:04:15Z"}
        ]
    }))
    .unwrap()
}

#[test]
fn the_fixes_are_the_changes_that_were_done() {
    let s = stored();
    let (fixes, at) = s.fixes();
    let names: Vec<&str> = fixes.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["scale_out"]);
    assert_eq!(
        at.map(crate::series::rfc3339).as_deref(),
        Some("2026-11-25T02:04:14Z")
    );
}

#[test]
fn the_alarm_state_gives_the_verdict() {
    assert_eq!(Verdict::of_alarm_state("ALARM"), Verdict::StillFiring);
    assert_eq!(Verdict::of_alarm_state("OK"), Verdict::Recovered);
    assert_eq!(
        Verdict::of_alarm_state("INSUFFICIENT_DATA"),
        Verdict::Unknown
    );
    assert_eq!(
        serde_json::to_value(Verdict::StillFiring).unwrap(),
        "still_firing"
    );
}

#[test]
fn only_our_sqs_messages_are_verification_requests() {
    let body = serde_json::to_string(&Request::new("inc-1")).unwrap();
    let ev = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "body": body}]});
    assert_eq!(
        Request::from_sqs_event(&ev),
        Some(vec![Request::new("inc-1")])
    );
    let other = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "body": "{\"x\":1}"}]});
    assert_eq!(Request::from_sqs_event(&other), None);
    assert_eq!(
        Request::from_sqs_event(&serde_json::json!({"detail": {}})),
        None
    );
}

#[test]
fn the_escalation_is_critical_says_what_was_done_and_escapes_the_alarm_name() {
    let s = stored();
    let v = Verification {
        incident: "inc-1".into(),
        verdict: Verdict::StillFiring,
        checked: "2026-11-25T02:14:14Z".into(),
        alarm_state: Some("ALARM".into()),
        fixed: vec!["scale_out web-asg".into()],
        fixed_at: Some("2026-11-25T02:04:14Z".into()),
        minutes_after_fix: Some(10),
        published: false,
        note: None,
    };
    let (subject, text, sev) = compose(&s, &v, &["m ▁█".into()], &["Look.".into()]).unwrap();
    assert_eq!(sev, Severity::Critical);
    assert!(
        subject.starts_with("[ESCALATION] Still firing after the fix"),
        "{subject}"
    );
    assert!(!subject.contains('\n'));
    assert!(text.starts_with(
        "first-responder did scale_out web-asg at 2026-11-25T02:04:14Z; the alarm web-high-cpu\\nForged: line is still firing 10 minutes later."
    ), "{text}");
    assert!(
        text.contains("THE METRIC SINCE THE FIX") && text.contains("1. Look."),
        "{text}"
    );
    let ok = Verification {
        verdict: Verdict::Recovered,
        ..v.clone()
    };
    let (subject, text, sev) = compose(&s, &ok, &[], &["Look.".into()]).unwrap();
    assert_eq!(sev, Severity::Info);
    assert!(subject.starts_with("[RECOVERED]"), "{subject}");
    assert!(
        text.contains("recovered 10 minutes after") && !text.contains("NEXT STEPS"),
        "{text}"
    );
    let unknown = Verification {
        verdict: Verdict::Unknown,
        ..v
    };
    assert!(compose(&s, &unknown, &[], &[]).is_none());
}
