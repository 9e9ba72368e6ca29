//! The memory_pressure playbook end to end against moto: the restart only
//! where it is allowed, and never repeated when its outcome is unknown.

use anyhow::{Context, Result};
use first_responder::Mode;
use first_responder::commands;
use first_responder::ids::ServiceName;
use harness::{FleetSpec, World, sample_event, ssm_commands, status_of, tag};

#[tokio::test]
async fn memory_pressure_restarts_the_tagged_service_only_when_allowed() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let event = sample_event("memory-pressure-alarm.json", &instance)?;

    // No tag naming a service: diagnostics only.
    let r = w.handle(&event).await?;
    assert_eq!(r.incidents[0].kind.as_str(), "memory_pressure");
    assert_eq!(status_of(&r, "collect_diagnostics").0, "done");
    let (st, why) = status_of(&r, "restart_service");
    assert_eq!(st, "skipped");
    assert!(
        why.contains("carries no first-responder:restart-service tag"),
        "{why}"
    );
    let cmds = ssm_commands(&w.sdk).await?;
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].commands,
        commands::MEMORY_DIAGNOSTICS
            .iter()
            .map(|c| (*c).to_owned())
            .collect::<Vec<_>>()
    );

    // Tagged: restarted, with exactly the validated name.
    tag(
        &w.sdk,
        &instance,
        "first-responder:restart-service",
        "app.service",
    )
    .await?;
    let next = event.replace("2026-11-25T02:04:12.152", "2026-11-25T03:04:12.152");
    let r = w.handle(&next).await?;
    assert_eq!(status_of(&r, "restart_service").0, "done", "{r:#?}");
    let cmds = ssm_commands(&w.sdk).await?;
    let restart = cmds
        .iter()
        .find(|c| c.comment.contains("restart_service"))
        .context("no restart command")?;
    assert_eq!(
        restart.commands,
        commands::restart_service(&ServiceName::parse("t", "app.service")?, 10)
    );

    // A tag value that is not a unit name: refused, nothing sent.
    tag(
        &w.sdk,
        &instance,
        "first-responder:restart-service",
        "app; reboot",
    )
    .await?;
    let third = event.replace("2026-11-25T02:04:12.152", "2026-11-25T04:04:12.152");
    let before = ssm_commands(&w.sdk).await?.len();
    let r = w.handle(&third).await?;
    let (st, why) = status_of(&r, "restart_service");
    assert_eq!(st, "skipped");
    assert!(why.contains("is not a systemd service name"), "{why}");
    assert_eq!(
        ssm_commands(&w.sdk).await?.len(),
        before + 1,
        "diagnostics only"
    );

    // Units whose restart would power the machine off or cut it off: refused
    // with the reason, nothing but the diagnostics sent.
    for (hour, unit, why_part) in [
        ("05", "poweroff.target", "is not a service unit"),
        ("06", "systemd-poweroff.service", "refused"),
        ("07", "amazon-ssm-agent", "refused"),
    ] {
        tag(&w.sdk, &instance, "first-responder:restart-service", unit).await?;
        let next = event.replace(
            "2026-11-25T02:04:12.152",
            &format!("2026-11-25T{hour}:04:12.152"),
        );
        let before = ssm_commands(&w.sdk).await?.len();
        let r = w.handle(&next).await?;
        let (st, why) = status_of(&r, "restart_service");
        assert_eq!(st, "skipped", "{unit}: {r:#?}");
        assert!(
            why.contains(why_part) && why.contains(unit),
            "{unit}: {why}"
        );
        assert_eq!(
            ssm_commands(&w.sdk).await?.len(),
            before + 1,
            "{unit}: diagnostics only"
        );
    }

    // Configuration that leaves restart_service out: never restarted.
    tag(
        &w.sdk,
        &instance,
        "first-responder:restart-service",
        "app.service",
    )
    .await?;
    w.config.playbooks.memory_pressure.stages =
        vec![vec![first_responder::plan::ActionName::CollectDiagnostics]];
    let fourth = event.replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let r = w.handle(&fourth).await?;
    assert_eq!(status_of(&r, "restart_service").0, "absent");
    assert!(
        ssm_commands(&w.sdk)
            .await?
            .iter()
            .filter(|c| c.comment.contains("restart_service"))
            .count()
            == 1
    );
    Ok(())
}

