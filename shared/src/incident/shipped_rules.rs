use super::*;

const RULES: &str = include_str!("../../../infra/prometheus/alert_rules.yml");

/// Each rule block of the shipped file: (alert name, its lines).
fn rules() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in RULES.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            out.push((name.trim().to_owned(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

#[test]
fn every_shipped_rule_routes_to_a_playbook() {
    let rules = rules();
    let names: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "HighCPUUsage",
            "HighMemoryUsage",
            "DiskSpaceLow",
            "ServiceDown"
        ]
    );
    for (name, body) in &rules {
        assert_ne!(IncidentKind::route(name), IncidentKind::Unrouted, "{name}");
        // The responder reads the firing value from this annotation.
        assert!(
            body.contains("value: \"{{ $value }}\""),
            "{name} has no value annotation"
        );
        // Aggregations must keep the instance label, or the alert names no machine.
        if body.contains("avg") {
            assert!(
                body.contains("by (instance)"),
                "{name} drops the instance label"
            );
        }
    }
}
