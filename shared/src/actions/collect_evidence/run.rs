//! collect_evidence: status checks and console output.

use crate::ids::InstanceId;

use crate::aws::*;
use super::Clients;
use crate::outcome::Outcome;

/// Status checks and the latest console output of an instance.
pub(crate) async fn evidence(
    c: &Clients<'_>, instance: &InstanceId, with_console: bool) -> Outcome {
    let (status, console) = tokio::join!(
        c.ec2
            .describe_instance_status()
            .instance_ids(instance.as_str())
            .include_all_instances(true)
            .send(),
        async {
            match with_console {
                true => Some(
                    c.ec2
                        .get_console_output()
                        .instance_id(instance.as_str())
                        .latest(true)
                        .send()
                        .await,
                ),
                false => None,
            }
        },
    );
    let mut text = String::new();
    let mut failures = Vec::new();
    match status {
        Ok(out) => match out.instance_statuses().first() {
            Some(st) => {
                let state = st
                    .instance_state()
                    .and_then(|s| s.name())
                    .map_or("?", |n| n.as_str());
                let check = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    s.and_then(|s| s.status())
                        .map_or("?".to_owned(), |x| x.as_str().to_owned())
                };
                text.push_str(&format!(
                    "== status checks ==\nstate {state}; system {}; instance {}\n",
                    check(st.system_status()),
                    check(st.instance_status())
                ));
                for ev in st.events() {
                    text.push_str(&format!(
                        "scheduled event: {} {}\n",
                        ev.code().map_or("?", |c| c.as_str()),
                        ev.description().unwrap_or_default()
                    ));
                }
            }
            None => text.push_str("== status checks ==\nnone reported\n"),
        },
        Err(e) => failures.push(format!("DescribeInstanceStatus: {}", sdk_error(&e))),
    }
    match console {
        None => text.push_str(
            "== console output ==\nnot read: the instance does not carry the opt-in tag, and the IAM policy allows GetConsoleOutput on opted-in instances only\n",
        ),
        Some(Ok(out)) => {
            let raw = out.output().unwrap_or_default();
            let decoded =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|_| raw.to_owned());
            let lines: Vec<&str> = decoded.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            text.push_str("== console output (last 40 lines) ==\n");
            for l in tail {
                text.push_str(&printable(l, 200));
                text.push('\n');
            }
        }
        Some(Err(e)) => failures.push(format!("GetConsoleOutput: {}", sdk_error(&e))),
    }
    let mut o = if failures.is_empty() {
        Outcome::done("status checks and console output collected", Vec::new())
    } else if text.is_empty() {
        Outcome::failed(failures.join("; "))
    } else {
        Outcome::done(
            format!("partly collected ({})", failures.join("; ")),
            Vec::new(),
        )
    };
    o.output = Some(text);
    o
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, _: &crate::actions::Run<'_>) -> Outcome {
    evidence(c, &s.instance, s.console).await
}
