//! Idempotency and limits in the state table (DynamoDB in moto): every
//! delivery of one occurrence meets the same records.

use std::time::Duration;

use anyhow::Result;
use first_responder::state::{Claim, StateStore};
use first_responder::{Engine, Mode, Report, handle};
use harness::proxy::{FaultProxy, Faults};
use harness::{FleetSpec, World, desired_capacity, drain, sample_event, snapshots, ssm_commands};

async fn world(spec: FleetSpec) -> Result<World> {
    World::start_with_state(spec).await
}

/// The sample alarm; `n` picks the occurrence (its state-change time).
fn event(w: &World, n: u32) -> Result<serde_json::Value> {
    let text = sample_event("high-cpu-alarm.json", w.fleet.instance())?.replace(
        "2026-11-25T02:04:12.152+0000",
        &format!("2026-11-25T02:{:02}:12.152+0000", 4 + n),
    );
    Ok(serde_json::from_str(&text)?)
}

async fn deliver(w: &World, n: u32) -> Result<Report> {
    Ok(handle(event(w, n)?, &w.engine, &w.config, Mode::Run).await?)
}

async fn account(w: &World) -> Result<(usize, usize, i32, usize)> {
    Ok((
        snapshots(&w.sdk).await?.len(),
        ssm_commands(&w.sdk).await?.len(),
        desired_capacity(&w.sdk, &w.fleet.group).await?,
        drain(&w.sdk, &w.fleet.inbox_queue_url).await?.len(),
    ))
}

fn statuses(r: &Report) -> Vec<String> {
    r.incidents[0]
        .actions
        .iter()
        .map(|a| format!("{}:{}", a.action.as_str(), a.status.as_str()))
        .collect()
}

#[tokio::test]
async fn the_same_event_three_times_in_sequence_acts_once() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let first = deliver(&w, 0).await?;
    assert_eq!(first.incidents[0].delivery, "first");
    assert!(
        statuses(&first).iter().all(|s| s.ends_with(":done")),
        "{:?}",
        statuses(&first)
    );
    for _ in 0..2 {
        let again = deliver(&w, 0).await?;
        assert_eq!(again.incidents[0].delivery, "duplicate");
        assert!(statuses(&again).iter().all(|s| s.ends_with(":skipped")));
        assert!(again.transient_error().is_none());
    }
    // One snapshot set, +1 once, one command, one notification.
    assert_eq!(account(&w).await?, (2, 1, 2, 1));
    // The audit trail: the incident record holds the outcome with its timeline.
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    let item = ddb
        .get_item()
        .table_name(&w.fleet.state_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "incident#{}",
                first.incidents[0].id
            )),
        )
        .send()
        .await?
        .item
        .unwrap_or_default();
    assert_eq!(
        item.get("status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("completed")
    );
    assert!(
        item.contains_key("expires_at"),
        "records expire through the table's TTL"
    );
    let outcome: serde_json::Value = serde_json::from_str(
        item.get("outcome")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .unwrap_or("{}"),
    )?;
    for a in outcome["actions"].as_array().into_iter().flatten() {
        assert!(
            a["started_at"].is_string() && a["duration_ms"].is_u64() && a["status"] == "done",
            "{a}"
        );
    }
    assert!(
        outcome["actions"][0]["ids"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("snap-")
    );
    Ok(())
}

#[tokio::test]
async fn the_same_event_three_times_concurrently_acts_once() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let (a, b, c) = tokio::join!(deliver(&w, 0), deliver(&w, 0), deliver(&w, 0));
    let reports = [a?, b?, c?];
    let deliveries: Vec<&str> = reports.iter().map(|r| r.incidents[0].delivery).collect();
    assert_eq!(
        deliveries.iter().filter(|d| **d == "first").count(),
        1,
        "{deliveries:?}"
    );
    // The others saw it in flight (and ask to be retried) or already done.
    for r in reports
        .iter()
        .filter(|r| r.incidents[0].delivery != "first")
    {
        let d = r.incidents[0].delivery;
        assert!(d == "busy" || d == "duplicate", "{d}");
        assert_eq!(r.transient_error().is_some(), d == "busy");
    }
    // Lambda's retry of a busy delivery finds the incident completed.
    assert_eq!(deliver(&w, 0).await?.incidents[0].delivery, "duplicate");
    assert_eq!(account(&w).await?, (2, 1, 2, 1));
    Ok(())
}

