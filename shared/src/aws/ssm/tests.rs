//! Error sequences moto cannot produce, through typed SDK mocks.
use super::*;
use crate::report::Status;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_command_invocation::{
    GetCommandInvocationError, GetCommandInvocationOutput,
};
use aws_sdk_ssm::operation::send_command::{SendCommandError, SendCommandOutput};
use aws_sdk_ssm::types::Command;
use aws_sdk_ssm::types::error::{InvalidInstanceId, InvocationDoesNotExist};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

fn instance() -> InstanceId {
    InstanceId::parse("t", "i-0123456789abcdef0").unwrap()
}

fn sent() -> aws_smithy_mocks::Rule {
    mock!(Client::send_command)
        .match_requests(|r| {
            r.document_name() == Some(RUN_SHELL_DOCUMENT)
                && r.instance_ids() == ["i-0123456789abcdef0"]
                && r.parameters()
                    .and_then(|p| p.get("commands"))
                    .map(|c| c.iter().map(String::as_str).collect::<Vec<_>>())
                    == Some(HIGH_CPU_DIAGNOSTICS.to_vec())
        })
        .then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        })
}

fn invocation(status: CommandInvocationStatus, stdout: &str) -> GetCommandInvocationOutput {
    GetCommandInvocationOutput::builder()
        .status(status)
        .standard_output_content(stdout)
        .response_code(0)
        .build()
}

const FAST: PollSchedule = PollSchedule {
    first: Duration::from_millis(10),
    max: Duration::from_millis(40),
};

#[tokio::test(start_paused = true)]
async fn polls_through_invocation_does_not_exist_until_success() {
    let poll = mock!(Client::get_command_invocation)
        .sequence()
        .error(|| {
            GetCommandInvocationError::InvocationDoesNotExist(
                InvocationDoesNotExist::builder().build(),
            )
        })
        .times(2)
        .output(|| invocation(CommandInvocationStatus::InProgress, ""))
        .output(|| invocation(CommandInvocationStatus::Success, "top: java"))
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
    let o = collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
    assert_eq!(o.status, Status::Done, "{o:?}");
    assert_eq!(o.output.as_deref(), Some("top: java"));
    assert_eq!(o.ids, vec!["cmd-1"]);
    assert_eq!(poll.num_calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn output_cut_by_ssm_says_so() {
    let long = "x".repeat(crate::commands::SSM_STDOUT_LIMIT);
    let poll = mock!(Client::get_command_invocation)
        .then_output(move || invocation(CommandInvocationStatus::Success, &long));
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
    let o = collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
    let out = o.output.unwrap_or_default();
    assert!(
        out.ends_with("the rest was cut]"),
        "{}",
        &out[out.len() - 200..]
    );
}

#[tokio::test(start_paused = true)]
async fn unmanaged_instance_is_skipped_with_the_reason() {
    let send = mock!(Client::send_command).then_error(|| {
        SendCommandError::InvalidInstanceId(
            InvalidInstanceId::builder()
                .message("Instances not in a valid state")
                .build(),
        )
    });
    let ssm = mock_client!(aws_sdk_ssm, [&send]);
    let o = collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
    assert_eq!(o.status, Status::Skipped);
    assert!(o.detail.contains("not managed by SSM"), "{}", o.detail);
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_the_deadline() {
    let poll = mock!(Client::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::InProgress, ""));
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
    let started = Instant::now();
    let o = collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(3), FAST).await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.detail.contains("within 3 s (last status: InProgress)"),
        "{}",
        o.detail
    );
    assert_eq!(o.ids, vec!["cmd-1"]);
    assert!(started.elapsed() <= Duration::from_millis(3100));
}

#[tokio::test(start_paused = true)]
async fn failed_command_reports_status_and_stderr() {
    let poll = mock!(Client::get_command_invocation).then_output(|| {
        GetCommandInvocationOutput::builder()
            .status(CommandInvocationStatus::Failed)
            .response_code(127)
            .standard_error_content("ps: not found\n")
            .build()
    });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&sent(), &poll]);
    let o = collect_diagnostics(&ssm, &instance(), "inc-1", Duration::from_secs(60), FAST).await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.detail
            .contains("ended Failed (exit code 127): ps: not found"),
        "{}",
        o.detail
    );
}
