//! The disk_full, memory_pressure and service_down playbooks end to end: the
//! real SDK over HTTP against moto, results read back from the emulated
//! account (volume sizes and modifications, snapshots, SSM commands by
//! content, group health, notifications).

use std::time::Duration;

use anyhow::{Context, Result};
use first_responder::aws::PollSchedule;
use first_responder::commands;
use first_responder::ids::{ServiceName, VolumeId};
use first_responder::{Aws, Mode, Report};
use harness::proxy::{Fault, FaultProxy, Faults, Rule};
use harness::{
    FleetSpec, World, drain, instance_health, sample_event, snapshots, ssm_commands, tag,
    volume_modifications, volume_size,
};

fn status_of(r: &Report, action: &str) -> (String, String) {
    r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == action)
        .map(|a| {
            (
                a.status.as_str().to_owned(),
                a.detail.clone().unwrap_or_else(|| a.reason.clone()),
            )
        })
        .unwrap_or_else(|| ("absent".into(), String::new()))
}

fn vol(id: &str) -> Result<VolumeId> {
    Ok(VolumeId::parse("test", id)?)
}

#[tokio::test]
async fn disk_full_cleans_up_then_snapshots_and_expands_the_volume_behind_the_mount() -> Result<()>
{
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    assert_eq!(volume_size(&w.sdk, &data).await?, 20);
    // Hostile text in the alert's mount point: it may be read, never run.
    let event = sample_event("disk-full-alarm.json", &instance)?.replace(
        "\"path\": \"/data\"",
        "\"path\": \"/data'; reboot; echo '\"",
    );
    let report = w.handle(&event).await?;
    let inc = &report.incidents[0];
    assert_eq!(inc.kind.as_str(), "disk_full");
    assert!(!report.any_failed(), "{report:#?}");
    // The alerted filesystem is not / (where /tmp, /var/tmp and /var/log
    // live): cleaning them would free nothing on it.
    for action in ["cleanup_temp", "archive_logs"] {
        let (st, why) = status_of(&report, action);
        assert_eq!(st, "skipped", "{action}");
        assert!(
            why.contains("frees nothing on the full filesystem"),
            "{why}"
        );
    }
    let (st, detail) = status_of(&report, "expand_volume");
    assert_eq!(st, "done", "{detail}");
    // 20 GiB: +20% is 24, at least +10 GiB wins.
    assert!(
        detail.contains(&format!("{data} grown 20 -> 30 GiB")),
        "{detail}"
    );
    assert!(detail.contains("block-device mapping /dev/sdf"), "{detail}");
    // moto's SSM prints nothing, so usage comes from the alert, and says so.
    assert!(detail.contains("97.2% as alerted"), "{detail}");

    // The new size, one modification, and the snapshot taken before it.
    assert_eq!(volume_size(&w.sdk, &data).await?, 30);
    let mods = volume_modifications(&w.sdk, &data).await?;
    assert_eq!(mods.len(), 1, "{mods:?}");
    assert_eq!(mods[0].0, 30);
    let snaps = snapshots(&w.sdk).await?;
    assert_eq!(snaps.len(), 1, "only the expanded volume: {snaps:#?}");
    assert_eq!(snaps[0].volume, data);
    assert_eq!(
        snaps[0].tags["first-responder:purpose"],
        "before expand_volume"
    );
    assert_eq!(snaps[0].tags["first-responder:incident-id"], inc.id);
    assert!(
        snaps[0].start_time <= mods[0].1,
        "snapshot after the modification"
    );

    // The commands, by content: the fixed scripts, with typed values only.
    let cmds = ssm_commands(&w.sdk).await?;
    let sent: Vec<&Vec<String>> = cmds.iter().map(|c| &c.commands).collect();
    // (Only the growth: the cleanup and archive scripts were skipped above;
    // their content is run for real in tests/tests/scripts.rs.)
    let want = commands::grow_filesystem(&vol(&data)?, Some("f"), 30);
    assert!(sent.contains(&&want), "not sent: {want:#?}");
    assert_eq!(cmds.len(), 1, "{cmds:#?}");
    for c in &cmds {
        assert!(c.instances.contains(&instance));
        let text = c.commands.join("\n");
        // (The device letters in the grow script come from EC2's block-device
        // mapping, /dev/sdf, not from the alert.)
        for event_text in ["reboot", "/data", "web-data-disk-full", "97.2"] {
            assert!(
                !text.contains(event_text),
                "{event_text:?} reached a command: {text}"
            );
        }
    }
    let grow = cmds
        .iter()
        .find(|c| c.comment.contains("expand_volume"))
        .context("no grow command")?;
    let grow_text = grow.commands.join("\n");
    assert!(grow_text.contains("growpart"), "{grow_text}");
    assert!(grow_text.contains("resize2fs") && grow_text.contains("xfs_growfs"));
    assert!(grow_text.contains("df -P"));

    // The notification: what was done and the runbook's disk_full steps.
    let got = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(got.len(), 1);
    let doc = got[0].document()?;
    assert_eq!(doc["next_steps"][0], "Check disk usage (df -h).");
    assert_eq!(doc["next_steps"].as_array().map(Vec::len), Some(5));
    Ok(())
}

