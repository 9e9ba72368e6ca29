//! Reboots the instance: not idempotent, so no SDK retries.

use crate::aws::*;
use super::Clients;
use crate::ids::InstanceId;
use crate::outcome::Outcome;
use aws_config::retry::RetryConfig;

pub(crate) async fn reboot(
    c: &Clients<'_>, instance: &InstanceId) -> Outcome {
    // Not idempotent (a repeat reboots again): no SDK retries.
    let rebooted = once(|| {
        c.ec2
            .reboot_instances()
            .instance_ids(instance.as_str())
            .customize()
            .config_override(
                aws_sdk_ec2::config::Builder::default()
                    .retry_config(RetryConfig::disabled()),
            )
            .send()
    })
    .await;
    match rebooted {
        Ok(_) => Outcome::done(format!("reboot of {instance} requested"), Vec::new()),
        Err(e) => Outcome::failed_call(&format!("RebootInstances of {instance}"), &e),
    }
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, _: &crate::actions::Run<'_>) -> Outcome {
    reboot(c, &s.instance).await
}