/// A restart that ran but left the unit failed may have changed things:
/// it is reported failed, keeps its cooldown and its claim, so neither the
/// next occurrence nor a redelivery restarts again at once. moto's SSM
/// prints nothing, so the instance's answer comes from a typed SDK mock;
/// everything else (state table, EC2, SNS) is the emulator.
#[tokio::test]
async fn a_restart_that_left_the_unit_failed_is_not_repeated() -> Result<()> {
    use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
    use aws_sdk_ssm::operation::send_command::SendCommandOutput;
    use aws_sdk_ssm::types::{Command, CommandInvocationStatus};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    let w = World::start_with_state(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    tag(
        &w.sdk,
        &instance,
        "first-responder:restart-service",
        "app.service",
    )
    .await?;
    let restarts = mock!(aws_sdk_ssm::Client::send_command)
        .match_requests(|r| r.comment().is_some_and(|c| c.contains("restart_service")))
        .then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-restart").build())
                .build()
        });
    let others = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-diag").build())
            .build()
    });
    let answers = mock!(aws_sdk_ssm::Client::get_command_invocation).then_output(|| {
        GetCommandInvocationOutput::builder()
            .status(CommandInvocationStatus::Success)
            .standard_output_content("active=failed\n")
            .response_code(0)
            .build()
    });
    let mut engine = w.engine.clone();
    engine.aws.ssm = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&restarts, &others, &answers]
    )
    .into();

    let event = sample_event("memory-pressure-alarm.json", &instance)?;
    let r = first_responder::handle(serde_json::from_str(&event)?, &engine, &w.config, Mode::Run)
        .await?;
    let (st, why) = status_of(&r, "restart_service");
    assert_eq!(st, "failed", "{r:#?}");
    assert!(
        why.contains("restarted app.service, but it is failed"),
        "{why}"
    );
    assert!(why.contains("may have been made"), "{why}");
    assert_eq!(restarts.num_calls(), 1);
    let records = harness::state_records(&w.sdk, &w.fleet.state_table).await?;
    assert!(
        records
            .iter()
            .any(|(k, v)| k.contains("restart_service") && v == "uncertain"),
        "{records:?}"
    );
    assert!(
        records
            .keys()
            .any(|k| k.starts_with("cooldown#restart_service#")),
        "the cooldown was given back: {records:?}"
    );

    // The alarm fires again ten minutes later: within the cooldown.
    let next = event.replace("2026-11-25T02:04:12.152", "2026-11-25T02:14:12.152");
    let r = first_responder::handle(serde_json::from_str(&next)?, &engine, &w.config, Mode::Run)
        .await?;
    let (st, why) = status_of(&r, "restart_service");
    assert_eq!(st, "skipped", "{r:#?}");
    assert!(why.starts_with("cooldown: restart_service"), "{why}");
    assert_eq!(restarts.num_calls(), 1, "restarted again");

    // The first occurrence delivered again once its incident is open for a
    // retry: its restart claim holds, nothing is repeated.
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    let first_incident = records
        .keys()
        .find(|k| k.starts_with("incident#"))
        .cloned()
        .unwrap_or_default();
    ddb.update_item()
        .table_name(&w.fleet.state_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(first_incident),
        )
        .update_expression("SET #st = :p, lease_until = :z")
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("in_progress".into()),
        )
        .expression_attribute_values(":z", aws_sdk_dynamodb::types::AttributeValue::N("0".into()))
        .send()
        .await?;
    let r = first_responder::handle(serde_json::from_str(&event)?, &engine, &w.config, Mode::Run)
        .await?;
    assert_eq!(r.incidents[0].delivery, "resumed", "{r:#?}");
    let (st, why) = status_of(&r, "restart_service");
    assert_eq!(st, "failed", "{r:#?}");
    assert!(why.starts_with("in an earlier delivery"), "{why}");
    assert_eq!(restarts.num_calls(), 1, "restarted again");
    Ok(())
}
