//! The disk_full playbook end to end: the real SDK over HTTP against moto,
//! results read back from the emulated account (volume sizes and
//! modifications, snapshots, SSM commands by content, notifications).

use std::time::Duration;

use anyhow::{Context, Result};
use first_responder::Mode;
use first_responder::commands;
use first_responder::disk::GrowPath;
use first_responder::ids::VolumeId;
use harness::proxy::{Fault, FaultProxy, Faults, Rule};
use harness::{
    FleetSpec, World, drain, sample_event, snapshots, ssm_commands, status_of,
    volume_modifications, volume_size,
};

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
    let event = sample_event("disk-full-alarm.json", &instance)?;
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
    // their content is run for real in tests/tests/emulator/scripts.rs.)
    // The preflight first (the block devices and tools), then the growth
    // of the whole-disk filesystem it showed.
    let want = commands::grow_filesystem(&vol(&data)?, Some("f"), 30, &GrowPath::Disk);
    assert!(sent.contains(&&want), "not sent: {want:#?}");
    let preflight: Vec<String> = commands::DISK_LAYOUT
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    assert_eq!(cmds.len(), 2, "{cmds:#?}");
    assert!(cmds.iter().any(|c| c.commands == preflight), "{cmds:#?}");
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
    // ext4 on the whole of xvdf: no partition to grow.
    assert!(!grow_text.contains("growpart"), "{grow_text}");
    assert!(grow_text.contains("resize2fs") && grow_text.contains("xfs_growfs"));
    assert!(grow_text.contains("df -P"));

    // Two messages: the expansion typically takes a minute, so a short
    // first page went out as soon as the plan was made, saying what fired
    // and what is under way; then the report, with what was done and the
    // runbook's disk_full steps.
    let got = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(got.len(), 2, "{got:?}");
    let first = got
        .iter()
        .find(|m| m.is_first_page())
        .context("no first page")?;
    let page = first.document()?;
    assert!(
        first
            .subject
            .as_deref()
            .unwrap_or_default()
            .starts_with("[ON IT] Disk full"),
        "{:?}",
        first.subject
    );
    assert_eq!(page["incident_id"], report.incidents[0].id.as_str());
    let under_way: Vec<&str> = page["under_way"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(under_way, ["expand_volume"], "{page}");
    assert!(
        page["under_way"][0]["step"]
            .as_str()
            .is_some_and(|s| s.contains(data.as_str()) && s.contains("GiB")),
        "{page}"
    );
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("WHAT FIRED") && text.contains("full report"),
        "{text}"
    );
    // The same pager fields as the report's: a paging service opens the
    // incident on the first page and the report lands on it.
    let incident = report.incidents[0].id.clone();
    let report = harness::the_report(&got)?;
    assert_eq!(first.attribute("severity"), report.attribute("severity"));
    assert_eq!(first.attribute("state"), Some("ALARM"));
    assert_eq!(page["alarm"], report.document()?["alarm"]);
    assert_eq!(first.attribute("incident_id"), Some(incident.as_str()));
    let doc = report.document()?;
    assert_eq!(doc["first_page"], false);
    assert_eq!(doc["next_steps"][0], "Check disk usage (df -h).");
    assert_eq!(doc["next_steps"].as_array().map(Vec::len), Some(5));
    assert!(
        doc["notes"].as_array().is_some_and(|n| n.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.starts_with("a short first page went out")))),
        "{doc}"
    );
    Ok(())
}

/// Hostile text in the alert's mount point is read and compared, never
/// run: the instance shows nothing mounted there, so nothing is changed.
#[tokio::test]
async fn a_mount_point_the_instance_does_not_have_is_not_grown() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let data = w.fleet.data_volume.clone();
    let event = sample_event("disk-full-alarm.json", w.fleet.instance())?.replace(
        "\"path\": \"/data\"",
        "\"path\": \"/data'; reboot; echo '\"",
    );
    let r = w.handle(&event).await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(st, "skipped", "{why}");
    assert!(
        why.contains("block devices show nothing mounted at /data'; reboot; echo ' (xvdf)"),
        "{why}"
    );
    assert!(volume_modifications(&w.sdk, &data).await?.is_empty());
    assert!(snapshots(&w.sdk).await?.is_empty());
    for c in ssm_commands(&w.sdk).await? {
        let text = c.commands.join("\n");
        assert!(
            !text.contains("reboot") && !text.contains("/data"),
            "{text}"
        );
    }
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
    // (The instance's lsblk, without udev, names none: the alert's is taken.)
    w.ssm.answer(
        w.fleet.instance(),
        "block devices",
        &harness::XEN_LAYOUT.replace("\"ext4\"", "null"),
    );
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
    w.ssm
        .answer(w.fleet.instance(), "block devices", harness::XEN_LAYOUT);

    // Grown minutes ago: EBS takes no second modification within 6 hours
    // (the harness's moto refuses it, as EC2 does). Nothing at all is done,
    // not even the snapshot, and the page says when it can be.
    let soon = event.replace("2026-11-25T02:04:12.152", "2026-11-25T04:34:12.152");
    let before = snapshots(&w.sdk).await?.len();
    let r = w.handle(&soon).await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(st, "skipped", "{why}");
    assert!(
        why.contains(&format!("{data} was modified 0h00 ago"))
            && why.contains("to 25 GiB, completed")
            && why.contains("it can be grown again after")
            && why.contains("no snapshot, no request"),
        "{why}"
    );
    assert_eq!(snapshots(&w.sdk).await?.len(), before, "no snapshot");
    assert_eq!(volume_modifications(&w.sdk, &data).await?.len(), 1);

    // EBS refuses the modification all the same (a modification made
    // between the read and the request): the proxy answers
    // VolumeModificationRateExceeded in EC2's wire format. The one above is
    // dated 7 hours back so the product's own check lets it through.
    w.moto
        .set_volume_modification(&data, Duration::from_secs(7 * 3600), "completed")?;
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
    let engine = w.engine_via(&proxy.endpoint).await;
    let limited = event.replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let before = snapshots(&w.sdk).await?.len();
    let r = first_responder::handle(
        serde_json::from_str(&limited)?,
        &engine,
        &w.config,
        Mode::Run,
    )
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

