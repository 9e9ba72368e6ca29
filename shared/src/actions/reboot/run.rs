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

/// Stops the instance, waits for `stopped` (within [`super::STOP_DEADLINE`]),
/// and starts it: EC2 places a started instance on a new host. Both calls
/// are idempotent (a repeat stops a stopped instance, starts a started
/// one), so the SDK's retries stay on.
pub(crate) async fn stop_start(c: &Clients<'_>, instance: &InstanceId) -> Outcome {
    if let Err(e) = c.ec2.stop_instances().instance_ids(instance.as_str()).send().await {
        return Outcome::failed_call(&format!("StopInstances of {instance}"), &e);
    }
    let started = std::time::Instant::now();
    let mut wait = c.poll.first;
    loop {
        let last = match state(c, instance).await {
            Ok(s) if s == "stopped" => break,
            Ok(s) => s,
            Err(why) => why,
        };
        if started.elapsed() + wait > super::STOP_DEADLINE {
            return Outcome::uncertain(format!(
                "stop of {instance} requested, but it is still {last} after {} s: force-stop it (aws ec2 stop-instances --force) and start it by hand",
                started.elapsed().as_secs()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(c.poll.max);
    }
    let stopped_in = started.elapsed().as_secs();
    match c.ec2.start_instances().instance_ids(instance.as_str()).send().await {
        Ok(_) => Outcome::done(
            format!(
                "stopped {instance} (in {stopped_in} s) and started it again, onto a new host"
            ),
            Vec::new(),
        ),
        Err(e) => Outcome::uncertain(format!(
            "{instance} was stopped, but StartInstances failed ({}): start it by hand",
            sdk_error(&e)
        )),
    }
}

async fn state(c: &Clients<'_>, instance: &InstanceId) -> Result<String, String> {
    let out = c
        .ec2
        .describe_instances()
        .instance_ids(instance.as_str())
        .send()
        .await
        .map_err(|e| format!("DescribeInstances failed: {}", sdk_error(&e)))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| i.state().and_then(|s| s.name()))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|| "unknown".into()))
}

/// Carries out the step (see `actions::Run`).
pub(crate) async fn run(c: &Clients<'_>, s: &super::Step, _: &crate::actions::Run<'_>) -> Outcome {
    match s.stop_start {
        true => stop_start(c, &s.instance).await,
        false => reboot(c, &s.instance).await,
    }
}
