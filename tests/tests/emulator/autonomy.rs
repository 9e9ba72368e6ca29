//! Earned autonomy against the emulated account: one alarm observed in one
//! scope and acted on in another; demotion after still-firing checks and a
//! person's restore; a chronic problem that changes nothing. The track
//! record is read back from the state table.

use anyhow::{Context, Result};
use aws_sdk_autoscaling::types::Tag;
use first_responder::Mode;
use first_responder::actions::ActionName;
use first_responder::playbook::{DEFAULT_TEXT, Playbooks};
use first_responder::state::track::Run;
use harness::{
    APPROVAL_KEY, FleetSpec, World, desired_capacity, drain, sample_event, status_of, volume_size,
};

/// The sample high-CPU alarm, `hours` later than the sample.
fn cpu_at(w: &World, hours: u32) -> Result<String> {
    Ok(
        sample_event("high-cpu-alarm.json", w.fleet.instance())?.replace(
            "2026-11-25T02:04:12.152",
            &format!("2026-11-25T{:02}:04:12.152", 2 + hours),
        ),
    )
}

async fn tag_group(w: &World, env: &str) -> Result<()> {
    aws_sdk_autoscaling::Client::new(&w.sdk)
        .create_or_update_tags()
        .tags(
            Tag::builder()
                .resource_id(&w.fleet.group)
                .resource_type("auto-scaling-group")
                .key("Environment")
                .value(env)
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

fn with_scopes(extra: &str) -> Result<Playbooks> {
    Ok(Playbooks::parse(
        "test",
        &format!("{DEFAULT_TEXT}\n{extra}"),
    )?)
}

/// The state table through the test's own client (not the responder's:
/// the IAM proof counts only the product's calls).
fn table(w: &World) -> first_responder::state::StateStore {
    first_responder::state::StateStore::new(
        aws_sdk_dynamodb::Client::new(&w.sdk),
        &w.fleet.state_table,
    )
}

async fn runs_in_table(w: &World) -> Result<Vec<first_responder::autonomy::trust::RunRecord>> {
    let st = table(w);
    let items = st.scan_runs().await.map_err(anyhow::Error::msg)?;
    Ok(items
        .iter()
        .filter_map(first_responder::autonomy::run::record_of)
        .collect())
}

/// The same high-CPU alarm: in prod (group tagged Environment=production)
/// scale_out is observed: evidence and diagnostics taken, the page says what
/// it would have done, nothing scaled, no budget spent; in dev it scales.
#[tokio::test]
async fn one_alarm_is_observed_in_prod_and_scaled_in_dev() -> Result<()> {
    let mut w = World::start_with_state(FleetSpec::default()).await?;
    w.config.playbooks = with_scopes(
        "[scopes.prod]\ntags = { Environment = \"production\" }\n[scopes.prod.modes]\nscale_out = \"observe\"\n\n[scopes.dev]\ntags = { Environment = \"dev\" }\ngroups = [\"web-*\"]\n[scopes.dev.modes]\nscale_out = \"auto\"\n",
    )?;
    // One change an hour in the account: an observed change must not take it.
    w.config.budget_per_account_per_hour = Some(1);
    tag_group(&w, "production").await?;
    let r = w.handle(&cpu_at(&w, 0)?).await?;
    assert_eq!(status_of(&r, "snapshot").0, "done", "{r:#?}");
    assert_eq!(status_of(&r, "collect_diagnostics").0, "done", "{r:#?}");
    let (st, why) = status_of(&r, "scale_out");
    assert_eq!(st, "observed", "{r:#?}");
    assert_eq!(
        why,
        format!(
            "would add one instance to {} (desired 1 -> 2); observe mode in prod",
            w.fleet.group
        )
    );
    let scale = &r.incidents[0].actions[2];
    assert_eq!(
        (scale.mode.as_deref(), scale.scope.as_deref()),
        (Some("observe"), Some("prod"))
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(text.contains("[observed] scale_out"), "{text}");
    assert!(text.contains("would add one instance"), "{text}");
    let runs = runs_in_table(&w).await?;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0].scope.as_str(), runs[0].status.as_str()),
        ("prod", "observed")
    );
    // The check after it: the alarm recovered by itself, so the change it
    // would have made was not needed; the observed run records that.
    w.cpu_alarm("OK").await?;
    let v = w.check(&r.incidents[0].id, chrono::Utc::now()).await?;
    assert_eq!(v.verdict.as_str(), "recovered", "{v:?}");
    let notice = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(
        notice[0]
            .text()?
            .contains("without any change by first-responder"),
        "{:?}",
        notice[0].text()
    );
    let runs = runs_in_table(&w).await?;
    assert_eq!(runs[0].verdict.as_deref(), Some("recovered"));
    // The alarm's transition is kept for `backtest --recorded`, with the
    // value the planner reads.
    let (kept, payloads) = table(&w)
        .recorded_history(0)
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(payloads.is_empty(), "{payloads:?}");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["AlarmName"], "web-high-cpu");
    assert!(
        kept[0]["HistoryData"]
            .as_str()
            .is_some_and(|d| d.contains("\"recentDatapoints\":[95.3]")
                && d.contains("\"stateValue\":\"ALARM\"")),
        "{kept:?}"
    );

    // The same alarm an hour later, the group now in dev: scaled, with the
    // budget's one change still there to take.
    tag_group(&w, "dev").await?;
    let r = w.handle(&cpu_at(&w, 1)?).await?;
    let (st, why) = status_of(&r, "scale_out");
    assert_eq!(st, "done", "{why}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    let scale = &r.incidents[0].actions[2];
    assert_eq!(
        (scale.mode.as_deref(), scale.scope.as_deref()),
        (Some("auto"), Some("dev"))
    );
    Ok(())
}

