//! Runs the fixed diagnostics of the incident's kind.

use crate::aws::*;
use super::Clients;
use crate::commands;
use crate::ids::InstanceId;
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;
use super::Diagnostics;

pub(crate) async fn collect_diagnostics_on(
    c: &Clients<'_>,
    instance: &InstanceId,
    set: Diagnostics,
    incident: &Incident,
    config: &Settings,
) -> Outcome {
    let cmds = match set {
        Diagnostics::Cpu => commands::HIGH_CPU_DIAGNOSTICS,
        Diagnostics::Memory => commands::MEMORY_DIAGNOSTICS,
    };
    run_command(
        c.ssm,
        instance,
        cmds.iter().map(|c| (*c).to_owned()).collect(),
        &format!("first-responder diagnostics for {}", incident.id),
        config.diagnostics_timeout,
        c.poll,
    )
    .await
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    collect_diagnostics_on(c, &s.instance, s.set, cx.incident, cx.settings).await
}
