//! The high_cpu playbook end to end: the real SDK over HTTP against moto,
//! results read back from the emulated account.

use anyhow::Result;
use first_responder::plan::HIGH_CPU_DIAGNOSTICS;
use first_responder::{Config, Engine, Mode, Report, handle};
use harness::{
    FleetSpec, World, desired_capacity, drain, sample_event, snapshots, ssm_commands, status_of,
};

async fn world(spec: FleetSpec) -> Result<World> {
    World::start(spec).await
}

fn statuses(r: &Report) -> Vec<(String, String, String)> {
    r.incidents[0]
        .actions
        .iter()
        .map(|a| {
            (
                a.action.as_str().to_owned(),
                a.target.clone(),
                a.status.as_str().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn high_cpu_alarm_snapshots_diagnoses_scales_out_and_notifies() -> Result<()> {
    let w = world(FleetSpec {
        desired: 1,
        max: 3,
        ..FleetSpec::default()
    })
    .await?;
    let instance = w.fleet.instance().to_owned();
    let report = w.run("high-cpu-alarm.json", &instance, Mode::Run).await?;
    let inc = &report.incidents[0];
    assert!(!report.any_failed(), "{report:#?}");
    assert_eq!(inc.kind.as_str(), "high_cpu");

    // Evidence: one snapshot per attached volume (root + data), tagged at creation.
    let snaps = snapshots(&w.sdk).await?;
    assert_eq!(snaps.len(), 2, "{snaps:#?}");
    let mut volumes: Vec<&str> = snaps.iter().map(|s| s.volume.as_str()).collect();
    volumes.sort();
    assert!(volumes.contains(&w.fleet.data_volume.as_str()));
    for s in &snaps {
        assert_eq!(s.tags["first-responder:incident-id"], inc.id);
        assert_eq!(s.tags["first-responder:alarm-name"], "web-high-cpu");
        assert_eq!(s.tags["first-responder:instance-id"], instance);
        assert_eq!(s.tags["created-by"], "first-responder");
        assert!(
            s.description.contains(&inc.id) && s.description.contains("web-high-cpu"),
            "{}",
            s.description
        );
    }
    let reported: Vec<&String> = inc
        .actions
        .iter()
        .filter(|a| a.action.as_str() == "snapshot")
        .flat_map(|a| &a.ids)
        .collect();
    for s in &snaps {
        assert!(
            reported.contains(&&s.id),
            "snapshot {} not in the report",
            s.id
        );
    }

    // Diagnostics: exactly the fixed commands, on that instance, through AWS-RunShellScript.
    let cmds = ssm_commands(&w.sdk).await?;
    assert_eq!(cmds.len(), 1, "{cmds:#?}");
    assert_eq!(cmds[0].document, "AWS-RunShellScript");
    // moto gap: with no `Targets`, moto adds every instance of the account to
    // the command it records. The request itself names exactly one instance
    // (asserted on the request in shared/src/aws.rs's SDK-mock tests).
    assert!(cmds[0].instances.contains(&instance), "{cmds:#?}");
    assert_eq!(
        cmds[0].commands,
        HIGH_CPU_DIAGNOSTICS
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    );
    assert!(cmds[0].comment.contains(&inc.id));

    // Scale out: desired 1 -> 2.
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);

    // The notification as the SQS subscriber received it.
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1);
    let m = &inbox[0];
    let subject = m.subject.as_deref().unwrap_or_default();
    assert_eq!(
        subject,
        format!("[ALARM] High CPU 95.3% on {instance} (web-asg)")
    );
    assert!(subject.len() <= 99 && subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    assert_eq!(m.attribute("severity"), Some("critical"));
    assert_eq!(m.attribute("kind"), Some("high_cpu"));
    let doc = m.document()?;
    assert_eq!(doc["incident_id"], inc.id.as_str());
    assert_eq!(doc["kind"], "high_cpu");
    assert_eq!(doc["group"], "web-asg");
    let acts = doc["actions"].as_array().unwrap();
    assert_eq!(acts.len(), 3, "{acts:#?}");
    assert!(acts.iter().all(|a| a["status"] == "done"), "{acts:#?}");
    assert_eq!(doc["next_steps"].as_array().unwrap().len(), 5);
    let text = doc["text"].as_str().unwrap();
    for s in &snaps {
        assert!(
            text.contains(&s.id),
            "snapshot {} missing from the body:\n{text}",
            s.id
        );
    }
    for needle in [
        "[done] scale_out web-asg: desired capacity of web-asg 1 -> 2 (MaxSize 3)",
        "DIAGNOSTICS FROM",
        "(the command printed nothing)",
        "NEXT STEPS (high_cpu playbook)",
        "Value: 95.3 (threshold 80)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // The pager's filter policy passes critical notifications.
    assert_eq!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.len(), 1);
    drop(w.moto);
    Ok(())
}

#[tokio::test]
async fn at_max_size_scale_out_is_skipped_and_capacity_unchanged() -> Result<()> {
    let w = world(FleetSpec {
        desired: 2,
        max: 2,
        ..FleetSpec::default()
    })
    .await?;
    let instance = w.fleet.instance().to_owned();
    let report = w.run("high-cpu-alarm.json", &instance, Mode::Run).await?;
    let scale = report.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .unwrap();
    assert_eq!(scale.status.as_str(), "skipped");
    assert_eq!(scale.reason, "group web-asg is already at its MaxSize (2)");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    // Everything else still happened, and the body says why there was no scaling.
    assert_eq!(snapshots(&w.sdk).await?.len(), 2);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].document()?["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("[skipped] scale_out web-asg: group web-asg is already at its MaxSize (2)"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn moderate_cpu_collects_evidence_but_does_not_scale_or_page() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let report = w
        .run("high-cpu-alarm-moderate.json", &instance, Mode::Run)
        .await?;
    assert_eq!(
        statuses(&report)
            .iter()
            .map(|(a, _, s)| format!("{a}:{s}"))
            .collect::<Vec<_>>(),
        [
            "snapshot:done",
            "collect_diagnostics:done",
            "scale_out:skipped",
            "notify:done"
        ]
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].attribute("severity"), Some("warning"));
    // The pager subscription filters on severity = critical: nothing for it.
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn instance_outside_a_group_is_not_scaled() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let standalone = w.fleet.standalone.clone();
    let report = w.run("high-cpu-alarm.json", &standalone, Mode::Run).await?;
    let scale = report.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .unwrap();
    assert_eq!(scale.status.as_str(), "skipped");
    assert_eq!(
        scale.reason,
        format!("{standalone} is not in an Auto Scaling group")
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let snaps = snapshots(&w.sdk).await?;
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].tags["first-responder:instance-id"], standalone);
    Ok(())
}

#[tokio::test]
async fn recovery_remediates_nothing_and_sends_a_short_notice() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let report = w.run("high-cpu-ok.json", &instance, Mode::Run).await?;
    assert_eq!(report.incidents[0].transition, "resolved");
    assert_eq!(
        statuses(&report)
            .iter()
            .map(|(a, _, s)| format!("{a}:{s}"))
            .collect::<Vec<_>>(),
        ["notify:done"]
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert!(ssm_commands(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(
        inbox[0].subject.as_deref(),
        Some(format!("[OK] Resolved: web-high-cpu on {instance}").as_str())
    );
    assert_eq!(inbox[0].attribute("severity"), Some("info"));
    Ok(())
}

#[tokio::test]
async fn plan_mode_reads_but_changes_and_sends_nothing() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let report = w.run("high-cpu-alarm.json", &instance, Mode::Plan).await?;
    assert_eq!(
        statuses(&report)
            .iter()
            .map(|(a, _, s)| format!("{a}:{s}"))
            .collect::<Vec<_>>(),
        [
            "snapshot:planned",
            "collect_diagnostics:planned",
            "scale_out:planned",
            "notify:planned"
        ]
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert!(ssm_commands(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn dry_run_diagnoses_and_notifies_but_changes_nothing() -> Result<()> {
    let mut w = world(FleetSpec::default()).await?;
    w.config.dry_run = true;
    let instance = w.fleet.instance().to_owned();
    let report = w.run("high-cpu-alarm.json", &instance, Mode::Run).await?;
    assert_eq!(
        statuses(&report)
            .iter()
            .map(|(a, _, s)| format!("{a}:{s}"))
            .collect::<Vec<_>>(),
        [
            "snapshot:skipped",
            "collect_diagnostics:done",
            "scale_out:skipped",
            "notify:done"
        ]
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(
        inbox[0]
            .subject
            .as_deref()
            .unwrap_or_default()
            .starts_with("[DRY RUN] [ALARM] High CPU")
    );
    Ok(())
}

#[tokio::test]
async fn unreachable_aws_fails_actions_with_reasons_not_the_incident() -> Result<()> {
    // A port with nothing listening: every call fails fast with a connection error.
    let dead = format!("http://127.0.0.1:{}", harness::free_port()?);
    let sdk = harness::sdk_config(&dead).await;
    let engine = Engine::new(&sdk);
    let config = Config {
        notify_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
        ..Config::default()
    };
    let event = serde_json::from_str(&sample_event("high-cpu-alarm.json", "i-0123456789abcdef0")?)?;
    let report = handle(event, &engine, &config, Mode::Run).await?;
    let s = statuses(&report);
    assert_eq!(
        s.iter()
            .map(|(a, _, st)| format!("{a}:{st}"))
            .collect::<Vec<_>>(),
        [
            "snapshot:failed",
            "collect_diagnostics:failed",
            "scale_out:failed",
            "notify:failed"
        ]
    );
    let snap = &report.incidents[0].actions[0];
    assert!(
        snap.reason.contains("could not list the volumes")
            && snap.reason.contains("DescribeVolumes"),
        "{}",
        snap.reason
    );
    Ok(())
}

/// Evidence covers every attached volume of an opted-in instance, the root
/// volume included though it carries no opt-in tag of its own (launch
/// templates rarely tag it, and it holds the logs): one CreateSnapshots.
#[tokio::test]
async fn evidence_covers_every_volume_of_an_opted_in_instance() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let ec2 = aws_sdk_ec2::Client::new(&w.sdk);
    let vols = ec2
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("attachment.instance-id")
                .values(&instance)
                .build(),
        )
        .send()
        .await?;
    let root: Vec<String> = vols
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id())
        .filter(|v| *v != w.fleet.data_volume)
        .map(ToOwned::to_owned)
        .collect();
    assert_eq!(root.len(), 1);
    ec2.delete_tags()
        .resources(&root[0])
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("first-responder")
                .build(),
        )
        .send()
        .await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let snap = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "snapshot")
        .expect("a snapshot action");
    assert_eq!(snap.status.as_str(), "done", "{snap:?}");
    assert_eq!(snap.ids.len(), 2, "{snap:?}");
    let snaps = snapshots(&w.sdk).await?;
    let mut taken: Vec<&str> = snaps.iter().map(|s| s.volume.as_str()).collect();
    taken.sort_unstable();
    let mut want = vec![root[0].as_str(), w.fleet.data_volume.as_str()];
    want.sort_unstable();
    assert_eq!(taken, want, "the untagged root volume too");
    Ok(())
}

/// A fast incident gets one message; one whose diagnostics run past the
/// first page's budget gets a short first page when the budget is spent,
/// then the report. SSM's own time comes from the proxy (moto answers a
/// command at once): the diagnostics stay `InProgress` for 3 s.
#[tokio::test]
async fn a_first_page_goes_out_when_the_work_outlasts_its_budget() -> Result<()> {
    use harness::proxy::{FaultProxy, Faults};
    use std::time::{Duration, Instant};
    let mut w = world(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let event = sample_event("high-cpu-alarm.json", &instance)?;

    // Fast (moto answers the diagnostics at once): the report alone.
    let r = w.handle(&event).await?;
    assert!(!r.any_failed(), "{r:#?}");
    let got = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].is_first_page());

    // The diagnostics typically take 2 s: with a 2 s budget the plan fits
    // in it, so nothing goes at once; SSM taking 3 s makes the work late,
    // and the page goes when the budget is spent.
    static DELAYS: &[(&str, Duration)] = &[("diagnostics", Duration::from_secs(3))];
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            ssm_delays: DELAYS,
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let mut engine = harness::fast_engine(&via);
    engine.aws.cloudwatch = w.engine.aws.cloudwatch.clone();
    w.config.first_page_budget = Some(Duration::from_secs(2));
    let late = event.replace("2026-11-25T02:04:12.152", "2026-11-25T03:04:12.152");
    let started = Instant::now();
    let r = handle(serde_json::from_str(&late)?, &engine, &w.config, Mode::Run).await?;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let inc = &r.incidents[0];
    let diag = inc
        .actions
        .iter()
        .find(|a| a.action.as_str() == "collect_diagnostics")
        .map(|a| a.status.as_str());
    assert_eq!(diag, Some("done"), "{inc:#?}");
    assert!(
        inc.notes
            .iter()
            .any(|n| n.starts_with("a short first page went out")
                && n.contains("still going after the 2 s budget")),
        "{:?}",
        inc.notes
    );
    let got = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(got.len(), 2, "{got:?}");
    let first = got
        .iter()
        .find(|m| m.is_first_page())
        .expect("a first page");
    let page = first.document()?;
    let under_way: Vec<&str> = page["under_way"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(under_way.contains(&"collect_diagnostics"), "{page}");
    assert!(
        page["text"]
            .as_str()
            .is_some_and(|t| t.contains("WHAT FIRED") && t.contains("typically takes about 2 s")),
        "{page}"
    );
    let report = harness::the_report(&got)?.document()?;
    assert_eq!(report["first_page"], false);
    drop(proxy);
    Ok(())
}

/// `Launch` suspended: a larger desired capacity would launch nothing, so
/// the group is left as it is, and the report says why.
#[tokio::test]
async fn a_group_with_launch_suspended_is_not_scaled() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    aws_sdk_autoscaling::Client::new(&w.sdk)
        .suspend_processes()
        .auto_scaling_group_name(&w.fleet.group)
        .scaling_processes("Launch")
        .send()
        .await?;
    let instance = w.fleet.instance().to_owned();
    let r = w.run("high-cpu-alarm.json", &instance, Mode::Run).await?;
    let (st, why) = harness::status_of(&r, "scale_out");
    assert_eq!(st, "skipped", "{r:#?}");
    assert!(why.contains("has its Launch process suspended"), "{why}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    Ok(())
}

/// The group's own target tracking grows it between the plan's read and
/// the write: SetDesiredCapacity takes a size, so the scale-out reads the
/// group again right before it and never sets it lower.
#[tokio::test]
async fn a_group_grown_since_the_plan_read_it_is_never_scaled_in() -> Result<()> {
    use anyhow::Context;
    let w = world(FleetSpec {
        desired: 1,
        max: 5,
        ..FleetSpec::default()
    })
    .await?;
    let instance = w.fleet.instance().to_owned();
    let event = serde_json::from_str(&sample_event("high-cpu-alarm.json", &instance)?)?;
    let incident = first_responder::respond::incidents_each(event, &w.config.routes)?
        .incidents
        .into_iter()
        .next()
        .context("one incident")?;
    let lookup = first_responder::observe::lookup(&w.engine.aws, &incident, &w.config);
    let observed = first_responder::observe::observe_fleet(
        &w.engine.aws,
        &incident,
        &w.config,
        lookup.as_ref(),
    )
    .await;
    let plan = first_responder::plan::plan(&incident, &observed, &w.config);
    aws_sdk_autoscaling::Client::new(&w.sdk)
        .set_desired_capacity()
        .auto_scaling_group_name(&w.fleet.group)
        .desired_capacity(3)
        .send()
        .await?;
    let r = w.engine.execute(&plan, &w.config).await;
    let scale = r
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .context("scale_out")?;
    assert_eq!(scale.status.as_str(), "skipped", "{scale:?}");
    let why = scale.detail.clone().unwrap_or_else(|| scale.reason.clone());
    assert!(
        why.contains("is already 3 (it was 1 when the plan read it): not set to 2, never lowered"),
        "{scale:?}"
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 3);
    Ok(())
}

/// A maintenance pause on the group (`first-responder:paused-until`, an
/// Auto Scaling tag): the evidence is taken, nothing is scaled, the page
/// says so first. Once the time has passed, the next occurrence scales.
#[tokio::test]
async fn a_paused_until_tag_pauses_the_change_and_keeps_the_snapshot() -> Result<()> {
    use aws_sdk_autoscaling::types::Tag;
    let w = World::start(FleetSpec::default()).await?;
    let pause = |until: &str| {
        Tag::builder()
            .resource_id(&w.fleet.group)
            .resource_type("auto-scaling-group")
            .key(first_responder::plan::pause::PAUSED_UNTIL_TAG)
            .value(until)
            .propagate_at_launch(false)
            .build()
    };
    let asg = aws_sdk_autoscaling::Client::new(&w.sdk);
    // The sample alarm fires at 2026-11-25T02:04:12.
    asg.create_or_update_tags()
        .tags(pause("2026-11-25T04:00:00Z"))
        .send()
        .await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    assert_eq!(status_of(&r, "snapshot").0, "done", "{r:#?}");
    assert_eq!(status_of(&r, "collect_diagnostics").0, "done", "{r:#?}");
    let (st, why) = status_of(&r, "scale_out");
    assert_eq!(st, "skipped", "{r:#?}");
    assert!(
        why.contains("paused: tag first-responder:paused-until on its Auto Scaling group, until 2026-11-25T04:00:00Z"),
        "{why}"
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    assert_eq!(snapshots(&w.sdk).await?.len(), 2);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(
        text.contains("paused: tag first-responder:paused-until"),
        "{text}"
    );

    // Three hours later the pause has expired: scaled.
    let later = sample_event("high-cpu-alarm.json", w.fleet.instance())?
        .replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let r = w.handle_text(&later, Mode::Run).await?;
    assert!(!r.any_failed(), "{r:#?}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    Ok(())
}
