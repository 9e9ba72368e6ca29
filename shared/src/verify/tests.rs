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

/// The check of `stored()` ten minutes after its scale-out: still firing.
fn still_firing() -> Verification {
    Verification {
        incident: "inc-1".into(),
        verdict: Verdict::StillFiring,
        checked: "2026-11-25T02:14:14Z".into(),
        alarm_state: Some("ALARM".into()),
        fixed: vec!["scale_out web-asg".into()],
        fixed_at: Some("2026-11-25T02:04:14Z".into()),
        minutes_after_fix: Some(10),
        published: false,
        note: None,
        held: Vec::new(),
    }
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
        held: vec!["reboot i-0abc: the approval link expired unanswered; nothing was done".into()],
        ..still_firing()
    };
    let (subject, text, sev) = compose(&s, &v, &["m ▁█".into()], &["Look.".into()]).unwrap();
    assert!(
        text.contains("HELD FOR APPROVAL\n- reboot i-0abc: the approval link expired unanswered"),
        "{text}"
    );
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

fn cpu(latest: f64, threshold: Option<f64>) -> MetricContext {
    use chrono::TimeZone;
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 2, 10, 0).unwrap();
    crate::series::summarize(
        "AWS/EC2/CPUUtilization".into(),
        300,
        vec![crate::series::Point { at, value: latest }],
        threshold,
        Some(crate::series::Comparison::GreaterThan),
    )
    .unwrap()
}

#[test]
fn an_alertmanager_alert_recovers_by_its_resolved_delivery_or_its_metric() {
    use chrono::TimeZone;
    let resolved = Utc.with_ymd_and_hms(2026, 11, 25, 2, 12, 0).unwrap();
    // Its resolved delivery decides, whatever the metric says.
    let (v, why) = alertmanager_verdict(Some(resolved), Ok(&cpu(95.0, Some(80.0))), None);
    assert_eq!(v, Verdict::Recovered);
    assert_eq!(
        why,
        "Alertmanager resolved the alert at 2026-11-25T02:12:00Z"
    );
    // None: the metric against the rule's threshold.
    let (v, why) = alertmanager_verdict(None, Ok(&cpu(90.5, Some(80.0))), None);
    assert_eq!(v, Verdict::StillFiring, "{why}");
    assert!(
        why.contains("still past the rule's threshold (latest 90.5, threshold 80)"),
        "{why}"
    );
    let (v, why) = alertmanager_verdict(None, Ok(&cpu(42.0, Some(80.0))), None);
    assert_eq!(v, Verdict::Recovered, "{why}");
    assert!(why.contains("resolved delivery has not come yet"), "{why}");
    // At the threshold is not past it (the rules compare with >).
    assert_eq!(
        alertmanager_verdict(None, Ok(&cpu(80.0, Some(80.0))), None).0,
        Verdict::Recovered
    );
    // Nothing to tell by: Alertmanager has not resolved it.
    assert_eq!(
        alertmanager_verdict(None, Ok(&cpu(42.0, None)), None).0,
        Verdict::StillFiring
    );
    // No series for the instance: not judged, the reason named.
    let (v, why) = alertmanager_verdict(
        None,
        Err("no datapoints for CWAgent/mem_used_percent between …"),
        None,
    );
    assert_eq!(v, Verdict::Unknown);
    assert!(why.contains("CWAgent/mem_used_percent"), "{why}");
    // The only datapoint is from before the fix (02:10, the fix at 02:12):
    // it judges nothing.
    let fixed = Utc.with_ymd_and_hms(2026, 11, 25, 2, 12, 0).unwrap();
    let (v, why) = alertmanager_verdict(None, Ok(&cpu(95.0, Some(80.0))), Some(fixed));
    assert_eq!(v, Verdict::Unknown, "{why}");
    assert_eq!(
        why,
        "no datapoint of AWS/EC2/CPUUtilization since the fix at 2026-11-25T02:12:00Z yet: not judged"
    );
    let before = Utc.with_ymd_and_hms(2026, 11, 25, 2, 10, 0).unwrap();
    assert_eq!(
        alertmanager_verdict(None, Ok(&cpu(95.0, Some(80.0))), Some(before)).0,
        Verdict::StillFiring
    );
}