#[tokio::test]
async fn a_crash_half_way_is_resumed_without_repeats() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let incident = first_responder::respond::incidents(event(&w, 0)?, &Default::default())?
        .0
        .remove(0);
    // What a delivery that died after its evidence leaves behind: the
    // snapshots themselves (here one, made without our tags), the incident's
    // lease (run out) and that action's record.
    let ec2 = aws_sdk_ec2::Client::new(&w.sdk);
    let earlier = ec2
        .create_snapshot()
        .volume_id(&w.fleet.data_volume)
        .description("made before the crash")
        .send()
        .await?;
    let earlier = earlier.snapshot_id().unwrap_or_default().to_owned();
    let st = StateStore::new(aws_sdk_dynamodb::Client::new(&w.sdk), &w.fleet.state_table);
    let long_ago = chrono::Utc::now().timestamp() - 3600;
    st.begin_incident(&incident.id, long_ago, Duration::from_secs(150))
        .await
        .map_err(anyhow::Error::msg)?;
    let key = format!("snapshot#{}", w.fleet.instance());
    assert_eq!(
        st.claim_action(&incident.id, &key, long_ago, Duration::from_secs(150), "")
            .await
            .map_err(anyhow::Error::msg)?,
        Claim::Mine
    );
    st.finish_action(
        &incident.id,
        &key,
        first_responder::report::Status::Done,
        false,
        &format!("{earlier} of {}", w.fleet.data_volume),
        std::slice::from_ref(&earlier),
    )
    .await
    .map_err(anyhow::Error::msg)?;

    let r = deliver(&w, 0).await?;
    assert_eq!(r.incidents[0].delivery, "resumed");
    let evidence = r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "snapshot")
        .unwrap();
    assert_eq!(evidence.status.as_str(), "done");
    assert_eq!(evidence.ids, vec![earlier.clone()]);
    assert!(
        evidence
            .detail
            .as_deref()
            .unwrap_or_default()
            .starts_with("in an earlier delivery")
    );
    // The command, the scale-out and the notification happen now; the
    // evidence is not taken twice.
    assert!(snapshots(&w.sdk).await?.is_empty(), "no new snapshot");
    assert_eq!(account(&w).await?, (0, 1, 2, 1));
    assert_eq!(deliver(&w, 0).await?.incidents[0].delivery, "duplicate");
    Ok(())
}

#[tokio::test]
async fn a_second_scale_out_waits_for_the_cooldown() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    deliver(&w, 0).await?;
    let second = deliver(&w, 1).await?; // another occurrence, minutes later
    assert_eq!(second.incidents[0].delivery, "first");
    let scale = second.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "scale_out")
        .unwrap();
    assert_eq!(scale.status.as_str(), "skipped");
    assert!(
        scale
            .reason
            .starts_with("cooldown: scale_out of web-asg was done recently; not again until 20"),
        "{}",
        scale.reason
    );
    // Evidence is still taken for the new occurrence; capacity moved once.
    assert_eq!(account(&w).await?, (4, 2, 2, 2));
    Ok(())
}

#[tokio::test]
async fn a_flapping_alarm_stops_remediating() -> Result<()> {
    let mut w = world(FleetSpec {
        max: 10,
        ..FleetSpec::default()
    })
    .await?;
    w.config.flap_max = 2;
    w.config.scale_out_cooldown = Duration::ZERO;
    for n in 0..2 {
        assert!(
            statuses(&deliver(&w, n).await?)
                .iter()
                .all(|s| s.ends_with(":done"))
        );
    }
    let third = deliver(&w, 2).await?;
    // The evidence is still taken (it is not remediation); the change is not.
    assert_eq!(
        statuses(&third),
        [
            "snapshot:done",
            "collect_diagnostics:done",
            "scale_out:skipped",
            "notify:done"
        ]
    );
    assert!(
        third.incidents[0].actions[2]
            .reason
            .starts_with("flap guard: alarm web-high-cpu already triggered remediation 2 times"),
        "{}",
        third.incidents[0].actions[2].reason
    );
    assert_eq!(account(&w).await?, (6, 3, 3, 3));
    Ok(())
}

