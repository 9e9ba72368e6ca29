//! Proof under faults: 20% of AWS calls fail transiently (throttling, 503,
//! dropped connections) through a proxy on 127.0.0.1 in front of moto. Each
//! occurrence is redelivered while it asks for a retry, as Lambda would, and
//! once more after that. Every incident must end completed (its actions
//! done, skipped or failed with a reason) and nothing may be done twice.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use first_responder::{Config, Mode, handle};
use harness::proxy::{FaultProxy, Faults};
use harness::{
    FleetSpec, Moto, desired_capacity, drain, expire_leases, sample_event, seed, snapshots,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_of_aws_calls_failing() -> Result<()> {
    let moto = Moto::start()?;
    let direct = moto.sdk().await;
    let fleet = seed(
        &direct,
        FleetSpec {
            desired: 1,
            max: 20,
            ..FleetSpec::default()
        },
    )
    .await?;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults {
            fail_ratio: 0.2,
            latency: Duration::ZERO,
            // FAULT_SEED replays another sequence of faults (docs/testing.md's
            // figures come from several).
            seed: std::env::var("FAULT_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(2026),
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let engine = harness::fast_engine(&via).with_state(&via, &fleet.state_table);
    let mut config = Config {
        notify_topic_arn: Some(fleet.topic_arn.clone()),
        state_table: Some(fleet.state_table.clone()),
        scale_out_cooldown: Duration::ZERO,
        flap_max: 1000,
        max_mutations_per_hour: 10_000,
        ..Config::default()
    };
    // Eight scale-outs of one instance: a chronic problem, which this test
    // of failing calls is not about.
    config.playbooks.chronic_after = harness::never_chronic();

    let occurrences = 8;
    let mut deliveries = 0;
    let mut reported_snapshots: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut scale_outs = 0;
    // Actions whose outcome a delivery could not record: not repeated, reported failed.
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let mut notified = Vec::new();
    for n in 0..occurrences {
        let text = sample_event("high-cpu-alarm.json", fleet.instance())?.replace(
            "2026-11-25T02:04:12.152+0000",
            &format!("2026-11-25T03:{n:02}:00.000+0000"),
        );
        let event: serde_json::Value = serde_json::from_str(&text)?;
        let mut last = None;
        for _ in 0..8 {
            deliveries += 1;
            let r = handle(event.clone(), &engine, &config, Mode::Run).await?;
            let retry = r.transient_error().is_some();
            // An earlier delivery's lease stands when its release was one
            // of the failed calls: Lambda's later retry finds it run out.
            let busy = r.incidents.iter().any(|i| i.delivery == "busy");
            last = Some(r);
            if !retry {
                break;
            }
            if busy {
                expire_leases(&direct, &fleet.state_table).await?;
            }
        }
        let report = last.context("no delivery")?;
        assert!(
            report.transient_error().is_none(),
            "still asking for a retry after 8 deliveries: {report:#?}"
        );
        let inc = &report.incidents[0];
        for a in &inc.actions {
            let s = a.status.as_str();
            assert!(
                s == "done" || ((s == "skipped" || s == "failed") && !a.reason.is_empty()),
                "{a:?}"
            );
            if a.action.as_str() == "snapshot" && s == "done" {
                reported_snapshots
                    .entry(inc.id.clone())
                    .or_default()
                    .extend(a.ids.clone());
            }
            if a.action.as_str() == "scale_out" && s == "done" {
                scale_outs += 1;
            }
            if a.action.as_str() == "notify" && s == "done" {
                notified.push(inc.id.clone());
            }
            if s == "failed" && a.reason.contains("check it by hand") {
                *unknown.entry(a.action.as_str().to_owned()).or_default() += 1;
            }
        }
        // Redelivered once more after it settled: nothing happens again.
        deliveries += 1;
        let again = handle(event.clone(), &engine, &config, Mode::Run).await?;
        assert!(again.incidents[0].actions.iter().all(|a| {
            a.status.as_str() != "done"
                || a.detail
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("in an earlier delivery")
        }));
    }

    // The account, read directly (not through the proxy): at most one
    // snapshot per volume per incident, one notification per incident, and
    // capacity moved once per scale-out.
    let mut duplicated = 0;
    let mut per_volume: BTreeMap<(String, String), usize> = BTreeMap::new();
    let account = snapshots(&direct).await?;
    for s in &account {
        *per_volume
            .entry((
                s.tags["first-responder:incident-id"].clone(),
                s.volume.clone(),
            ))
            .or_default() += 1;
    }
    duplicated += per_volume
        .values()
        .map(|c| c.saturating_sub(1))
        .sum::<usize>();
    for ids in reported_snapshots.values() {
        for id in ids {
            assert!(
                account.iter().any(|s| &s.id == id),
                "reported snapshot {id} is not in the account"
            );
        }
    }
    let unknown_snapshots = unknown.get("snapshot").copied().unwrap_or(0);
    let reported_count: usize = reported_snapshots.values().map(Vec::len).sum();
    assert!(
        account.len() <= reported_count + unknown_snapshots,
        "snapshots nobody reported"
    );
    let desired = desired_capacity(&direct, &fleet.group).await?;
    let moved = desired - 1;
    let unknown_scale = i32::try_from(unknown.get("scale_out").copied().unwrap_or(0))?;
    assert!(
        moved >= scale_outs && moved <= scale_outs + unknown_scale,
        "capacity moved {moved} for {scale_outs} scale-outs"
    );
    let mut per_incident: BTreeMap<String, usize> = BTreeMap::new();
    for m in drain(&direct, &fleet.inbox_queue_url).await? {
        *per_incident
            .entry(
                m.document()?["incident_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    duplicated += per_incident
        .values()
        .map(|c| c.saturating_sub(1))
        .sum::<usize>();
    for id in &notified {
        assert_eq!(per_incident.get(id), Some(&1), "{id} notified once");
    }
    assert_eq!(duplicated, 0);
    let st = &proxy.stats;
    let requests = st.requests.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "faults: {occurrences} occurrences, {deliveries} deliveries, {requests} AWS requests, {} faults injected \
         ({} throttled, {} 503, {} dropped), {scale_outs} scale-outs, {} outcomes unknown, actions duplicated: {duplicated}",
        st.injected(),
        st.throttled.load(std::sync::atomic::Ordering::Relaxed),
        st.unavailable.load(std::sync::atomic::Ordering::Relaxed),
        st.dropped.load(std::sync::atomic::Ordering::Relaxed),
        unknown.values().sum::<usize>(),
    );
    assert!(st.injected() > requests / 10, "faults were injected");
    Ok(())
}

/// CreateSnapshot takes no client token: when EC2 acts but its answer is
/// lost, a blind retry would take second snapshots. The executor does not
/// let the SDK retry it, and looks for the snapshot by its tags first.
#[tokio::test]
async fn a_lost_create_snapshot_answer_takes_no_second_snapshot() -> Result<()> {
    use harness::proxy::{Fault, Rule};
    static RULES: [Rule; 1] = [Rule {
        action: "CreateSnapshots",
        fault: Fault::LoseResponse,
        times: 1,
    }];
    let moto = Moto::start()?;
    let direct = moto.sdk().await;
    let fleet = seed(&direct, FleetSpec::default()).await?;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults {
            rules: &RULES,
            ..Faults::default()
        },
    )
    .await?;
    let via = harness::sdk_config(&proxy.endpoint).await;
    let engine = harness::fast_engine(&via);
    let config = Config {
        notify_topic_arn: Some(fleet.topic_arn.clone()),
        ..Config::default()
    };
    let event = sample_event("high-cpu-alarm.json", fleet.instance())?;
    let r = handle(serde_json::from_str(&event)?, &engine, &config, Mode::Run).await?;
    let snaps: Vec<_> = r.incidents[0]
        .actions
        .iter()
        .filter(|a| a.action.as_str() == "snapshot")
        .collect();
    // One CreateSnapshots for both volumes: one action, both ids.
    assert_eq!(snaps.len(), 1);
    for a in &snaps {
        assert_eq!(a.status.as_str(), "done", "{a:?}");
        assert_eq!(a.ids.len(), 2, "{a:?}");
        assert!(
            a.detail.as_deref().unwrap_or_default().contains(
                "the answer to CreateSnapshots was lost, the snapshots found by their tags"
            ),
            "{a:?}"
        );
    }
    let rule_hits = proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert_eq!(rule_hits, vec![1], "the answer was lost");
    assert_eq!(
        snapshots(&direct).await?.len(),
        2,
        "one per volume, not four"
    );
    Ok(())
}
