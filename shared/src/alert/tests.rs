use super::*;

const HIGH_CPU: &str = include_str!("../../../events/high-cpu-alarm.json");
const HIGH_CPU_OK: &str = include_str!("../../../events/high-cpu-ok.json");

#[test]
fn parses_the_sample_high_cpu_alarm() {
    let alerts = parse_event(HIGH_CPU.as_bytes()).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.alarm_name, "web-high-cpu");
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
    assert_eq!(a.value, Some(95.3));
    assert_eq!(a.threshold, Some(80.0));
    assert_eq!(
        a.alarm_arn.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu")
    );
    let m = a.metric.as_ref().unwrap();
    assert_eq!(
        (m.namespace.as_str(), m.name.as_str()),
        ("AWS/EC2", "CPUUtilization")
    );
    assert_eq!(m.dimensions["InstanceId"], "i-0123456789abcdef0");
    assert_eq!(a.state_timestamp, "2026-11-25T02:04:12.152+0000");
}

#[test]
fn parses_the_recovery() {
    let a = &parse_event(HIGH_CPU_OK.as_bytes()).unwrap()[0];
    assert_eq!(a.state, AlarmState::Ok);
    assert_eq!(a.previous_state, Some(AlarmState::Alarm));
    assert_eq!(a.value, Some(37.9));
}