/// A volume modified 2 hours ago is not modified again, and no snapshot is
/// taken for it (EBS: one modification every 6 hours).
#[tokio::test]
async fn a_volume_modified_two_hours_ago_is_left_alone() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    aws_sdk_ec2::Client::new(&w.sdk)
        .modify_volume()
        .volume_id(&data)
        .size(22)
        .send()
        .await?;
    w.moto
        .set_volume_modification(&data, Duration::from_secs(2 * 3600), "completed")?;
    let event = sample_event("disk-full-alarm.json", &instance)?;
    let r = w.handle(&event).await?;
    let (st, why) = status_of(&r, "expand_volume");
    assert_eq!(st, "skipped", "{why}");
    assert!(
        why.contains(&format!("{data} was modified 2h00 ago"))
            && why.contains("to 22 GiB, completed")
            && why.contains("EBS allows one modification of a volume every 6 hours")
            && why.contains("it can be grown again after"),
        "{why}"
    );
    assert_eq!(volume_size(&w.sdk, &data).await?, 22);
    assert_eq!(volume_modifications(&w.sdk, &data).await?.len(), 1);
    assert!(snapshots(&w.sdk).await?.is_empty(), "a snapshot was taken");
    assert!(
        !ssm_commands(&w.sdk)
            .await?
            .iter()
            .any(|c| c.comment.contains("expand_volume")),
        "the filesystem was touched"
    );
    // The page says so.
    let got = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(
        got.iter()
            .any(|m| m.message.contains("can be grown again after")),
        "{got:?}"
    );
    Ok(())
}

/// Someone else is growing the volume now (`optimizing`): the product
/// waits for their modification and grows the filesystem to its size,
/// after its own snapshot, without asking EBS for a second one.
#[tokio::test]
async fn a_volume_being_modified_by_someone_else_is_waited_for_then_grown() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    aws_sdk_ec2::Client::new(&w.sdk)
        .modify_volume()
        .volume_id(&data)
        .size(40)
        .send()
        .await?;
    w.moto
        .set_volume_modification(&data, Duration::from_secs(30), "optimizing")?;
    let event = sample_event("disk-full-alarm.json", &instance)?;
    let r = w.handle(&event).await?;
    let (st, detail) = status_of(&r, "expand_volume");
    assert_eq!(st, "done", "{r:#?}");
    assert!(detail.contains(&format!("{data} is 40 GiB")), "{detail}");
    assert!(
        detail.contains("already being modified to 40 GiB (started"),
        "{detail}"
    );
    assert_eq!(volume_modifications(&w.sdk, &data).await?.len(), 1);
    assert_eq!(
        snapshots(&w.sdk).await?.len(),
        1,
        "the snapshot before the change"
    );
    let grow = ssm_commands(&w.sdk)
        .await?
        .into_iter()
        .find(|c| c.comment.contains("expand_volume"))
        .context("no grow command")?;
    assert!(
        grow.commands
            .join("\n")
            .contains(&(40_i64 << 30).to_string())
    );
    Ok(())
}

/// ModifyVolume answered "already being modified" (a modification begun
/// between the product's read and its request): the volume is treated as
/// expanding: wait for that modification, then grow the filesystem to its
/// size.
#[tokio::test]
async fn a_volume_already_being_modified_is_waited_for_then_grown() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let data = w.fleet.data_volume.clone();
    // A modification to 40 GiB that someone else started; dated 7 hours
    // back, so the product's read finds EBS open to a new one.
    aws_sdk_ec2::Client::new(&w.sdk)
        .modify_volume()
        .volume_id(&data)
        .size(40)
        .send()
        .await?;
    w.moto
        .set_volume_modification(&data, Duration::from_secs(7 * 3600), "completed")?;
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
    let engine = w.engine_via(&proxy.endpoint).await;
    let event = sample_event("disk-full-alarm.json", &instance)?;
    let r = first_responder::handle(serde_json::from_str(&event)?, &engine, &w.config, Mode::Run)
        .await?;
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
    let engine = harness::fast_engine(&via);
    w.config.notify_reserve = Duration::from_secs(2);
    let event = harness::sample_event("high-cpu-alarm.json", w.fleet.instance())?;
    let started = std::time::Instant::now();
    // A Lambda invocation with 6 s left; the hung call alone would take the
    // SDK's 20 s operation timeout.
    let until = started + Duration::from_secs(6);
    let r = first_responder::respond::handle_until(
        serde_json::from_str(&event)?,
        &engine,
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