/// Two checks after scale_out say still firing within 7 days: the third
/// incident holds it (demoted, with links, the page says why); a person's
/// restore gives it back.
#[tokio::test]
async fn two_still_firing_checks_demote_and_a_restore_brings_it_back() -> Result<()> {
    let mut w = World::start_with_state(FleetSpec {
        max: 10,
        ..FleetSpec::default()
    })
    .await?;
    w.config.scale_out_cooldown = std::time::Duration::ZERO;
    w.config.flap_max = 100;
    w.config.approval_key = Some(first_responder::approval::Key::new("test", APPROVAL_KEY)?);
    w.config.approval_base_url = Some("https://approve.example.invalid".into());
    let st = table(&w);
    // The alarm, in CloudWatch, still in ALARM whenever it is checked.
    w.cpu_alarm("ALARM").await?;
    for hours in [0, 1] {
        let r = w.handle(&cpu_at(&w, hours)?).await?;
        assert_eq!(status_of(&r, "scale_out").0, "done", "{r:#?}");
        // The check after the fix, as the delayed message runs it.
        let v = w.check(&r.incidents[0].id, chrono::Utc::now()).await?;
        assert_eq!(v.verdict.as_str(), "still_firing", "{v:?}");
    }
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 3);
    let r = w.handle(&cpu_at(&w, 2)?).await?;
    let (status, _) = status_of(&r, "scale_out");
    assert_eq!(status, "awaiting_approval", "{r:#?}");
    let inc = &r.incidents[0];
    let scale = &inc.actions[2];
    assert!(scale.approve_url.is_some(), "{scale:?}");
    assert_eq!(scale.mode.as_deref(), Some("approve"));
    assert!(
        inc.notes.iter().any(|n| n.starts_with(
            "demoted: scale_out acts as approve in scope default: 2 checks said still firing within 7 days"
        )),
        "{:?}",
        inc.notes
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 3);

    // A person restores it: the next occurrence scales again.
    st.restore(
        "default",
        ActionName::ScaleOut,
        "arn:aws:iam::123456789012:user/oncall",
        chrono::Utc::now().timestamp(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let r = w.handle(&cpu_at(&w, 3)?).await?;
    assert_eq!(status_of(&r, "scale_out").0, "done", "{r:#?}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 4);
    Ok(())
}

/// The fourth disk-full on one instance within 7 days: expand_volume fixed
/// it three times already (recorded, with their checks), so nothing is
/// changed, and the page is critical and names the three.
#[tokio::test]
async fn a_fourth_disk_full_in_a_week_is_chronic_and_changes_nothing() -> Result<()> {
    let w = World::start_with_state(FleetSpec::default()).await?;
    let st = table(&w);
    let instance = w.fleet.instance().to_owned();
    // The sample fires at 2026-11-25T02:04:12Z; three expansions in the
    // six days before it.
    let fired = chrono::DateTime::parse_from_rfc3339("2026-11-25T02:04:12Z")?.timestamp();
    let earlier = [
        ("inc-00000000000000a1", 6, "recovered"),
        ("inc-00000000000000a2", 4, "recovered"),
        ("inc-00000000000000a3", 1, "still_firing"),
    ];
    for (id, days, verdict) in earlier {
        let at = fired - days * 86_400;
        let run = Run {
            incident: id,
            action: ActionName::ExpandVolume,
            kind: "disk_full",
            scope: "default",
            mode: "auto",
            status: "done",
            resource: Some(&instance),
            at,
        };
        st.record_run(&run, 400).await.map_err(anyhow::Error::msg)?;
        st.record_verdict(id, ActionName::ExpandVolume, verdict, at + 600, 400)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let data = w.fleet.data_volume.clone();
    let r = w
        .handle_text(&sample_event("disk-full-alarm.json", &instance)?, Mode::Run)
        .await?;
    let inc = &r.incidents[0];
    assert_eq!(
        status_of(&r, "expand_volume").0,
        "awaiting_approval",
        "{inc:#?}"
    );
    assert_eq!(volume_size(&w.sdk, &data).await?, 20, "not grown");
    assert_eq!(inc.severity.as_str(), "critical");
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox.last().context("no page")?.text()?;
    assert!(
        text.contains(&format!(
            "chronic: expand_volume fixed {instance} 3 times in 7 days"
        )),
        "{text}"
    );
    for (id, _, _) in earlier {
        assert!(text.contains(id), "{id} missing: {text}");
    }
    assert!(text.contains("check: still firing"), "{text}");
    assert!(text.contains("the cause is elsewhere"), "{text}");
    Ok(())
}

/// Maintenance pauses changes, not evidence: a CLOSED change calendar (the
/// harness's GetCalendarState stand-in), a `first-responder pause --group`
/// (stored as the command stores it), each keep the snapshot and skip the
/// scale-out with the reason; an expired pause and an OPEN calendar no
/// longer apply. (The tag: `high_cpu::a_paused_until_tag_pauses…`.)
#[tokio::test]
async fn a_closed_calendar_and_a_pause_keep_the_evidence_and_change_nothing() -> Result<()> {
    let mut w = World::start_with_state(FleetSpec {
        max: 10,
        ..FleetSpec::default()
    })
    .await?;
    w.config.scale_out_cooldown = std::time::Duration::ZERO;
    w.config.flap_max = 100;
    w.config.playbooks.chronic_after = harness::never_chronic();
    w.config.change_calendars = vec!["arn:aws:ssm:us-east-1:123456789012:document/freeze".into()];
    w.ssm
        .set_calendar("freeze", "CLOSED", Some("2026-11-26T08:00:00Z"));
    let r = w.handle(&cpu_at(&w, 0)?).await?;
    assert_eq!(status_of(&r, "snapshot").0, "done", "{r:#?}");
    assert_eq!(status_of(&r, "collect_diagnostics").0, "done", "{r:#?}");
    let (st, why) = status_of(&r, "scale_out");
    assert_eq!(st, "skipped");
    assert_eq!(
        why,
        "paused: change calendar arn:aws:ssm:us-east-1:123456789012:document/freeze is CLOSED, until 2026-11-26T08:00:00Z"
    );
    assert!(r.incidents[0].notes[0].starts_with("paused: change calendar"));
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let page = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(page[0].text()?.contains("paused: change calendar"));
    // A calendar that does not exist: not read, so no change either.
    w.config.change_calendars = vec!["missing".into()];
    let r = w.handle(&cpu_at(&w, 1)?).await?;
    let (st, why) = status_of(&r, "scale_out");
    assert_eq!(st, "skipped");
    assert!(why.contains("InvalidDocument"), "{why}");
    // Open again: scaled.
    w.config.change_calendars = vec!["freeze".into()];
    w.ssm.set_calendar("freeze", "OPEN", None);
    let r = w.handle(&cpu_at(&w, 2)?).await?;
    assert_eq!(status_of(&r, "scale_out").0, "done", "{r:#?}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);

    // A pause on the group, until two hours after the next alert.
    let st = table(&w);
    let fired = chrono::DateTime::parse_from_rfc3339("2026-11-25T05:04:12Z")?.timestamp();
    let pause = |id: &str, until: i64| first_responder::observed::Pause {
        id: id.into(),
        on: "group".into(),
        value: w.fleet.group.clone(),
        until,
        reason: "database migration".into(),
        by: "arn:aws:iam::123456789012:user/oncall".into(),
        set_at: fired - 600,
    };
    st.set_pause(&pause("p-00000001", fired + 7200))
        .await
        .map_err(anyhow::Error::msg)?;
    let r = w.handle(&cpu_at(&w, 3)?).await?;
    assert_eq!(status_of(&r, "snapshot").0, "done", "{r:#?}");
    let (status, why) = status_of(&r, "scale_out");
    assert_eq!(status, "skipped");
    assert_eq!(
        why,
        format!(
            "paused: first-responder pause p-00000001 on group {} by arn:aws:iam::123456789012:user/oncall, \"database migration\", until 2026-11-25T07:04:12Z",
            w.fleet.group
        )
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    // Four hours later the pause has expired: scaled.
    let r = w.handle(&cpu_at(&w, 7)?).await?;
    assert_eq!(status_of(&r, "scale_out").0, "done", "{r:#?}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 3);
    // Resumed by hand: gone from the record.
    assert!(
        st.remove_pause("p-00000001")
            .await
            .map_err(anyhow::Error::msg)?
    );
    assert!(
        !st.remove_pause("p-00000001")
            .await
            .map_err(anyhow::Error::msg)?
    );
    Ok(())
}