/// The breaker counts changes to the fleet across incidents; snapshots are
/// evidence and do not count (an instance with many volumes must not open
/// it for everyone).
#[tokio::test]
async fn the_circuit_breaker_trips_across_incidents() -> Result<()> {
    let mut w = world(FleetSpec {
        max: 10,
        ..FleetSpec::default()
    })
    .await?;
    w.config.max_mutations_per_hour = 1;
    w.config.scale_out_cooldown = Duration::ZERO;
    // The breaker's counter takes concurrent increments, atomic in DynamoDB
    // but not in moto: its requests go upstream one at a time.
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            one_at_a_time: true,
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let poll = w.engine.aws.poll;
    w.engine = Engine::new(&via).with_state(&via, &w.fleet.state_table);
    w.engine.aws.poll = poll;
    // Two snapshots and a scale-out: one change.
    assert!(
        statuses(&deliver(&w, 0).await?)
            .iter()
            .all(|s| s.ends_with(":done"))
    );
    let second = deliver(&w, 1).await?;
    assert_eq!(
        statuses(&second),
        [
            "snapshot:done",
            "collect_diagnostics:done",
            "scale_out:skipped",
            "notify:done"
        ]
    );
    assert!(
        second.incidents[0].actions[2]
            .reason
            .starts_with("circuit breaker open: 1 changes in the last hour"),
        "{}",
        second.incidents[0].actions[2].reason
    );
    assert_eq!(account(&w).await?, (4, 2, 2, 2));
    Ok(())
}

/// The breaker's window slides: three changes just before an hour boundary
/// leave no room for a fourth just after it (clock-hour buckets let twice
/// the limit through there), and room comes back as they age out.
#[tokio::test]
async fn the_circuit_breaker_window_slides_across_the_hour() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let st = StateStore::new(aws_sdk_dynamodb::Client::new(&w.sdk), &w.fleet.state_table);
    let hour = Duration::from_secs(3600);
    let boundary = 1_795_000_000 - 1_795_000_000 % 3600;
    let count = |t: i64| st.count_in_window("breaker", t, hour, 3);
    for t in [boundary - 120, boundary - 90, boundary - 60] {
        assert!(count(t).await.map_err(anyhow::Error::msg)?.is_ok());
    }
    assert_eq!(
        count(boundary - 30).await.map_err(anyhow::Error::msg)?,
        Err(3)
    );
    // 30 s into the next hour: still three in the last hour.
    assert_eq!(
        count(boundary + 30).await.map_err(anyhow::Error::msg)?,
        Err(3)
    );
    assert_eq!(
        count(boundary + 600).await.map_err(anyhow::Error::msg)?,
        Err(3)
    );
    // Forty minutes on, the previous hour's three weigh one (the window
    // assumes they were spread over it): two more fit, then it is full.
    assert_eq!(
        count(boundary + 2400).await.map_err(anyhow::Error::msg)?,
        Ok(1)
    );
    assert_eq!(
        count(boundary + 2410).await.map_err(anyhow::Error::msg)?,
        Ok(2)
    );
    assert_eq!(
        count(boundary + 2420).await.map_err(anyhow::Error::msg)?,
        Err(3)
    );
    Ok(())
}

