use super::*;
use std::collections::HashMap;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| m.get(k).cloned())
}

/// A parameter's `KEY: VALUE` in `infra/template.yaml`.
fn template_parameter(name: &str, key: &str) -> Option<String> {
    let t = include_str!("../../../infra/template.yaml");
    let block = t.split(&format!("\n  {name}:\n")).nth(1)?;
    block
        .lines()
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .map(|v| v.trim_matches('"').to_owned())
}

/// What the template accepts, the configuration accepts: a stack never
/// deploys with a value that stops every start.
#[test]
fn the_templates_allowed_values_are_the_configurations() {
    let get = |p: &str, k: &str| {
        template_parameter(p, k).unwrap_or_else(|| panic!("template parameter {p} has no {k}"))
    };
    for (param, var) in [
        ("BudgetPerAccountPerHour", "BUDGET_PER_ACCOUNT_PER_HOUR"),
        ("BudgetPerGroupPerHour", "BUDGET_PER_GROUP_PER_HOUR"),
    ] {
        let pattern = regex_lite::Regex::new(&get(param, "AllowedPattern")).unwrap();
        let samples = [
            "",
            "0",
            "00",
            "1",
            "5",
            "30",
            "999999999",
            "9999999999",
            "-1",
            "1.5",
            "x",
        ];
        for v in samples {
            if pattern.is_match(v) {
                assert!(
                    cfg(&[(var, v)]).is_ok(),
                    "{param} admits {v:?}, which {var} refuses"
                );
            }
        }
        assert!(
            !pattern.is_match("0") && cfg(&[(var, "0")]).is_err(),
            "{param}: 0"
        );
        assert!(pattern.is_match("5") && pattern.is_match(""), "{param}");
    }
    for (param, var) in [
        ("MaxGroupSharePercent", "MAX_GROUP_SHARE_PERCENT"),
        ("MaxMutationsPerHour", "MAX_MUTATIONS_PER_HOUR"),
    ] {
        let min: i64 = get(param, "MinValue").parse().unwrap();
        assert!(cfg(&[(var, &min.to_string())]).is_ok(), "{param} {min}");
        assert!(
            cfg(&[(var, &(min - 1).to_string())]).is_err(),
            "{param} {}",
            min - 1
        );
        let default = get(param, "Default");
        assert!(cfg(&[(var, &default)]).is_ok(), "{param} default {default}");
        if let Some(max) = template_parameter(param, "MaxValue").and_then(|m| m.parse::<i64>().ok())
        {
            assert!(cfg(&[(var, &max.to_string())]).is_ok(), "{param} {max}");
            assert!(
                cfg(&[(var, &(max + 1).to_string())]).is_err(),
                "{param} {}",
                max + 1
            );
        }
    }
}

#[test]
fn approval_links_are_sent_over_https_only() {
    let base = |v: &str| cfg(&[("APPROVAL_BASE_URL", v)]);
    assert!(base("https://abc.lambda-url.us-east-1.on.aws/").is_ok());
    assert!(base("http://127.0.0.1:9000/lambda-url/webhook/").is_ok());
    let e = base("http://abc.lambda-url.us-east-1.on.aws/").unwrap_err();
    assert!(
        e.to_string()
            .contains("http:// only to 127.0.0.1 or localhost"),
        "{e}"
    );
    assert!(base("http://127.0.0.1.evil.example/").is_err());
}

#[test]
fn forwarding_topics_are_topic_arns() {
    let c = cfg(&[(
        "FORWARDING_TOPIC_ARNS",
        "arn:aws:sns:us-east-1:111111111111:amp-all, arn:aws:sns:eu-west-1:111111111111:amp-eu",
    )])
    .unwrap();
    assert_eq!(c.forwarding_topics.len(), 2);
    let e = cfg(&[("FORWARDING_TOPIC_ARNS", "amp-all")]).unwrap_err();
    assert!(e.to_string().contains("FORWARDING_TOPIC_ARNS"), "{e}");
}

#[test]
fn defaults() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.playbooks, Playbooks::default());
    assert_eq!(c.diagnostics_timeout, Duration::from_secs(60));
    assert_eq!(c.actions_deadline, Duration::from_secs(300));
    assert!(c.notify_topic_arn.is_none() && !c.dry_run && c.notify_on_resolve);
}

#[test]
fn reads_values() {
    let c = cfg(&[
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:oncall",
        ),
        ("DIAGNOSTICS_TIMEOUT_SECONDS", "20"),
        ("DRY_RUN", "true"),
    ])
    .unwrap();
    assert_eq!(c.actions_deadline, Duration::from_secs(140));
    assert!(c.dry_run);
    assert_eq!(
        c.opt_in,
        Some(("first-responder".into(), "enabled".into())),
        "on by default"
    );
    let c = cfg(&[
        ("OPT_IN_TAG", "team=sre"),
        ("MAX_DESIRED_CAPACITY", "5"),
        ("KILL_SWITCH_PARAMETER", "/fr/kill"),
    ])
    .unwrap();
    assert_eq!(
        (
            c.opt_in,
            c.max_desired_capacity,
            c.kill_switch_parameter.as_deref()
        ),
        (
            Some(("team".into(), "sre".into())),
            Some(5),
            Some("/fr/kill")
        )
    );
    assert_eq!(cfg(&[("OPT_IN_TAG", "off")]).unwrap().opt_in, None);
    let c = cfg(&[("ROUTES", "NodeHighLoad=high_cpu, web-degraded=none")]).unwrap();
    assert_eq!(c.routes["NodeHighLoad"], IncidentKind::HighCpu);
    assert_eq!(c.routes["web-degraded"], IncidentKind::Unrouted);
}

#[test]
fn errors_name_the_variable_and_value() {
    for (k, v) in [
        ("NOTIFY_TOPIC_ARN", "oncall"),
        ("PLAYBOOKS_FILE", "/nonexistent/playbooks.toml"),
        ("DIAGNOSTICS_TIMEOUT_SECONDS", "-1"),
        ("DRY_RUN", "maybe"),
    ] {
        let e = cfg(&[(k, v)]).unwrap_err().to_string();
        assert!(e.contains(k) && e.contains(v), "{e}");
    }
    let e = cfg(&[
        ("DIAGNOSTICS_TIMEOUT_SECONDS", "60"),
        ("ACTIONS_DEADLINE_SECONDS", "30"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "ACTIONS_DEADLINE_SECONDS");
}
