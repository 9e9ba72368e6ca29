//! The service_down playbook end to end against moto: replace in a group,
//! reboot otherwise, and only when EC2 says the instance is down.

use anyhow::{Context, Result};
use first_responder::Mode;
use harness::{FleetSpec, World, instance_health, instance_state, snapshots, status_of};

#[tokio::test]
async fn service_down_replaces_a_group_instance_and_reboots_a_standalone_one() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    // The actions themselves, without their approval (tests/tests/emulator/approval.rs).
    w.config.playbooks.service_down.all_auto();
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
    let mut w = World::start(FleetSpec::default()).await?;
    // The actions themselves, without their approval (tests/tests/emulator/approval.rs).
    w.config.playbooks.service_down.all_auto();
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

/// A group with `ReplaceUnhealthy` suspended would not replace the
/// instance: the replacement is skipped with that reason and the instance
/// stays Healthy in it; the reboot is the remedy left (held for approval,
/// as the playbook ships).
#[tokio::test]
async fn a_group_that_does_not_replace_is_not_asked_to() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    aws_sdk_autoscaling::Client::new(&w.sdk)
        .suspend_processes()
        .auto_scaling_group_name(&w.fleet.group)
        .scaling_processes("ReplaceUnhealthy")
        .send()
        .await?;
    let instance = w.fleet.instance().to_owned();
    let r = w
        .run("service-down-alarm.json", &instance, Mode::Run)
        .await?;
    let (st, why) = status_of(&r, "replace_instance");
    assert_eq!(st, "skipped", "{r:#?}");
    assert_eq!(
        why,
        format!(
            "group {} has its ReplaceUnhealthy process suspended: it would not replace {instance}",
            w.fleet.group
        )
    );
    assert_eq!(instance_health(&w.sdk, &instance).await?, "HEALTHY");
    assert_eq!(status_of(&r, "reboot").0, "awaiting_approval", "{r:#?}");
    Ok(())
}

/// `StatusCheckFailed_System`: the host is at fault, and a reboot keeps the
/// instance on it. An EBS-backed instance in no group is stopped and
/// started (a new host); `StatusCheckFailed_Instance` keeps the reboot.
#[tokio::test]
async fn a_failed_system_check_stops_and_starts_the_instance_onto_a_new_host() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    w.config.playbooks.service_down.all_auto();
    let alone = w.fleet.standalone.clone();
    let event = harness::sample_event("service-down-alarm.json", &alone)?;
    let system = event.replace("\"StatusCheckFailed\"", "\"StatusCheckFailed_System\"");
    assert_ne!(system, event);
    let r = w.handle_text(&system, Mode::Run).await?;
    let reboot = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "reboot")
        .context("reboot")?;
    assert_eq!(reboot.status.as_str(), "done", "{reboot:?}");
    assert!(
        reboot
            .reason
            .contains("the host is at fault: stop and start"),
        "{reboot:?}"
    );
    assert!(
        reboot
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("and started it again, onto a new host"),
        "{reboot:?}"
    );
    assert_eq!(instance_state(&w.sdk, &alone).await?, "running");

    // The instance's own check: a reboot, on the same host, is the remedy.
    let instance_check = event
        .replace("\"StatusCheckFailed\"", "\"StatusCheckFailed_Instance\"")
        .replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let r = w.handle_text(&instance_check, Mode::Run).await?;
    let (st, detail) = status_of(&r, "reboot");
    assert_eq!(st, "done", "{r:#?}");
    assert!(detail.contains("reboot of"), "{detail}");
    Ok(())
}
