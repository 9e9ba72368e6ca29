//! Runs the fixed diagnostics of the incident's kind.

use crate::aws::*;
use crate::commands;
use crate::ids::InstanceId;
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;
use super::Diagnostics;

impl Aws {
    pub(crate) async fn collect_diagnostics_on(
        &self,
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
            &self.ssm,
            instance,
            cmds.iter().map(|c| (*c).to_owned()).collect(),
            &format!("first-responder diagnostics for {}", incident.id),
            config.diagnostics_timeout,
            self.poll,
        )
        .await
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(aws: &Aws, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    aws.collect_diagnostics_on(&s.instance, s.set, cx.incident, cx.settings).await
}