#[tokio::test]
async fn disk_full_caps_skips_and_rate_limits() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    let event = sample_event("disk-full-alarm.json", &instance)?;

    // At the configured maximum: not touched, not even snapshotted.
    w.config.playbooks.disk_full.expand_volume.max_volume_gib = 20;
    let r = w.handle(&event).await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(st, "skipped");
    assert!(why.contains("at or above the maximum of 20 GiB"), "{why}");
    assert_eq!(volume_size(&w.sdk, &data).await?, 20);
    assert!(volume_modifications(&w.sdk, &data).await?.is_empty());
    assert!(snapshots(&w.sdk).await?.is_empty());

    // Below the maximum: grown to it, not past it.
    w.config.playbooks.disk_full.expand_volume.max_volume_gib = 25;
    let again = event.replace("2026-11-25T02:04:12.152", "2026-11-25T03:04:12.152");
    let r = w.handle(&again).await?;
    assert_eq!(status_of(&r, "expand_volume").0, "done");
    assert_eq!(volume_size(&w.sdk, &data).await?, 25);

    // A filesystem it does not know: skipped before anything is changed.
    let xfs_only = event
        .replace("\"ext4\"", "\"btrfs\"")
        .replace("2026-11-25T02:04:12.152", "2026-11-25T04:04:12.152");
    w.config.playbooks.disk_full.expand_volume.max_volume_gib = 2048;
    let r = w.handle(&xfs_only).await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(
        (st.as_str(), why.contains("btrfs")),
        ("skipped", true),
        "{why}"
    );
    assert_eq!(volume_size(&w.sdk, &data).await?, 25);

    // EBS refuses the modification (VolumeModificationRateExceeded, which
    // moto never answers; the proxy does, in EC2's wire format).
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &[Rule {
                action: "ModifyVolume",
                fault: Fault::Ec2Error("VolumeModificationRateExceeded"),
                times: u64::MAX,
            }],
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let mut aws = Aws::new(&via);
    aws.poll = PollSchedule {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    let limited = event.replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let before = snapshots(&w.sdk).await?.len();
    let r = first_responder::handle(serde_json::from_str(&limited)?, &aws, &w.config, Mode::Run)
        .await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(st, "skipped", "{why}");
    assert!(
        why.contains("EBS will not modify")
            && why.contains("VolumeModificationRateExceeded")
            && why.contains("nothing else changed"),
        "{why}"
    );
    assert_eq!(volume_size(&w.sdk, &data).await?, 25, "unchanged");
    assert_eq!(
        snapshots(&w.sdk).await?.len(),
        before + 1,
        "the snapshot, said so"
    );
    let hits = proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert_eq!(hits, vec![1]);
    Ok(())
}

