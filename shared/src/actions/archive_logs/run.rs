//! Runs the archive script and reads what it compressed and shipped.

use crate::aws::*;
use crate::commands;
use crate::ids::InstanceId;
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;

impl Aws {
    pub(crate) async fn archive_logs(
        &self,
        instance: &InstanceId,
        days: u32,
        bucket: Option<&str>,
        incident: &Incident,
        config: &Settings,
    ) -> Outcome {
        let o = run_command(
            &self.ssm,
            instance,
            commands::archive_logs(days, bucket, instance, &incident.id),
            &format!("first-responder archive_logs for {}", incident.id),
            config.diagnostics_timeout,
            self.poll,
        )
        .await;
        crate::actions::freed(o, "by compressing rotated logs under /var/log")
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(aws: &Aws, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    aws.archive_logs(&s.instance, s.days, s.bucket.as_deref(), cx.incident, cx.settings).await
}
