//! Runs the archive script and reads what it compressed and shipped.

use crate::aws::*;
use super::Clients;
use crate::commands;
use crate::ids::InstanceId;
use crate::incident::Incident;
use crate::actions::Settings;
use crate::outcome::Outcome;

pub(crate) async fn archive_logs(
    c: &Clients<'_>,
    instance: &InstanceId,
    days: u32,
    bucket: Option<&str>,
    incident: &Incident,
    config: &Settings,
) -> Outcome {
    let o = run_command(
        c.ssm,
        instance,
        commands::archive_logs_within(
            days,
            bucket,
            instance,
            &incident.id,
            u32::try_from(config.diagnostics_timeout.as_secs()).unwrap_or(u32::MAX),
        ),
        &format!("first-responder archive_logs for {}", incident.id),
        config.diagnostics_timeout,
        c.poll,
    )
    .await;
    crate::actions::freed(o, "by compressing rotated logs under /var/log")
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    archive_logs(c, &s.instance, s.days, s.bucket.as_deref(), cx.incident, cx.settings).await
}
