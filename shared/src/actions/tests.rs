//! The registry walked whole: every action states its recovery and its
//! permissions; the SDK calls in its code are among them; and the
//! responder's role in `infra/template.yaml` grants exactly what the actions
//! and the engine declare, no more and no less.

use std::collections::BTreeSet;

use super::{ActionName, Recovery};

/// Each action's execution, read as text to find the SDK calls it makes
/// (`ActionName::source`, from the registry: a new action is walked too).
fn source(name: ActionName) -> &'static str {
    name.source()
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The IAM actions a source file calls: a client (`cx.ec2`, `self.ec2`, or
/// a parameter named `ec2`) then `.operation()` (across line breaks), and
/// SSM's two for `run_command`.
fn calls(src: &str, clients: &[(&str, &str)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (field, service) in clients {
        for (i, _) in src.match_indices(field) {
            let rest = &src[i + field.len()..];
            let whole = !src[..i].ends_with(word) && !rest.starts_with(word);
            let after = rest.trim_start();
            if !whole || !after.starts_with('.') {
                continue;
            }
            let op: String = after[1..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if after[1 + op.len()..].starts_with("()") && !op.is_empty() {
                out.insert(format!("{service}:{}", camel(&op)));
            }
        }
    }
    if src.contains("run_command(") {
        out.insert("ssm:SendCommand".into());
        out.insert("ssm:GetCommandInvocation".into());
    }
    out
}

const CLIENTS: &[(&str, &str)] = &[
    ("ec2", "ec2"),
    ("ssm", "ssm"),
    ("autoscaling", "autoscaling"),
    ("sns", "sns"),
    ("cloudwatch", "cloudwatch"),
    ("sqs", "sqs"),
];

/// The IAM actions granted to the responder's role: every `Action:` of its
/// policy, in the template's two spellings (one value, a flow list, or a
/// block list below the key).
fn granted() -> BTreeSet<String> {
    let template = include_str!("../../../infra/template.yaml");
    let role = template
        .split("\n  ResponderRole:\n")
        .nth(1)
        .expect("ResponderRole in the template");
    let role = role.split("\n  WebhookRole:").next().unwrap_or(role);
    // The role's own policies, not its trust policy (Lambda's sts:AssumeRole).
    let role = role.split("\n      Policies:").nth(1).unwrap_or(role);
    let mut out = BTreeSet::new();
    let mut in_list = false;
    for line in role.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if let Some(v) = t.strip_prefix("Action:") {
            let v = v.trim().trim_start_matches('[').trim_end_matches(']');
            in_list = v.is_empty();
            out.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned),
            );
        } else if in_list && let Some(a) = t.strip_prefix("- ") {
            out.insert(a.trim().to_owned());
        } else if !t.is_empty() {
            in_list = false;
        }
    }
    // Attached managed policies (logs, X-Ray) are not ours to declare.
    out.retain(|a| a.contains(':'));
    out
}

#[test]
fn every_action_states_its_recovery_and_permissions() {
    for &a in ActionName::ALL {
        let why = match a.recovery() {
            Recovery::ReadOnly | Recovery::Unverifiable => "stated",
            Recovery::Idempotent(why) | Recovery::Verifiable(why) => why,
        };
        assert!(!why.is_empty(), "{}: recovery without a reason", a.as_str());
        assert!(
            !a.permissions().is_empty(),
            "{}: no permissions",
            a.as_str()
        );
        for p in a.permissions() {
            assert!(
                p.split_once(':')
                    .is_some_and(|(s, op)| !s.is_empty() && op.starts_with(char::is_uppercase)),
                "{}: {p:?} is not an IAM action",
                a.as_str()
            );
        }
    }
    // What cannot be checked after a crash is never repeated: a restart,
    // a reboot and a signal among them.
    for a in [
        ActionName::RestartService,
        ActionName::Reboot,
        ActionName::KillProcess,
    ] {
        assert_eq!(a.recovery(), Recovery::Unverifiable, "{}", a.as_str());
    }
}

#[test]
fn every_sdk_call_of_an_action_is_among_its_declared_permissions() {
    for &a in ActionName::ALL {
        let used = calls(source(a), CLIENTS);
        let declared: BTreeSet<String> = a.permissions().iter().map(|p| (*p).to_owned()).collect();
        let missing: Vec<_> = used.difference(&declared).collect();
        assert!(
            missing.is_empty(),
            "{} calls {missing:?} without declaring it",
            a.as_str()
        );
    }
    let observe = calls(
        concat!(
            include_str!("../observe/mod.rs"),
            include_str!("../aws/fleet.rs")
        ),
        CLIENTS,
    );
    let declared: BTreeSet<String> = crate::observe::PERMISSIONS
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    assert!(
        observe.is_subset(&declared),
        "observe calls {:?}",
        observe.difference(&declared)
    );
    let series = calls(
        concat!(
            include_str!("../observe/metric/mod.rs"),
            include_str!("../observe/alarm.rs")
        ),
        CLIENTS,
    );
    let declared: BTreeSet<String> = crate::series::PERMISSIONS
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    assert_eq!(series, declared, "the metric context's reads");
    // The predictive check and the check after the fix: their own, the
    // page's reads, the fleet's reads.
    let allowed: BTreeSet<String> = crate::forecast::PERMISSIONS
        .iter()
        .chain(crate::series::PERMISSIONS)
        .chain(crate::verify::PERMISSIONS)
        .chain(crate::observe::PERMISSIONS)
        .map(|p| (*p).to_owned())
        .collect();
    for (name, src) in [
        ("forecast", include_str!("../forecast/run.rs")),
        ("verify", include_str!("../verify/run.rs")),
    ] {
        let used = calls(src, CLIENTS);
        assert!(!used.is_empty(), "{name}: the scanner found no call");
        assert!(
            used.is_subset(&allowed),
            "{name} calls {:?}",
            used.difference(&allowed)
        );
    }
    // The scanner finds calls at all (a broken scanner passes everything).
    assert!(observe.contains("ec2:DescribeInstances"), "{observe:?}");
    assert!(calls(source(ActionName::Reboot), CLIENTS).contains("ec2:RebootInstances"));
}

#[test]
fn the_template_grants_exactly_what_is_declared() {
    let declared: BTreeSet<String> = ActionName::ALL
        .iter()
        .flat_map(|a| a.permissions())
        .chain(crate::observe::PERMISSIONS)
        .chain(crate::series::PERMISSIONS)
        .chain(crate::verify::PERMISSIONS)
        .chain(crate::forecast::PERMISSIONS)
        .chain(crate::state::PERMISSIONS)
        .chain(crate::aws::ENGINE_PERMISSIONS)
        .chain(crate::engine::members::PERMISSIONS)
        .map(|p| (*p).to_owned())
        .collect();
    let granted = granted();
    assert!(
        granted.contains("ec2:CreateSnapshots"),
        "parsed {granted:?}"
    );
    let missing: Vec<_> = declared.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "declared but not granted by infra/template.yaml: {missing:?}"
    );
    let unused: Vec<_> = granted.difference(&declared).collect();
    assert!(
        unused.is_empty(),
        "granted by infra/template.yaml but declared by nothing: {unused:?}"
    );
}
