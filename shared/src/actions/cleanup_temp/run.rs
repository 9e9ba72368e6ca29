//! Runs the cleanup script and reads what it freed.

use crate::aws::*;
use super::Clients;
use crate::commands;
use crate::ids::InstanceId;
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;

pub(crate) async fn cleanup_temp(
    c: &Clients<'_>,
    instance: &InstanceId,
    days: Option<u32>,
    incident: &Incident,
    config: &Settings,
) -> Outcome {
    let o = run_command(
        c.ssm,
        instance,
        commands::cleanup_temp(days),
        &format!("first-responder cleanup_temp for {}", incident.id),
        config.diagnostics_timeout,
        c.poll,
    )
    .await;
    crate::actions::freed(o, "under /tmp and /var/tmp")
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    cleanup_temp(c, &s.instance, s.days, cx.incident, cx.settings).await
}