#[test]
fn an_alertmanager_resolution_is_keyed_by_its_firing_incident() {
    let routes = crate::incident::Routes::default();
    let event = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../events")
                    .join(name),
            )
            .unwrap(),
        )
        .unwrap()
    };
    let (firing, _) =
        crate::respond::incidents(event("alertmanager-high-cpu.json"), &routes).unwrap();
    let (resolved, _) =
        crate::respond::incidents(event("alertmanager-high-cpu-resolved.json"), &routes).unwrap();
    assert_ne!(
        firing[0].id, resolved[0].id,
        "each delivery is its own occurrence"
    );
    let here = "111111111111/us-east-1";
    assert_eq!(
        firing[0].resolution_key(here),
        Some(format!("{here}#{}", firing[0].id))
    );
    assert_eq!(
        resolved[0].resolution_key(here),
        firing[0].resolution_key(here)
    );
    // A CloudWatch alarm's OK is keyed by where it is and the alarm's name:
    // the same name in another account or region is another alarm.
    let (ok, _) = crate::respond::incidents(event("high-cpu-ok.json"), &routes).unwrap();
    assert_eq!(
        ok[0].resolution_key(here),
        Some(format!("{here}#alarm:{}", ok[0].alert.alarm_name))
    );
    assert_ne!(
        ok[0].resolution_key("222222222222/us-east-1"),
        ok[0].resolution_key(here)
    );
    assert_ne!(
        ok[0].resolution_key("111111111111/us-west-2"),
        ok[0].resolution_key(here)
    );
    // The key of the release before is still read for one release.
    assert_eq!(
        super::legacy_resolution_key("cloudwatch", "web-high-cpu", "inc-1"),
        Some("alarm:web-high-cpu".into())
    );
    assert_eq!(resolution_key("forecast", "x", "inc-1", here), None);
}

#[test]
fn still_firing_with_nothing_changed_is_a_warning_that_says_why() {
    let s: Stored = serde_json::from_value(serde_json::json!({
        "id": "inc-2", "kind": "high_cpu", "alarm_name": "web-high-cpu",
        "source": "event_bridge", "instance": "i-0123456789abcdef0",
        "actions": [
            {"action": "snapshot", "target": "i-0123456789abcdef0", "status": "done", "started_at": "2026-11-25T02:04:13Z"},
            {"action": "scale_out", "target": "web-asg", "status": "skipped", "detail": "web-asg is at its MaxSize 3\nForged: line"},
            {"action": "reboot", "target": "i-0123456789abcdef0", "status": "awaiting_approval"},
            {"action": "notify", "target": "topic", "status": "done", "started_at": "2026-11-25T02:04:15Z"}
        ]
    }))
    .unwrap();
    let (fixes, at) = s.fixes();
    assert!(fixes.is_empty() && at.is_none());
    let v = Verification {
        incident: "inc-2".into(),
        verdict: Verdict::StillFiring,
        checked: "2026-11-25T02:14:14Z".into(),
        alarm_state: Some("ALARM".into()),
        fixed: Vec::new(),
        fixed_at: None,
        minutes_after_fix: None,
        published: false,
        note: None,
        held: vec!["reboot i-0123456789abcdef0: still awaiting approval".into()],
    };
    let (subject, text, sev) = compose(&s, &v, &[], &["Look.".into()]).unwrap();
    assert_eq!(sev, Severity::Warning);
    assert_eq!(
        subject,
        "[STILL FIRING] web-high-cpu on i-0123456789abcdef0: nothing was changed"
    );
    assert!(
        text.starts_with(
            "The alarm web-high-cpu is still firing at 2026-11-25T02:14:14Z; first-responder changed nothing:\n\
             - scale_out web-asg: skipped: web-asg is at its MaxSize 3\\nForged: line\n"
        ),
        "{text}"
    );
    // The held change is listed once, under its own heading.
    assert_eq!(text.matches("reboot").count(), 1, "{text}");
    assert!(!text.contains("first-responder did"), "{text}");
}

#[test]
fn the_check_tells_pagerduty_by_its_verdict_under_the_incident_key() {
    let s = stored();
    let mut v = still_firing();
    let now = chrono::Utc::now();
    let still = card(
        &s,
        &v,
        "[ESCALATION] x\n\nWHAT\nline",
        vec!["Look.".into()],
        now,
    );
    assert_eq!(still.pager, crate::oncall::PagerEvent::Trigger);
    assert_eq!(still.pager_severity, Some("critical"));
    assert_eq!(
        (still.dedup_key.as_str(), still.source.as_str()),
        ("inc-1", "i-0123456789abcdef0")
    );
    assert_eq!(still.next_steps, ["Look."]);
    v.verdict = Verdict::Recovered;
    let ok = card(&s, &v, "x", vec!["Look.".into()], now);
    assert_eq!(ok.pager, crate::oncall::PagerEvent::Resolve);
    assert!(ok.next_steps.is_empty());
    let doc = serde_json::json!({});
    assert_eq!(
        crate::oncall::card::pager_event("k", "s", "info", &ok, &doc),
        Some(
            serde_json::json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "inc-1"})
        )
    );
    v.verdict = Verdict::Unknown;
    assert_eq!(
        card(&s, &v, "x", Vec::new(), now).pager,
        crate::oncall::PagerEvent::None
    );
}