/// An occurrence's record outlives its alert: Alertmanager re-sends a firing
/// alert with the same startsAt for as long as it fires (days, sometimes),
/// so each redelivery extends the record instead of letting it expire after
/// seven days and the occurrence be acted on again.
#[tokio::test]
async fn a_redelivery_keeps_the_occurrence_on_record() -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let w = world(FleetSpec::default()).await?;
    let r = deliver(&w, 0).await?;
    let id = r.incidents[0].id.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    let key = AttributeValue::S(format!("incident#{id}"));
    let expiry = || async {
        let item = ddb
            .get_item()
            .table_name(&w.fleet.state_table)
            .key("pk", key.clone())
            .send()
            .await?;
        let n = item
            .item()
            .and_then(|i| i.get("expires_at"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or_default();
        anyhow::Ok(n)
    };
    // Six days and a half later, as if: the record is about to expire.
    let soon = chrono::Utc::now().timestamp() + 3600;
    ddb.update_item()
        .table_name(&w.fleet.state_table)
        .key("pk", key.clone())
        .update_expression("SET expires_at = :e")
        .expression_attribute_values(":e", AttributeValue::N(soon.to_string()))
        .send()
        .await?;
    assert_eq!(expiry().await?, soon);
    // Alertmanager sends it again: nothing done, and the record extended.
    assert_eq!(deliver(&w, 0).await?.incidents[0].delivery, "duplicate");
    let week = chrono::Utc::now().timestamp() + 7 * 24 * 3600;
    assert!(
        (expiry().await? - week).abs() < 60,
        "not extended to a week from now"
    );
    assert_eq!(account(&w).await?, (2, 1, 2, 1));
    Ok(())
}

/// Refused work takes nothing: an alarm whose scale-out the cooldown holds
/// off, delivery after delivery, never trips the flap guard (it counted the
/// refused attempts before) nor spends the account's budget; and a change
/// that failed for certain gives its cooldown, budget and flap count back.
#[tokio::test]
async fn refused_or_failed_changes_spend_no_budget_and_trip_no_flap_guard() -> Result<()> {
    use harness::proxy::{Fault, Rule};
    let mut w = world(FleetSpec {
        max: 10,
        ..FleetSpec::default()
    })
    .await?;
    w.config.flap_max = 2;
    w.config.budget_per_account_per_hour = Some(2);
    // Many scale-outs of one instance: the limits, not a chronic problem.
    w.config.playbooks.chronic_after = harness::never_chronic();
    // The first change: scaled, one of two budgeted changes spent.
    assert_eq!(
        harness::status_of(&deliver(&w, 0).await?, "scale_out").0,
        "done"
    );
    // Four more occurrences within the cooldown: each refused by it.
    for n in 1..5 {
        let (status, why) = harness::status_of(&deliver(&w, n).await?, "scale_out");
        assert_eq!(status, "skipped", "{why}");
        assert!(
            why.starts_with("cooldown: scale_out of web-asg"),
            "occurrence {n}: {why}"
        );
    }
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    // With the cooldown gone, the next change is made: the budget still had
    // one left and the flap guard had counted one occurrence, not five.
    w.config.scale_out_cooldown = Duration::ZERO;
    let (status, why) = harness::status_of(&deliver(&w, 5).await?, "scale_out");
    assert_eq!(status, "done", "{why}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 3);

    // A change Auto Scaling refuses (a 400: surely not made) gives back
    // what it took: the budget is full (2 of 2), so had the failed attempt
    // kept its count, nothing could follow it.
    static REFUSE: [Rule; 1] = [Rule {
        action: "SetDesiredCapacity",
        fault: Fault::Ec2Error("ValidationError"),
        times: 1,
    }];
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &REFUSE,
            ..Default::default()
        },
    )
    .await?;
    let through = harness::sdk_config(&proxy.endpoint).await;
    let engine = harness::fast_engine(&through).with_state(&through, &w.fleet.state_table);
    w.config.budget_per_account_per_hour = Some(3);
    w.config.flap_max = 10;
    let failed = handle(event(&w, 6)?, &engine, &w.config, Mode::Run).await?;
    let (status, why) = harness::status_of(&failed, "scale_out");
    assert_eq!(status, "failed", "{why}");
    let (status, why) = harness::status_of(&deliver(&w, 7).await?, "scale_out");
    assert_eq!(status, "done", "the failed attempt spent nothing: {why}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 4);
    let (status, why) = harness::status_of(&deliver(&w, 8).await?, "scale_out");
    assert_eq!(status, "skipped", "{why}");
    assert!(why.contains("is spent"), "{why}");
    Ok(())
}

/// A cooldown is given back only by the incident that holds it: another
/// incident's release (a failed attempt of its own) leaves it in force. And
/// one taken under the release before's key (the group's name alone) still
/// holds, for one release.
#[tokio::test]
async fn a_cooldown_is_released_only_by_its_owner() -> Result<()> {
    let w = world(FleetSpec::default()).await?;
    let st = StateStore::new(aws_sdk_dynamodb::Client::new(&w.sdk), &w.fleet.state_table);
    let (now, ten) = (chrono::Utc::now().timestamp(), Duration::from_secs(600));
    let key = "123456789012/us-east-1#web-asg";
    let take = |owner: &'static str, key: &'static str| {
        let st = &st;
        async move {
            st.take_cooldown("scale_out", key, "web-asg", now, ten, owner)
                .await
                .map_err(anyhow::Error::msg)
        }
    };
    let release = |owner: &'static str| {
        let st = &st;
        async move {
            st.release_cooldown("scale_out", key, owner)
                .await
                .map_err(anyhow::Error::msg)
        }
    };
    assert_eq!(take("inc-a", key).await?, Ok(()));
    release("inc-b").await?;
    assert!(
        take("inc-c", key).await?.is_err(),
        "inc-b's release left inc-a's cooldown in force"
    );
    release("inc-a").await?;
    assert_eq!(take("inc-c", key).await?, Ok(()));
    release("inc-c").await?;
    // The release before wrote `cooldown#scale_out#web-asg`.
    assert_eq!(take("inc-old", "web-asg").await?, Ok(()));
    assert!(
        take("inc-new", key).await?.is_err(),
        "the old key's cooldown holds"
    );
    Ok(())
}