#[tokio::test]
async fn disk_full_redelivered_modifies_the_volume_once() -> Result<()> {
    let w = World::start_with_state(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    let event = sample_event("disk-full-alarm.json", &instance)?;
    // Three times in sequence, then three at once.
    for _ in 0..3 {
        w.handle(&event).await?;
    }
    let (a, b, c) = tokio::join!(w.handle(&event), w.handle(&event), w.handle(&event));
    for r in [a?, b?, c?] {
        assert_ne!(r.incidents[0].delivery, "first");
    }
    assert_eq!(volume_modifications(&w.sdk, &data).await?.len(), 1);
    assert_eq!(volume_size(&w.sdk, &data).await?, 30);
    // A new occurrence of the same alarm within a day: the cooldown holds.
    let later = event.replace("2026-11-25T02:04:12.152", "2026-11-25T03:30:00.000");
    let r = w.handle(&later).await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(st, "skipped");
    assert!(
        why.contains(&format!(
            "cooldown: expand_volume of {data} was done recently; not again until"
        )),
        "{why}"
    );
    assert_eq!(volume_modifications(&w.sdk, &data).await?.len(), 1);
    Ok(())
}

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
        commands::restart_service(&ServiceName::parse("t", "app.service")?)
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

#[tokio::test]
async fn service_down_replaces_a_group_instance_and_reboots_a_standalone_one() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    assert_eq!(instance_health(&w.sdk, &instance).await?, "HEALTHY");
    let r = w
        .run("service-down-alarm.json", &instance, Mode::Run)
        .await?;
    assert_eq!(r.incidents[0].kind.as_str(), "service_down");
    assert!(!r.any_failed(), "{r:#?}");
    let (st, detail) = status_of(&r, "replace_instance");
    assert_eq!(st, "done");
    assert!(
        detail.contains("marked Unhealthy: web-asg replaces it"),
        "{detail}"
    );
    assert_eq!(instance_health(&w.sdk, &instance).await?, "UNHEALTHY");
    assert_eq!(status_of(&r, "reboot").0, "skipped");
    // Evidence: status checks and console output, and the snapshots first.
    let evidence = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "collect_evidence")
        .and_then(|a| a.output.clone())
        .context("no evidence output")?;
    assert!(evidence.contains("== status checks =="), "{evidence}");
    assert!(evidence.contains("== console output"), "{evidence}");
    assert!(
        evidence.contains("Linux version"),
        "moto's console text: {evidence}"
    );
    assert_eq!(snapshots(&w.sdk).await?.len(), 2);

    // The standalone instance is rebooted instead.
    let alone = w.fleet.standalone.clone();
    let r = w.run("service-down-alarm.json", &alone, Mode::Run).await?;
    assert_eq!(status_of(&r, "reboot").0, "done", "{r:#?}");
    let (st, why) = status_of(&r, "replace_instance");
    assert_eq!(st, "skipped");
    assert!(why.contains("is in no Auto Scaling group"), "{why}");
    Ok(())
}

/// Prometheus's `up == 0` only says a scrape failed: with EC2's status
/// checks passing nothing is rebooted or replaced; once EC2 says the
/// instance is down (here: stopped), the group replaces it.
#[tokio::test]
async fn prometheus_service_down_acts_only_when_ec2_says_the_instance_is_down() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let event =
        std::fs::read_to_string(harness::root().join("events/alertmanager-service-down.json"))?
            .replace("10.0.1.5", &w.fleet.private_ip);
    let r = w.handle(&event).await?;
    assert_eq!(r.incidents[0].kind.as_str(), "service_down");
    for action in ["replace_instance", "reboot"] {
        let (st, why) = status_of(&r, action);
        assert_eq!(st, "skipped", "{action}: {r:#?}");
        assert!(
            why.starts_with("EC2 status checks pass: the exporter, not the instance, is down"),
            "{action}: {why}"
        );
    }
    assert!(
        r.incidents[0]
            .notes
            .iter()
            .any(|n| n.contains("look at the exporter")),
        "{:?}",
        r.incidents[0].notes
    );
    assert_eq!(instance_health(&w.sdk, &instance).await?, "HEALTHY");
    // The evidence is still taken.
    assert_eq!(status_of(&r, "collect_evidence").0, "done");
    assert_eq!(snapshots(&w.sdk).await?.len(), 2);

    // EC2 now says the instance is not running: the group replaces it.
    aws_sdk_ec2::Client::new(&w.sdk)
        .stop_instances()
        .instance_ids(&instance)
        .send()
        .await?;
    let later = event.replace("2026-11-25T02:04:00.000Z", "2026-11-25T03:04:00.000Z");
    let r = w.handle(&later).await?;
    let (st, detail) = status_of(&r, "replace_instance");
    assert_eq!(st, "done", "{r:#?}");
    assert!(detail.contains("marked Unhealthy"), "{detail}");
    assert_eq!(instance_health(&w.sdk, &instance).await?, "UNHEALTHY");
    Ok(())
}

