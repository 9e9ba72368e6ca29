//! Marks the instance Unhealthy in its group; after a crash, its health in
//! the group says whether that was done.

use crate::aws::fleet::health_of;
use super::Clients;
use crate::ids::{GroupName, InstanceId};
use crate::outcome::Outcome;

pub(crate) async fn replace_instance(
    c: &Clients<'_>,
    instance: &InstanceId,
    group: &GroupName,
    resume: Option<&str>,
) -> Outcome {
    if resume.is_some()
        && let Ok(health) = health_of(c.autoscaling, instance).await
        && health.eq_ignore_ascii_case("unhealthy")
    {
        return Outcome::done(
            format!(
                "{instance} was marked Unhealthy by an earlier delivery that stopped before recording it"
            ),
            Vec::new(),
        );
    }
    let result = c
        .autoscaling
        .set_instance_health()
        .instance_id(instance.as_str())
        .health_status("Unhealthy")
        // The service is down already: replace it now.
        .should_respect_grace_period(false)
        .send()
        .await;
    match result {
        Ok(_) => Outcome::done(
            format!("{instance} marked Unhealthy: {group} replaces it"),
            Vec::new(),
        ),
        Err(e) => Outcome::failed_call(&format!("SetInstanceHealth of {instance}"), &e),
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, cx: &crate::actions::Run<'_>) -> Outcome {
    replace_instance(c, &s.instance, &s.group, cx.resume).await
}