/// The failure injected between the take and the claim: a first delivery
/// takes the budgets beside its claim, and the claim's write fails. What
/// the limits took is given back, so the retry of the same occurrence
/// finds the budget (one change an hour) whole and acts.
#[tokio::test]
async fn a_claim_that_fails_after_the_take_gives_the_budgets_back() -> Result<()> {
    use harness::proxy::{Fault, Rule};
    let mut w = world(FleetSpec {
        max: 10,
        ..FleetSpec::default()
    })
    .await?;
    w.config.budget_per_account_per_hour = Some(1);
    // scale_out's claim: a PutItem whose key ends in its action and group.
    static FAIL_CLAIM: [Rule; 1] = [Rule {
        action: "PutItem #scale_out#web-asg",
        fault: Fault::Ec2Error("ValidationException"),
        times: 1,
    }];
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &FAIL_CLAIM,
            ..Default::default()
        },
    )
    .await?;
    let through = harness::sdk_config(&proxy.endpoint).await;
    let engine = harness::fast_engine(&through).with_state(&through, &w.fleet.state_table);
    let first = handle(event(&w, 0)?, &engine, &w.config, Mode::Run).await?;
    assert_ne!(
        harness::status_of(&first, "scale_out").0,
        "done",
        "{first:#?}"
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let hits = proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert_eq!(hits, [1], "the claim's write failed once");
    // The retry of the same occurrence: the budget is whole, so it acts.
    let retry = handle(event(&w, 0)?, &engine, &w.config, Mode::Run).await?;
    let (status, why) = harness::status_of(&retry, "scale_out");
    assert_eq!(status, "done", "{why}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    // And the budget is then spent: the next occurrence is refused by it.
    w.config.scale_out_cooldown = Duration::ZERO;
    let (status, why) = harness::status_of(&deliver(&w, 1).await?, "scale_out");
    assert_eq!(status, "skipped", "{why}");
    assert!(why.contains("is spent"), "{why}");
    Ok(())
}