#[tokio::test]
async fn prometheus_disk_alert_reaches_the_volume_through_the_private_ip() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let data = w.fleet.data_volume.clone();
    let event =
        std::fs::read_to_string(harness::root().join("events/alertmanager-disk-full.json"))?
            .replace("10.0.1.5", &w.fleet.private_ip);
    let r = w.handle(&event).await?;
    let (st, detail) = status_of(&r, "expand_volume");
    assert_eq!(st, "done", "{r:#?}");
    // DiskSpaceLow's value is the free percentage: 3.5% free is 96.5% used.
    assert!(detail.contains("96.5% as alerted"), "{detail}");
    assert_eq!(volume_size(&w.sdk, &data).await?, 30);
    Ok(())
}

/// The notification goes out before the invocation's own deadline, however
/// long an action hangs: the actions stop `NOTIFY_RESERVE_SECONDS` before it.
#[tokio::test]
async fn the_notification_is_sent_before_the_invocation_times_out() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &[Rule {
                action: "SetDesiredCapacity",
                fault: Fault::Hang,
                times: u64::MAX,
            }],
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let mut aws = Aws::new(&via);
    aws.poll = PollSchedule {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    w.config.notify_reserve = Duration::from_secs(2);
    let event = harness::sample_event("high-cpu-alarm.json", w.fleet.instance())?;
    let started = std::time::Instant::now();
    // A Lambda invocation with 6 s left; the hung call alone would take the
    // SDK's 20 s operation timeout.
    let until = started + Duration::from_secs(6);
    let r = first_responder::respond::handle_until(
        serde_json::from_str(&event)?,
        &aws,
        &w.config,
        Mode::Run,
        Some(until),
    )
    .await?;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let (st, why) = status_of(&r, "scale_out");
    assert_eq!(st, "failed", "{r:#?}");
    assert!(why.contains("before the invocation's deadline"), "{why}");
    assert_eq!(status_of(&r, "notify").0, "done", "{r:#?}");
    let inbox = harness::drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1);
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
    let mut aws = w.aws.clone();
    aws.ssm = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&restarts, &others, &answers]
    );

    let event = sample_event("memory-pressure-alarm.json", &instance)?;
    let r =
        first_responder::handle(serde_json::from_str(&event)?, &aws, &w.config, Mode::Run).await?;
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
    let r =
        first_responder::handle(serde_json::from_str(&next)?, &aws, &w.config, Mode::Run).await?;
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
    let r =
        first_responder::handle(serde_json::from_str(&event)?, &aws, &w.config, Mode::Run).await?;
    assert_eq!(r.incidents[0].delivery, "resumed", "{r:#?}");
    let (st, why) = status_of(&r, "restart_service");
    assert_eq!(st, "failed", "{r:#?}");
    assert!(why.starts_with("in an earlier delivery"), "{why}");
    assert_eq!(restarts.num_calls(), 1, "restarted again");
    Ok(())
}

/// ModifyVolume answered "already being modified" (someone else, or an
/// earlier delivery, is growing it): the volume is treated as expanding:
/// wait for that modification, then grow the filesystem to its size.
#[tokio::test]
async fn a_volume_already_being_modified_is_waited_for_then_grown() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    // A modification to 40 GiB that someone else started.
    aws_sdk_ec2::Client::new(&w.sdk)
        .modify_volume()
        .volume_id(&data)
        .size(40)
        .send()
        .await?;
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &[Rule {
                action: "ModifyVolume",
                fault: Fault::Ec2Error("IncorrectModificationState"),
                times: u64::MAX,
            }],
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let mut aws = Aws::new(&via);
    aws.poll = PollSchedule {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    let event = sample_event("disk-full-alarm.json", &instance)?;
    let r =
        first_responder::handle(serde_json::from_str(&event)?, &aws, &w.config, Mode::Run).await?;
    let (st, detail) = status_of(&r, "expand_volume");
    assert_eq!(st, "done", "{r:#?}");
    // (moto shows the new size at once, as EC2 does once a modification starts)
    assert!(detail.contains(&format!("{data} is 40 GiB")), "{detail}");
    assert!(
        detail.contains("already being modified to 40 GiB"),
        "{detail}"
    );
    // The filesystem was grown to that size, through SSM.
    let grow = ssm_commands(&w.sdk)
        .await?
        .into_iter()
        .find(|c| c.comment.contains("expand_volume"))
        .context("no grow command")?;
    assert!(
        grow.commands
            .join("\n")
            .contains(&(40_i64 << 30).to_string()),
        "{:?}",
        grow.commands
    );
    assert_eq!(volume_modifications(&w.sdk, &data).await?.len(), 1);
    Ok(())
}
