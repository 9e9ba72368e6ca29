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
    sample_cpu: bool,
    incident: &Incident,
    config: &Settings,
) -> Outcome {
    let cmds = match set {
        Diagnostics::Cpu => commands::high_cpu_diagnostics(sample_cpu),
        Diagnostics::Memory => commands::MEMORY_DIAGNOSTICS
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
    };
    run_command(
        c.ssm,
        instance,
        cmds,
        &format!("first-responder diagnostics for {}", incident.id),
        config.diagnostics_timeout,
        c.poll,
    )
    .await
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    collect_diagnostics_on(c, &s.instance, s.set, s.sample_cpu, cx.incident, cx.settings).await
}