#[test]
fn value_comes_from_the_newest_datapoint() {
    let rd = Some(r#"{"recentDatapoints":[91.0,97.5],"threshold":90}"#.to_owned());
    assert_eq!(triggering_value(&rd, ""), (Some(97.5), Some(90.0)));
}

#[test]
fn value_falls_back_to_the_reason_text() {
    let reason =
        "Threshold Crossed: 1 out of the last 1 datapoints [88.25 (25/11/26 01:59:00)] was greater";
    assert_eq!(triggering_value(&None, reason), (Some(88.25), None));
    assert_eq!(
        triggering_value(&Some("not json".into()), reason).0,
        Some(88.25)
    );
    assert_eq!(triggering_value(&None, "no datapoints here"), (None, None));
    assert_eq!(triggering_value(&None, "[NaN ]"), (None, None));
}

fn with(path: &[&str], new: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(HIGH_CPU).unwrap();
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = new;
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not valid JSON"),
        (b"[]".to_vec(), "expected a JSON object"),
        (b"{}".to_vec(), "not an alert"),
        (
            br#"{"detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch"}"#
                .to_vec(),
            "field `detail`: missing",
        ),
        (
            br#"{"detail-type":5,"source":"aws.cloudwatch","detail":{}}"#.to_vec(),
            "field `detail-type`",
        ),
        (
            with(
                &["detail-type"],
                "EC2 Instance State-change Notification".into(),
            ),
            "detail-type",
        ),
        (with(&["source"], "aws.ec2".into()), "detail-type"),
        (
            with(&["detail", "state", "value"], "FIRING".into()),
            "detail.state.value",
        ),
        (
            with(&["detail", "state", "value"], 7.into()),
            "detail.state.value",
        ),
        (
            with(&["detail", "alarmName"], Value::Null),
            "detail.alarmName",
        ),
        (
            with(&["detail", "alarmName"], "a\nb".into()),
            "detail.alarmName",
        ),
        (
            with(&["detail", "state", "timestamp"], Value::Null),
            "detail.state.timestamp",
        ),
        (
            with(&["detail", "previousState", "value"], "NOPE".into()),
            "detail.previousState.value",
        ),
        (
            with(&["detail", "configuration", "metrics"], "x".into()),
            "detail.configuration.metrics",
        ),
    ];
    for (bytes, needle) in cases {
        let err = parse_event(&bytes).unwrap_err().to_string();
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
}

#[test]
fn refuses_oversized_events() {
    let big = vec![b' '; MAX_EVENT_BYTES + 1];
    assert!(parse_event(&big).unwrap_err().to_string().contains("bytes"));
}

fn one(src: &str) -> Alert {
    let mut v = parse_event(src.as_bytes()).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

#[test]
fn every_cloudwatch_shape_gives_the_same_alert() {
    let eb = one(HIGH_CPU);
    for (src, source) in [
        (
            include_str!("../../../events/sns-high-cpu-alarm.json"),
            AlertSource::Sns,
        ),
        (
            include_str!("../../../events/direct-high-cpu-alarm.json"),
            AlertSource::AlarmAction,
        ),
    ] {
        let a = one(src);
        assert_eq!(a.source, source);
        assert_eq!(a.alarm_name, eb.alarm_name);
        assert_eq!(a.alarm_arn, eb.alarm_arn);
        assert_eq!((a.state, a.previous_state), (eb.state, eb.previous_state));
        assert_eq!(a.value, Some(95.3));
        assert_eq!(
            a.occurrence, eb.occurrence,
            "same occurrence, same incident"
        );
        assert_eq!(
            a.region.as_deref(),
            Some("us-east-1"),
            "region code, not the display name"
        );
        let m = a.metric.unwrap();
        assert_eq!(
            (m.namespace.as_str(), m.name.as_str()),
            ("AWS/EC2", "CPUUtilization")
        );
        assert_eq!(m.dimensions["InstanceId"], "i-0123456789abcdef0");
    }
}

#[test]
fn metric_math_and_anomaly_alarms_use_their_metric_stat() {
    let a = one(include_str!("../../../events/high-cpu-metric-math.json"));
    let m = a.metric.unwrap();
    assert_eq!(m.name, "CPUUtilization");
    assert_eq!(
        m.field,
        "detail.configuration.metrics[1].metricStat.metric.dimensions"
    );
    let a = one(include_str!("../../../events/high-cpu-anomaly.json"));
    assert_eq!(a.metric.unwrap().name, "CPUUtilization");
    assert_eq!(a.value, Some(96.4));
}

#[test]
fn composite_alarm_has_a_rule_and_tags_but_no_metric() {
    let a = one(include_str!("../../../events/composite-alarm.json"));
    assert!(a.metric.is_none());
    assert_eq!(
        a.alarm_rule.as_deref(),
        Some("ALARM(web-high-cpu) AND ALARM(web-5xx-rate)")
    );
    assert_eq!(a.tags["severity"], "critical");
}

#[test]
fn alertmanager_payload_gives_one_alert_per_entry() {
    let v = parse_event(include_bytes!("../../../events/alertmanager-high-cpu.json")).unwrap();
    assert_eq!(v.len(), 2, "duplicates are removed later, by occurrence");
    let a = &v[0];
    assert_eq!(a.source, AlertSource::Alertmanager);
    assert_eq!(a.alarm_name, "HighCPUUsage");
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.value, Some(95.3));
    assert_eq!(a.tags["instance"], "10.0.1.5:9100");
    assert_eq!(a.occurrence, v[1].occurrence);
    let r = one(include_str!(
        "../../../events/alertmanager-high-cpu-resolved.json"
    ));
    assert_eq!(
        (r.state, r.previous_state),
        (AlarmState::Ok, Some(AlarmState::Alarm))
    );
}

fn am(f: impl Fn(&mut Value)) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_str(include_str!("../../../events/alertmanager-high-cpu.json")).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn alertmanager_errors_name_the_field() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (am(|v| v["version"] = "3".into()), "field `version`"),
        (
            am(|v| v["alerts"] = Value::Array(vec![])),
            "field `alerts`: no alerts",
        ),
        (
            am(|v| v["alerts"][1]["status"] = "pending".into()),
            "alerts[1].status",
        ),
        (
            am(|v| v["alerts"][0]["labels"]["alertname"] = "$(reboot)".into()),
            "alerts[0].labels.alertname",
        ),
        (
            am(|v| {
                v["alerts"][0]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("alertname");
            }),
            "alerts[0].labels.alertname",
        ),
        (
            am(|v| v["alerts"][0]["startsAt"] = "yesterday".into()),
            "alerts[0].startsAt",
        ),
        (
            am(|v| v["alerts"][0]["fingerprint"] = "../../etc".into()),
            "alerts[0].fingerprint",
        ),
        (
            am(|v| v["alerts"][0]["annotations"]["value"] = "lots".into()),
            "alerts[0].annotations.value",
        ),
        (
            am(|v| v["alerts"][0]["labels"]["job"] = 5.into()),
            "alerts[0].labels.job",
        ),
    ];
    for (bytes, needle) in cases {
        let err = parse_event(&bytes).unwrap_err().to_string();
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
}

