//! Runs the cleanup script and reads what it freed.

use crate::aws::*;
use crate::commands;
use crate::ids::InstanceId;
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;

impl Aws {
    pub(crate) async fn cleanup_temp(
        &self,
        instance: &InstanceId,
        days: u32,
        incident: &Incident,
        config: &Settings,
    ) -> Outcome {
        let o = run_command(
            &self.ssm,
            instance,
            commands::cleanup_temp(days),
            &format!("first-responder cleanup_temp for {}", incident.id),
            config.diagnostics_timeout,
            self.poll,
        )
        .await;
        crate::actions::freed(o, "under /tmp and /var/tmp")
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(aws: &Aws, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    aws.cleanup_temp(&s.instance, s.days, cx.incident, cx.settings).await
}
