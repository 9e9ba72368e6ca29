use super::*;
use crate::backtest::run::permissions;
use crate::plan::tests::{config, fleet};

fn history_item(name: &str, at: &str, old: &str, new: &str, value: f64) -> Value {
    let data = json!({
        "version": "1.0",
        "oldState": {"stateValue": old, "stateReason": "was fine"},
        "newState": {
            "stateValue": new,
            "stateReason": format!("Threshold Crossed: 1 out of the last 1 datapoints [{value} (25/11/26 01:59:00)] was greater than or equal to the threshold (80.0)."),
            "stateReasonData": {"version": "1.0", "statistic": "Average", "period": 300, "recentDatapoints": [value], "threshold": 80.0},
        },
    });
    json!({
        "AlarmName": name,
        "AlarmType": "MetricAlarm",
        "Timestamp": at,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": format!("Alarm updated from {old} to {new}"),
        "HistoryData": data.to_string(),
    })
}

fn defs(instance: &str) -> Definitions {
    definitions(
        "alarms.json",
        &json!({"MetricAlarms": [{
            "AlarmName": "web-high-cpu",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu",
            "Namespace": "AWS/EC2",
            "MetricName": "CPUUtilization",
            "Statistic": "Average",
            "Dimensions": [{"Name": "InstanceId", "Value": instance}],
            "Period": 300,
            "Threshold": 80.0,
        }]}),
    )
    .unwrap()
}

const I: &str = "i-0123456789abcdef0";

#[test]
fn only_changes_into_alarm_are_replayed_in_time_order_each_once() {
    let items = vec![
        history_item(
            "web-high-cpu",
            "2026-11-02T10:00:00.000000+00:00",
            "ALARM",
            "OK",
            41.0,
        ),
        history_item(
            "web-high-cpu",
            "2026-11-02T09:00:00.000000+00:00",
            "OK",
            "ALARM",
            95.0,
        ),
        history_item(
            "web-high-cpu",
            "2026-11-01T09:00:00.000000+00:00",
            "INSUFFICIENT_DATA",
            "ALARM",
            91.0,
        ),
        history_item(
            "web-high-cpu",
            "2026-11-01T09:00:00.000000+00:00",
            "INSUFFICIENT_DATA",
            "ALARM",
            91.0,
        ),
        history_item(
            "unknown-alarm",
            "2026-11-03T09:00:00.000000+00:00",
            "OK",
            "ALARM",
            1.0,
        ),
    ];
    let text = json!({"AlarmHistoryItems": items}).to_string();
    let inputs = vec![("h.json".to_owned(), read_input("h.json", &text).unwrap())];
    assert_eq!(alarm_names(&inputs), ["unknown-alarm", "web-high-cpu"]);
    let r = transitions(&inputs, &defs(I), &Routes::new()).unwrap();
    assert_eq!(
        r.len(),
        3,
        "the repeated item is one transition; ALARM -> OK is none"
    );
    assert_eq!(r[0].at.to_rfc3339(), "2026-11-01T09:00:00+00:00");
    let first = r[0].incident.as_ref().unwrap();
    assert_eq!(first.kind, crate::incident::IncidentKind::HighCpu);
    assert_eq!(first.alert.value, Some(91.0));
    assert_eq!(first.alert.state_timestamp, "2026-11-01T09:00:00.000+0000");
    assert!(
        r[2].incident
            .as_ref()
            .unwrap_err()
            .contains("no definition")
    );
}

#[test]
fn alertmanager_lines_replay_each_firing_occurrence_once() {
    let am = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/alertmanager-high-cpu.json"
    ))
    .unwrap();
    let one: Value = serde_json::from_str(&am).unwrap();
    // Sent again at repeat_interval: the same occurrence.
    let text = format!("{}\n\n{}\n", one, one);
    let input = read_input("am.jsonl", &text).unwrap();
    let r = transitions(
        &[("am.jsonl".into(), input)],
        &Definitions::new(),
        &Routes::new(),
    )
    .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].alarm, "HighCPUUsage");
    let e = read_input("x", "{\"nope\": 1}\n").unwrap_err();
    assert!(e.to_string().contains("line 1: neither"), "{e}");
}

