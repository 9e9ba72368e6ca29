//! SSM Run Command: send fixed commands and poll for their result.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_ssm::types::CommandInvocationStatus;
use tokio::time::{Instant, sleep};

use crate::commands::HIGH_CPU_DIAGNOSTICS;
use crate::ids::InstanceId;

use super::*;

/// Runs the fixed high-CPU diagnostics (see [`run_command`]).
pub async fn collect_diagnostics(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    incident_id: &str,
    wait: Duration,
    poll: PollSchedule,
) -> Outcome {
    run_command(
        ssm,
        instance,
        HIGH_CPU_DIAGNOSTICS
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        &format!("first-responder diagnostics for {incident_id}"),
        wait,
        poll,
    )
    .await
}

/// Runs fixed commands (from [`commands`]) on the instance through SSM Run
/// Command and waits for the output, at most `wait`. Nothing from the event
/// reaches them: the instance id is validated and passed as an API parameter.
pub async fn run_command(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    commands: Vec<String>,
    comment: &str,
    wait: Duration,
    poll: PollSchedule,
) -> Outcome {
    let deadline = Instant::now() + wait;
    match send(ssm, instance, commands, comment, wait).await {
        Ok(command_id) => wait_for(ssm, instance, &command_id, (deadline, wait), poll).await,
        Err(refused) => refused,
    }
}

/// SendCommand, not idempotent (a repeat runs the script twice): no SDK
/// retries, only a retry of a call refused for the rate. The command's id,
/// or (Err) the outcome of a command that was not sent.
async fn send(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    commands: Vec<String>,
    comment: &str,
    wait: Duration,
) -> Result<String, Outcome> {
    let sent = once(|| {
        ssm.send_command()
            .instance_ids(instance.as_str())
            .document_name(RUN_SHELL_DOCUMENT)
            .parameters("commands", commands.clone())
            // The command stops on the instance when we stop waiting for it.
            .parameters("executionTimeout", vec![wait.as_secs().max(1).to_string()])
            // Delivery timeout; SSM's minimum is 30 s.
            .timeout_seconds(i32::try_from(wait.as_secs().max(30)).unwrap_or(30))
            // SSM's limit for a comment is 100 characters.
            .comment(comment.chars().take(100).collect::<String>())
            .customize()
            .config_override(
                aws_sdk_ssm::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
    })
    .await;
    match sent {
        Ok(out) => match out.command().and_then(|c| c.command_id()) {
            Some(id) => Ok(id.to_owned()),
            None => Err(Outcome::failed("SendCommand answered without a command id")),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_instance_id()) =>
        {
            Err(Outcome::skipped(format!(
                "{instance} is not managed by SSM or its agent is offline ({})",
                sdk_error(&e)
            )))
        }
        Err(e) => Err(Outcome::failed_call("SendCommand", &e)),
    }
}

/// Polls the sent command's invocation until it ends or the deadline
/// (`wait` after the start) passes. From here on the command was sent:
/// whatever goes wrong, it may have run.
async fn wait_for(
    ssm: &aws_sdk_ssm::Client,
    instance: &InstanceId,
    command_id: &str,
    (deadline, wait): (Instant, Duration),
    poll: PollSchedule,
) -> Outcome {
    let ids = vec![command_id.to_owned()];
    let mut delay = poll.first;
    let mut last = String::from("not yet registered");
    loop {
        let now = Instant::now();
        if now >= deadline {
            let mut o = Outcome::uncertain(format!(
                "no result from command {command_id} within {} s (last status: {last})",
                wait.as_secs()
            ));
            o.ids = ids;
            return o;
        }
        sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(poll.max);
        let result = ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance.as_str())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            // Right after SendCommand the invocation is not registered yet.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invocation_does_not_exist()) =>
            {
                continue;
            }
            Err(e) => {
                let mut o = Outcome::uncertain(format!(
                    "GetCommandInvocation of {command_id}: {}",
                    sdk_error(&e)
                ));
                o.ids = ids;
                return o;
            }
        };
        match out.status() {
            Some(CommandInvocationStatus::Success) => {
                let mut o = Outcome::done(format!("command {command_id} succeeded"), ids);
                o.output = Some(crate::commands::with_cut_note(
                    out.standard_output_content().unwrap_or_default(),
                ));
                o.exit_code = Some(out.response_code());
                return o;
            }
            Some(
                CommandInvocationStatus::Pending
                | CommandInvocationStatus::InProgress
                | CommandInvocationStatus::Delayed,
            )
            | None => {
                last = out
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "unknown".into());
            }
            Some(other) => {
                let stderr = out.standard_error_content().unwrap_or_default();
                let mut o = Outcome::uncertain(format!(
                    "command {command_id} ended {} (exit code {}){}",
                    other.as_str(),
                    out.response_code(),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", printable(stderr.trim(), 500))
                    }
                ));
                o.ids = ids;
                o.output = out
                    .standard_output_content()
                    .map(crate::commands::with_cut_note);
                o.exit_code = Some(out.response_code());
                return o;
            }
        }
    }
}

#[cfg(test)]
mod tests;
