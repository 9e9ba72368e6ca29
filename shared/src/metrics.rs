//! The automation's own metrics as CloudWatch Embedded Metric Format lines:
//! one JSON object per line on stdout, which Lambda's log pipeline turns into
//! metrics. No API call, nothing on the cold-start path.

use serde_json::{Value, json};

use crate::report::{IncidentReport, Status};

pub const NAMESPACE: &str = "FirstResponder";

/// An alarm's time ([`crate::series::parse_time`]) in epoch milliseconds.
pub fn parse_time_ms(t: &str) -> Option<i64> {
    crate::series::parse_time(t).map(|d| d.timestamp_millis())
}

/// What became of the incident, for the `Outcome` dimension.
pub fn outcome(r: &IncidentReport) -> &'static str {
    if r.refused.is_some() {
        "refused"
    } else if r.transient_error.is_some() {
        "retry"
    } else if matches!(r.delivery, "duplicate" | "busy") {
        "duplicate"
    } else if r.transition == "ignored" {
        "ignored"
    } else if r.actions.iter().any(|a| a.status == Status::Failed) {
        "partial"
    } else {
        "handled"
    }
}

fn envelope(now_ms: i64, dims: &[&str], metrics: &[(&str, &str)]) -> Value {
    json!({
        "Timestamp": now_ms,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [dims],
            "Metrics": metrics.iter().map(|(n, u)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
        }],
    })
}

/// Requests the webhook refused (by HTTP status) since the last line: one
/// line per window, not per request, so a flood costs no log volume.
pub fn refused_line(status: u16, count: u64, now_ms: i64) -> String {
    json!({
        "_aws": envelope(now_ms, &["Function", "Status"], &[("RefusedRequests", "Count")]),
        "Function": "webhook",
        "Status": status.to_string(),
        "RefusedRequests": count,
    })
    .to_string()
}

/// The EMF lines for one handled incident: the incident (by kind and
/// outcome, with the time from the alarm to the end of remediation) and
/// each action (by name and status, with its duration).
pub fn emf_lines(r: &IncidentReport, now_ms: i64) -> Vec<String> {
    let mut lines = Vec::new();
    // A claim not yet checked (untracked, with a transient error) did nothing.
    let mitigated = matches!(r.delivery, "first" | "resumed" | "untracked")
        && r.transition == "firing"
        && r.transient_error.is_none();
    let ttm = parse_time_ms(&r.alarm_time)
        .filter(|_| mitigated)
        .map(|t| (now_ms - t).max(0));
    let mut metrics = vec![("Incidents", "Count")];
    if r.refused.is_some() {
        metrics.push(("RefusedEvents", "Count"));
    }
    if ttm.is_some() {
        metrics.push(("TimeToMitigateMs", "Milliseconds"));
    }
    let mut incident = json!({
        "_aws": envelope(now_ms, &["Kind", "Outcome"], &metrics),
        "Kind": r.kind.as_str(),
        "Outcome": outcome(r),
        "Incidents": 1,
        "IncidentId": r.id,
        "Delivery": r.delivery,
    });
    if let Some(ms) = ttm {
        incident["TimeToMitigateMs"] = json!(ms);
    }
    if r.refused.is_some() {
        incident["RefusedEvents"] = json!(1);
    }
    lines.push(incident.to_string());
    for a in &r.actions {
        let mut line = json!({
            "_aws": envelope(now_ms, &["Action", "Status"], &[("Actions", "Count"), ("ActionDurationMs", "Milliseconds")]),
            "Action": a.action.as_str(),
            "Status": a.status.as_str(),
            "Actions": 1,
            "IncidentId": r.id,
        });
        match a.duration_ms {
            Some(d) => line["ActionDurationMs"] = json!(d),
            None => {
                line["_aws"]["CloudWatchMetrics"][0]["Metrics"] =
                    json!([{"Name": "Actions", "Unit": "Count"}])
            }
        }
        lines.push(line.to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::parse_event;
    use crate::config::Config;
    use crate::incident::Incident;
    use crate::plan::{Observed, plan};

    fn report(src: &str) -> IncidentReport {
        let i = Incident::from_alert(parse_event(src.as_bytes()).unwrap().remove(0)).unwrap();
        let mut r = plan(&i, &Observed::nothing(), &Config::default()).to_report();
        r.delivery = "first";
        r
    }

    #[test]
    fn times_in_both_formats() {
        assert_eq!(
            parse_time_ms("2026-11-25T02:04:12.152+0000"),
            Some(1_795_572_252_152)
        );
        assert_eq!(
            parse_time_ms("2026-11-25T02:04:12.152Z"),
            Some(1_795_572_252_152)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
    }

    #[test]
    fn lines_are_valid_emf() {
        let r = report(include_str!("../../events/high-cpu-alarm.json"));
        let now = 1_795_572_252_152 + 42_000;
        let lines = emf_lines(&r, now);
        assert_eq!(lines.len(), 1 + r.actions.len());
        for l in &lines {
            let v: Value = serde_json::from_str(l).unwrap();
            let cwm = &v["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(cwm["Namespace"], NAMESPACE);
            assert_eq!(v["_aws"]["Timestamp"], now);
            // Every dimension and every metric named has a value on the line.
            for d in cwm["Dimensions"][0].as_array().unwrap() {
                assert!(v[d.as_str().unwrap()].is_string(), "{l}");
            }
            for m in cwm["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number(), "{l}");
            }
        }
        let incident: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            (
                incident["Kind"].as_str(),
                incident["TimeToMitigateMs"].as_i64()
            ),
            (Some("high_cpu"), Some(42_000))
        );
        for (line, a) in lines[1..].iter().zip(&r.actions) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                (v["Action"].as_str(), v["Status"].as_str()),
                (Some(a.action.as_str()), Some(a.status.as_str()))
            );
        }
    }

    #[test]
    fn no_time_to_mitigate_for_recoveries_or_duplicates() {
        let r = report(include_str!("../../events/high-cpu-ok.json"));
        let v: Value = serde_json::from_str(&emf_lines(&r, 0)[0]).unwrap();
        assert!(v.get("TimeToMitigateMs").is_none());
        let mut dup = report(include_str!("../../events/high-cpu-alarm.json"));
        dup.delivery = "duplicate";
        let v: Value = serde_json::from_str(&emf_lines(&dup, 0)[0]).unwrap();
        assert_eq!(v["Outcome"], "duplicate");
        assert!(v.get("TimeToMitigateMs").is_none());
    }
}
