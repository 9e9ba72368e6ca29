//! The predictive check against the emulated account: disk series seeded
//! in CloudWatch (through the bridge) for opted-in instances; the scheduled
//! check raises exactly one `disk_filling` incident for the filling
//! filesystem, none for the flat one or the slow one, across two runs.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use first_responder::Mode;
use harness::{FleetSpec, World, drain, put_series};

async fn seed_disk(w: &World, instance: &str, path: &str, per_hour: f64, last: f64) -> Result<()> {
    let end =
        chrono::DateTime::from_timestamp(Utc::now().timestamp() / 300 * 300, 0).context("now")?;
    let values: Vec<f64> = (0..36)
        .map(|i| last - per_hour * f64::from(35 - i) / 12.0)
        .collect();
    put_series(
        &w.engine.aws.cloudwatch,
        "CWAgent",
        "disk_used_percent",
        // In name order: moto matches a query's dimensions to the stored
        // ones in order (CloudWatch does not), and the incident's own read
        // names them sorted.
        &[
            ("InstanceId", instance),
            ("device", "xvdf"),
            ("fstype", "xfs"),
            ("path", path),
        ],
        end,
        300,
        &values,
    )
    .await
}

#[tokio::test]
async fn one_disk_filling_incident_for_a_filling_disk_none_for_a_flat_one() -> Result<()> {
    let w = World::start_with_state(FleetSpec {
        desired: 2,
        ..FleetSpec::default()
    })
    .await?;
    let (a, b) = (w.fleet.instances[0].clone(), w.fleet.instances[1].clone());
    // 90% and +2 points an hour: full in about 5 h, within the 6 h horizon.
    seed_disk(&w, &a, "/data", 2.0, 90.0).await?;
    // 50% and +2 an hour: full in 25 h. Flat at 97%: not growing.
    seed_disk(&w, &a, "/", 2.0, 50.0).await?;
    seed_disk(&w, &b, "/data", 0.0, 97.0).await?;
    // An instance that did not opt in is not read.
    aws_sdk_ec2::Client::new(&w.sdk)
        .delete_tags()
        .resources(&w.fleet.standalone)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(harness::OPT_IN.0)
                .build(),
        )
        .send()
        .await?;
    seed_disk(&w, &w.fleet.standalone, "/data", 5.0, 95.0).await?;

    let now = Utc::now();
    let (check, report) =
        first_responder::forecast::run::scheduled_forecast(&w.engine, &w.config, now, Mode::Run)
            .await
            .map_err(anyhow::Error::msg)?;
    assert_eq!(check.filesystems, 3, "{check:#?}");
    assert_eq!(check.at_risk.len(), 1, "{check:#?}");
    let risk = &check.at_risk[0];
    assert_eq!(
        (risk.instance.as_str(), risk.path.as_str()),
        (a.as_str(), "/data")
    );
    let full: chrono::DateTime<Utc> = risk
        .forecast
        .full_at
        .as_deref()
        .context("full_at")?
        .parse()?;
    let hours = (full - now).num_minutes() as f64 / 60.0;
    assert!((4.0..=5.5).contains(&hours), "full in {hours} h");
    assert_eq!(report.incidents.len(), 1);
    let i = &report.incidents[0];
    assert_eq!(i.kind.as_str(), "disk_filling");
    assert_eq!(i.delivery, "first");
    assert_eq!(i.severity.as_str(), "warning");
    assert!(i.forecast.is_some(), "{i:#?}");
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1);
    let text = inbox[0].text()?;
    // Space used, the latest the check read, as disk_full's subject gives
    // it (it once gave the free percentage: 100 minus this).
    let subject = inbox[0].subject.clone().unwrap_or_default();
    assert!(risk.latest > 80.0, "{risk:?}");
    assert!(
        subject.starts_with(&format!("[ALARM] Disk filling {:.1}% on ", risk.latest)),
        "{subject}"
    );
    assert!(text.contains("Forecast: full in about"), "{text}");
    assert!(
        text.contains("NEXT STEPS (disk_filling playbook)"),
        "{text}"
    );
    assert!(
        drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty(),
        "a forecast does not page"
    );

    // Fifteen minutes later: the same incident, not a second one.
    let later = now + chrono::Duration::minutes(15);
    let (check, report) =
        first_responder::forecast::run::scheduled_forecast(&w.engine, &w.config, later, Mode::Run)
            .await
            .map_err(anyhow::Error::msg)?;
    assert_eq!(check.at_risk.len(), 1);
    assert_eq!(report.incidents[0].id, i.id);
    assert_eq!(report.incidents[0].delivery, "duplicate");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty(),
        "one notification"
    );
    Ok(())
}
