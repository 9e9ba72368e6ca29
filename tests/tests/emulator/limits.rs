//! Limits that are on by default, against moto: the opt-in tag, the
//! capacity cap and the kill switch.

use anyhow::Result;
use first_responder::{Mode, Report, handle};
use harness::{
    FleetSpec, World, desired_capacity, drain, put_secret, sample_event, snapshots, ssm_commands,
};

async fn world(spec: FleetSpec) -> Result<World> {
    World::start(spec).await
}

fn statuses(r: &Report) -> Vec<String> {
    r.incidents[0]
        .actions
        .iter()
        .map(|a| format!("{}:{}", a.action.as_str(), a.status.as_str()))
        .collect()
}

/// An instance without the opt-in tag is reported on, but nothing is run
/// on it or changed: SSM commands run as root, and the IAM policy allows
/// them (and snapshots of it) on opted-in instances only.
#[tokio::test]
async fn untagged_instances_are_reported_but_not_commanded_or_changed() -> Result<()> {
    let w = world(FleetSpec {
        opt_in: false,
        ..FleetSpec::default()
    })
    .await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    assert_eq!(
        statuses(&r),
        [
            "snapshot:skipped",
            "collect_diagnostics:skipped",
            "scale_out:skipped",
            "notify:done"
        ]
    );
    assert!(
        r.incidents[0].actions[2]
            .reason
            .contains("does not carry the opt-in tag first-responder=enabled")
    );
    assert!(
        r.incidents[0].actions[1]
            .reason
            .contains("SSM commands are sent to opted-in instances only"),
        "{}",
        r.incidents[0].actions[1].reason
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    assert!(
        ssm_commands(&w.sdk).await?.is_empty(),
        "no command on an instance that is not opted in"
    );
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(
        text.contains("[skipped] scale_out web-asg: group web-asg does not carry the opt-in tag"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn the_kill_switch_turns_everything_into_notify_only() -> Result<()> {
    let mut w = world(FleetSpec::default()).await?;
    w.config.kill_switch_parameter = Some("/first-responder/kill-switch".into());
    // Not set: business as usual.
    let r = w.run_sample("high-cpu-alarm.json").await?;
    assert!(
        statuses(&r).iter().all(|s| s.ends_with(":done")),
        "{:?}",
        statuses(&r)
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    drain(&w.sdk, &w.fleet.inbox_queue_url).await?;

    // Set, without a redeploy: the next alarm only notifies.
    put_secret(&w.sdk, "/first-responder/kill-switch", "on").await?;
    let later = sample_event("high-cpu-alarm.json", w.fleet.instance())?.replace(
        "2026-11-25T02:04:12.152+0000",
        "2026-11-25T03:00:00.000+0000",
    );
    let r = handle(
        serde_json::from_str(&later)?,
        &w.engine,
        &w.config,
        Mode::Run,
    )
    .await?;
    assert_eq!(
        statuses(&r),
        [
            "snapshot:skipped",
            "collect_diagnostics:skipped",
            "scale_out:skipped",
            "notify:done"
        ]
    );
    assert_eq!(
        snapshots(&w.sdk).await?.len(),
        2,
        "only the first incident's"
    );
    assert_eq!(ssm_commands(&w.sdk).await?.len(), 1);
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(
        text.contains("kill switch /first-responder/kill-switch is on: notify only"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn the_capacity_cap_stops_scaling_below_max_size() -> Result<()> {
    let mut w = world(FleetSpec {
        desired: 2,
        max: 5,
        ..FleetSpec::default()
    })
    .await?;
    w.config.max_desired_capacity = Some(2);
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let scale = &r.incidents[0].actions[2];
    assert_eq!(
        (scale.action.as_str(), scale.status.as_str()),
        ("scale_out", "skipped")
    );
    assert_eq!(
        scale.reason,
        "group web-asg is at the configured cap MAX_DESIRED_CAPACITY=2 (MaxSize 5)"
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    Ok(())
}

/// DRY_RUN=true through every playbook, on a fleet where each would act:
/// the account is the same before and after, yet every incident was
/// diagnosed and notified.
#[tokio::test]
async fn dry_run_of_every_playbook_leaves_the_account_as_it_was() -> Result<()> {
    let mut w = world(FleetSpec::default()).await?;
    w.config.dry_run = true;
    let instance = w.fleet.instance().to_owned();
    harness::tag(
        &w.sdk,
        &instance,
        "first-responder:restart-service",
        "app.service",
    )
    .await?;
    let before = harness::fleet_state(&w.sdk).await?;
    assert!(before.contains("group web-asg desired Some(1)"), "{before}");
    let mut would = Vec::new();
    for (event, on) in [
        ("high-cpu-alarm.json", instance.as_str()),
        ("disk-full-alarm.json", instance.as_str()),
        ("memory-pressure-alarm.json", instance.as_str()),
        ("service-down-alarm.json", instance.as_str()),
        ("service-down-alarm.json", w.fleet.standalone.as_str()),
    ] {
        // The root filesystem full: where the temp and log directories live.
        let text = sample_event(event, on)?.replace("\"path\": \"/data\"", "\"path\": \"/\"");
        let r = w.handle_text(&text, Mode::Run).await?;
        for a in &r.incidents[0].actions {
            if a.reason.starts_with("dry run: would") {
                would.push(a.action.as_str());
            }
        }
        assert!(r.incidents[0].dry_run);
    }
    would.sort();
    would.dedup();
    assert_eq!(
        would,
        [
            "archive_logs",
            "cleanup_temp",
            "expand_volume",
            "reboot",
            "replace_instance",
            "restart_service",
            "scale_out",
            "snapshot"
        ],
        "every kind of change was on the way and held back"
    );
    assert_eq!(harness::fleet_state(&w.sdk).await?, before);
    assert_eq!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.len(), 5);
    Ok(())
}

/// A dry run leaves no trace: the same occurrence delivered after dry-run is
/// switched off is acted on in full, and the state table held nothing of
/// the dry run (no occurrence, claim, cooldown, flap or breaker count).
#[tokio::test]
async fn a_dry_run_leaves_no_trace_and_a_later_real_delivery_acts_in_full() -> Result<()> {
    let mut w = World::start_with_state(FleetSpec::default()).await?;
    w.config.dry_run = true;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let i = &r.incidents[0];
    assert_eq!(i.delivery, "dry run", "{r:#?}");
    let scale = i
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .expect("scale_out planned");
    assert_eq!(scale.status.as_str(), "skipped");
    assert_eq!(
        scale.reason,
        "dry run: would add one instance to web-asg (desired 1 -> 2) (CPU 95.3% is at or above 90%)"
    );
    let records = harness::state_records(&w.sdk, &w.fleet.state_table).await?;
    assert!(records.is_empty(), "the dry run left {records:?}");
    assert!(snapshots(&w.sdk).await?.is_empty());

    w.config.dry_run = false;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    assert_eq!(r.incidents[0].delivery, "first", "{r:#?}");
    assert_eq!(
        statuses(&r),
        [
            "snapshot:done",
            "collect_diagnostics:done",
            "scale_out:done",
            "notify:done"
        ]
    );
    assert_eq!(snapshots(&w.sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    Ok(())
}
