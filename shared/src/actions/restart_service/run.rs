//! Restarts the unit through SSM; its `active=` answer decides the outcome.

use crate::aws::*;
use super::Clients;
use crate::commands;
use crate::disk::marker;
use crate::ids::{InstanceId, ServiceName};
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;
use crate::report::Status;

pub(crate) async fn restart_service(
    c: &Clients<'_>,
    instance: &InstanceId,
    service: &ServiceName,
    settle_seconds: u32,
    incident: &Incident,
    config: &Settings,
) -> Outcome {
    let id = &incident.id;
    // SSM's own delay, the restart, and the watch.
    let wait = config.diagnostics_timeout + std::time::Duration::from_secs(u64::from(settle_seconds));
    let o = run_command(
        c.ssm,
        instance,
        commands::restart_service(service, settle_seconds),
        &format!("first-responder restart_service for {id}"),
        wait,
        c.poll,
    )
    .await;
    if o.status != Status::Done {
        return o;
    }
    let Some(out) = o.output.clone() else {
        return o;
    };
    let mut r = judge(service, settle_seconds, &out, o.ids.clone());
    r.ids = o.ids;
    r.output = o.output;
    r
}

/// What the script's answer says of the restart (pure).
pub(crate) fn judge(
    service: &ServiceName,
    settle: u32,
    out: &str,
    ids: Vec<String>,
) -> Outcome {
    let reset = if marker(out, "reset_failed").is_some() {
        " (its start limit was hit: reset first)"
    } else {
        ""
    };
    let journal = journal_tail(out);
    let restart_exit = marker(out, "restart_exit").unwrap_or("0");
    if restart_exit != "0" {
        // A restart that failed may have stopped the unit.
        return Outcome::uncertain(format!(
            "systemctl restart {service}{reset} exited {restart_exit}{journal}"
        ));
    }
    let (before, after) = (
        marker(out, "nrestarts_before").unwrap_or("?"),
        marker(out, "nrestarts_after").unwrap_or("?"),
    );
    match marker(out, "active") {
        Some("active") if before == after => Outcome::done(
            format!("restarted {service}{reset}: active for {settle} s without restarting"),
            ids,
        ),
        Some("active") => Outcome::uncertain(format!(
            "restarted {service}{reset}, but systemd restarted it again within {settle} s (NRestarts {before} -> {after}): it is crashing{journal}"
        )),
        Some(state) => {
            let when = marker(out, "left_active_at")
                .map(|s| format!(" after {s} s"))
                .unwrap_or_default();
            Outcome::uncertain(format!(
                "restarted {service}{reset}, but it is {state}{when}: look at it now{journal}"
            ))
        }
        None => Outcome::done(
            format!(
                "restart of {service} succeeded; the instance did not report the unit's state"
            ),
            ids,
        ),
    }
}

/// "; its journal ends: …" with the last lines the script printed, quoted.
fn journal_tail(out: &str) -> String {
    let lines: Vec<&str> = out
        .lines()
        .skip_while(|l| l.trim() != "== journal ==")
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        all => {
            let last = &all[all.len().saturating_sub(3)..];
            format!(
                "; its journal ends: {}",
                last.iter()
                    .map(|l| crate::text::quoted(l, 200))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        }
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    restart_service(c, &s.instance, &s.service, s.settle_seconds, cx.incident, cx.settings).await
}
