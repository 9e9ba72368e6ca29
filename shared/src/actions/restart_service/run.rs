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
    incident: &Incident,
    config: &Settings,
) -> Outcome {
    let (id, wait) = (&incident.id, config.diagnostics_timeout);
    let o = run_command(
        c.ssm,
        instance,
        commands::restart_service(service),
        &format!("first-responder restart_service for {id}"),
        wait,
        c.poll,
    )
    .await;
    if o.status != Status::Done {
        return o;
    }
    let mut r = match o.output.as_deref().and_then(|out| marker(out, "active")) {
        Some("active") => {
            Outcome::done(format!("restarted {service}: active again"), o.ids.clone())
        }
        Some(state) => Outcome::uncertain(format!(
            "restarted {service}, but it is {state}: look at it now"
        )),
        None => Outcome::done(
            format!(
                "restart of {service} succeeded; the instance did not report the unit's state"
            ),
            o.ids.clone(),
        ),
    };
    r.ids = o.ids;
    r.output = o.output;
    r
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    restart_service(c, &s.instance, &s.service, cx.incident, cx.settings).await
}