#[test]
fn sns_errors_name_the_field() {
    let src: Value =
        serde_json::from_str(include_str!("../../../events/sns-high-cpu-alarm.json")).unwrap();
    let mut v = src.clone();
    v["Records"][0]["Sns"]["Message"] = "plain text".into();
    assert!(
        parse_event(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string()
            .contains("Records[0].Sns.Message")
    );
    let mut v = src.clone();
    let mut msg: Value =
        serde_json::from_str(v["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    msg["NewStateValue"] = "BROKEN".into();
    v["Records"][0]["Sns"]["Message"] = msg.to_string().into();
    assert!(
        parse_event(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string()
            .contains("Records[0].Sns.Message.NewStateValue")
    );
}

#[test]
fn function_url_requests_carry_the_alertmanager_payload() {
    let direct = parse_event(include_bytes!("../../../events/alertmanager-high-cpu.json")).unwrap();
    for src in [
        include_str!("../../../events/function-url-alertmanager.json"),
        include_str!("../../../events/function-url-alertmanager-base64.json"),
    ] {
        let got = parse_event(src.as_bytes()).unwrap();
        assert_eq!(got.len(), direct.len());
        for (g, d) in got.iter().zip(&direct) {
            assert_eq!(
                (g.occurrence.as_str(), g.value, &g.tags),
                (d.occurrence.as_str(), d.value, &d.tags)
            );
            assert_eq!(
                g.metric.as_ref().unwrap().field,
                format!("body.{}", d.metric.as_ref().unwrap().field)
            );
        }
    }
    let mut v: Value = serde_json::from_str(include_str!(
        "../../../events/function-url-alertmanager.json"
    ))
    .unwrap();
    v["body"] = r#"{"version":"4","alerts":[{"status":"x"}]}"#.into();
    let e = parse_event(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("body.alerts[0]"), "{e}");
}

const GRAFANA: &str = include_str!("../../../events/grafana-high-cpu.json");

#[test]
fn a_grafana_webhook_is_alertmanagers_fields_and_grafanas_value() {
    let alerts = parse_event(GRAFANA.as_bytes()).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.source, AlertSource::Alertmanager);
    // A Grafana rule's title, spaces and all.
    assert_eq!(a.alarm_name, "High CPU usage");
    assert_eq!(a.state, AlarmState::Alarm);
    // `values`: B is the query, C the condition's 1.
    assert_eq!(a.value, Some(95.3));
    let m = a.metric.as_ref().unwrap();
    assert_eq!(
        (m.namespace.as_str(), m.dimensions["instance"].as_str()),
        ("grafana", "10.0.1.5:9100")
    );
    // The same title in an Alertmanager (version 4) payload is not a Prometheus name.
    let v4 = GRAFANA.replace("\"version\": \"1\"", "\"version\": \"4\"");
    let e = parse_event(v4.as_bytes()).unwrap_err().to_string();
    assert!(
        e.contains("alerts[0].labels.alertname") && e.contains("not a Prometheus alert name"),
        "{e}"
    );
    // Neither version: named.
    let v2 = GRAFANA.replace("\"version\": \"1\"", "\"version\": \"2\"");
    let e = parse_event(v2.as_bytes()).unwrap_err().to_string();
    assert!(
        e.contains("version") && e.contains("\"1\": Grafana Alerting"),
        "{e}"
    );
    // A title with a line break is refused, naming the field.
    let bad = GRAFANA.replacen(
        "\"alertname\": \"High CPU usage\"",
        "\"alertname\": \"High\\nCPU\"",
        1,
    );
    let e = parse_event(bad.as_bytes()).unwrap_err().to_string();
    assert!(
        e.contains("alerts[0].labels.alertname") && e.contains("Grafana rule title"),
        "{e}"
    );
}

#[test]
fn a_grafana_value_comes_from_the_annotation_then_values_then_value_string() {
    use std::collections::BTreeMap;
    let values = |v: &[(&str, f64)]| -> BTreeMap<String, f64> {
        v.iter().map(|(k, x)| ((*k).to_owned(), *x)).collect()
    };
    // The one entry that is not the condition's 0/1.
    assert_eq!(
        grafana_value(Some(&values(&[("B", 44.2), ("C", 1.0)])), None),
        Some(44.2)
    );
    assert_eq!(
        grafana_value(Some(&values(&[("A", 12.5), ("C", 0.0)])), None),
        Some(12.5)
    );
    // Two candidates: ambiguous, so valueString decides; none there: nothing.
    let two = values(&[("A", 80.5), ("B", 44.2), ("C", 1.0)]);
    assert_eq!(grafana_value(Some(&two), None), None);
    assert_eq!(
        grafana_value(
            Some(&two),
            Some("[ var='A' labels={} value=80.5 ], [ var='C' labels={} value=1 ]")
        ),
        Some(80.5)
    );
    // Grafana 9's valueString, no values.
    assert_eq!(
        grafana_value(
            None,
            Some("[ metric='' labels={} value=14151.331895396988 ]")
        ),
        Some(14151.331895396988)
    );
    // A value of 0 (a target down) is still a value when it is the only one.
    assert_eq!(
        grafana_value(None, Some("[ var='B' labels={} value=0 ]")),
        Some(0.0)
    );
    assert_eq!(grafana_value(None, Some("no numbers here")), None);
    // The rule's own `value` annotation wins over both.
    let with_annotation = GRAFANA.replace(
        "\"description\": \"CPU usage is above 80%\"\n      },",
        "\"description\": \"CPU usage is above 80%\",\n        \"value\": \"91.0\"\n      },",
    );
    assert_ne!(with_annotation, GRAFANA);
    assert_eq!(
        parse_event(with_annotation.as_bytes()).unwrap()[0].value,
        Some(91.0)
    );
}

#[test]
fn an_amp_alert_through_sns_is_an_alertmanager_alert() {
    let src = include_str!("../../../events/sns-amp-high-cpu.json");
    let alerts = parse_event(src.as_bytes()).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.source, AlertSource::Alertmanager);
    assert_eq!(
        (a.alarm_name.as_str(), a.value, a.threshold),
        ("HighCPUUsage", Some(95.3), Some(80.0))
    );
    assert_eq!(
        a.metric.as_ref().unwrap().dimensions["instance"],
        "10.0.1.5:9100"
    );
    // The same occurrence as the webhook's delivery of that alert: one incident.
    let direct =
        parse_event(include_str!("../../../events/alertmanager-high-cpu.json").as_bytes()).unwrap();
    assert_eq!(a.occurrence, direct[0].occurrence);
    // A bad alert inside is named by its path through the SNS record.
    let bad = src.replace("HighCPUUsage\\\",\\\"instance", "High CPU\\\",\\\"instance");
    assert_ne!(bad, src);
    let e = parse_event(bad.as_bytes()).unwrap_err().to_string();
    assert!(
        e.contains("Records[0].Sns.Message.alerts[0].labels.alertname"),
        "{e}"
    );
}