#[test]
fn the_limits_are_taken_as_the_engine_takes_them() {
    let c = config();
    let mut limits = Limits::default();
    let mut s = Summary::default();
    let input = |at: &str| {
        let t =
            json!({"AlarmHistoryItems": [history_item("web-high-cpu", at, "OK", "ALARM", 95.0)]})
                .to_string();
        let input = read_input("h", &t).unwrap();
        transitions(&[("h".into(), input)], &defs(I), &Routes::new())
            .unwrap()
            .remove(0)
    };
    // Transitions 11 minutes apart (the scale-out cooldown is 10) and one
    // a minute after the third: 3 scale-outs, the cooldown refuses the one
    // at 09:23, the flap guard (3 an hour) the one at 09:33.
    for at in [
        "2026-11-01T09:00:00Z",
        "2026-11-01T09:11:00Z",
        "2026-11-01T09:22:00Z",
        "2026-11-01T09:23:00Z",
        "2026-11-01T09:33:00Z",
    ] {
        let r = input(at);
        let p = crate::plan::plan(r.incident.as_ref().unwrap(), &fleet(1, 3), &c);
        s.apply(&r, &p, &c, &mut limits);
    }
    let x = &s.overall.actions["scale_out"];
    assert_eq!(x.would_run, 3, "{x:?}");
    assert_eq!(x.suppressed.get("flap_guard"), Some(&1), "{x:?}");
    assert_eq!(x.suppressed.get("cooldown"), Some(&1), "{x:?}");
    assert_eq!(x.suppressed.get("breaker"), None);
    // Evidence and diagnostics are not limited.
    assert_eq!(s.overall.actions["snapshot"].would_run, 5);
    assert_eq!(s.overall.actions["collect_diagnostics"].would_run, 5);
    assert_eq!(s.overall.transitions, 5);
    assert_eq!(s.overall.incidents, 5);
    assert_eq!(
        s.overall.busiest_hour,
        Some(BusiestHour {
            hour: "2026-11-01T09:00Z".into(),
            transitions: 5
        })
    );
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["transitions"], 5);
    assert_eq!(j["actions"]["scale_out"]["suppressed"]["flap_guard"], 1);
    assert_eq!(
        j["alarms"]["web-high-cpu"]["actions"]["scale_out"]["would_run"],
        3
    );
    let text = s.to_text();
    assert!(text.contains("alarm web-high-cpu: 5 transitions, 5 incidents, busiest hour 2026-11-01T09:00Z (5 transitions)"), "{text}");
    assert!(
        text.contains("suppressed cooldown 1, flap_guard 1"),
        "{text}"
    );
}

#[test]
fn the_planners_reasons_name_their_limit() {
    let c = config();
    let mut o = fleet(1, 3);
    if let Ok(Some(g)) = &mut o.group {
        g.tags.clear();
    }
    let r = {
        let t = json!({"AlarmHistoryItems": [history_item("web-high-cpu", "2026-11-01T09:00:00Z", "OK", "ALARM", 95.0)]}).to_string();
        let input = read_input("h", &t).unwrap();
        transitions(&[("h".into(), input)], &defs(I), &Routes::new())
            .unwrap()
            .remove(0)
    };
    let scale_out_skip = |o: &crate::plan::Observed| {
        let p = crate::plan::plan(r.incident.as_ref().unwrap(), o, &c);
        match p
            .actions
            .iter()
            .find(|a| a.name == ActionName::ScaleOut)
            .map(|a| &a.decision)
        {
            Some(Decision::Skip(w)) => w.clone(),
            d => panic!("{d:?}"),
        }
    };
    let why = scale_out_skip(&o);
    assert_eq!(limit_of(&why), "opt_in", "{why}");
    let why = scale_out_skip(&fleet(3, 3));
    assert_eq!(limit_of(&why), "budget", "{why}");
    assert_eq!(limit_of("instance i-1 not found"), "other");
}

#[cfg(feature = "aws")]
#[test]
fn the_shipped_policy_grants_exactly_the_backtests_reads() {
    let text = include_str!("../../../infra/iam/backtest-policy.json");
    let v: Value = serde_json::from_str(text).unwrap();
    let granted: Vec<&str> = v["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(granted, permissions());
    for a in &granted {
        let verb = a.split(':').nth(1).unwrap();
        assert!(
            ["Describe", "List", "Get"]
                .iter()
                .any(|p| verb.starts_with(p)),
            "{a} is not a read"
        );
    }
}

#[test]
fn the_budgets_are_simulated_as_the_engine_takes_them() {
    let mut c = config();
    c.budget_per_account_per_hour = Some(2);
    c.scale_out_cooldown = std::time::Duration::ZERO;
    let mut limits = Limits::default();
    let mut s = Summary::default();
    // Four alarms (four flap guards) in one hour: the account's budget of
    // 2 lets two scale-outs through and names itself for the others.
    for (k, at) in ["09:00", "09:05", "09:10", "09:15"].iter().enumerate() {
        let t = json!({"AlarmHistoryItems": [history_item("web-high-cpu", &format!("2026-11-01T{at}:00Z"), "OK", "ALARM", 95.0)]})
            .to_string()
            .replace("web-high-cpu", &format!("web-high-cpu-{k}"));
        let mut d = defs(I);
        let def = d.remove("web-high-cpu").unwrap();
        let name = format!("web-high-cpu-{k}");
        let def: Value =
            serde_json::from_str(&def.to_string().replace("web-high-cpu", &name)).unwrap();
        let defs: Definitions = [(name, def)].into();
        let input = read_input("h", &t).unwrap();
        let r = transitions(&[("h".into(), input)], &defs, &Routes::new())
            .unwrap()
            .remove(0);
        let p = crate::plan::plan(r.incident.as_ref().unwrap(), &fleet(1, 3), &c);
        s.apply(&r, &p, &c, &mut limits);
    }
    let x = &s.overall.actions["scale_out"];
    assert_eq!(x.would_run, 2, "{x:?}");
    assert_eq!(x.suppressed.get("budget"), Some(&2), "{x:?}");
}
