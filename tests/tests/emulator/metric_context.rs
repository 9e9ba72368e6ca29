//! The metric in the page: datapoints seeded in the emulated CloudWatch
//! (moto, through the harness's CBOR bridge, with the SDK the product uses),
//! read back by the responder from the alarm's own configuration, and shown
//! in the report and the email; for a disk, the forecast and the size it
//! gives the volume.

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use first_responder::Mode;
use first_responder::series::sparkline;
use harness::{FleetSpec, World, drain, put_alarm, put_series, sample_event, volume_size};

/// The last seeded datapoint: the alarm's breaching one (the sample events
/// change state at 02:04:12).
fn last_point() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap()
}

/// The period it falls in, as the alarm evaluated it: CloudWatch evaluates
/// at the minute (02:04), so its 5-minute periods start at :59, :04, ….
fn evaluated_period() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 1, 59, 0).unwrap()
}

fn cpu_values() -> Vec<f64> {
    let mut v: Vec<f64> = (0..31).map(|i| 20.0 + f64::from(i % 7) * 3.0).collect();
    v.extend([85.0, 92.0, 95.3]);
    v
}

#[tokio::test]
async fn the_high_cpu_page_shows_the_seeded_series() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let dims = [("InstanceId", instance.as_str())];
    let values = cpu_values();
    put_series(
        &w.engine.aws.cloudwatch,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        last_point(),
        300,
        &values,
    )
    .await?;
    // Another instance's series must not leak into this one's page.
    put_series(
        &w.engine.aws.cloudwatch,
        "AWS/EC2",
        "CPUUtilization",
        &[("InstanceId", "i-0fffffffffffffff0")],
        last_point(),
        300,
        &[1.0; 34],
    )
    .await?;
    w.cpu_alarm("ALARM").await?;

    let event = sample_event("high-cpu-alarm.json", &instance)?;
    let r = w.handle_text(&event, Mode::Run).await?;
    let i = &r.incidents[0];
    let c = i.context.as_ref().context("a metric context")?;
    assert_eq!(c.metric, "AWS/EC2/CPUUtilization");
    assert_eq!(c.period, 300);
    let got: Vec<f64> = c.datapoints.iter().map(|p| p.value).collect();
    assert_eq!(got, values, "the seeded series, oldest first");
    assert_eq!(c.datapoints.last().map(|p| p.at), Some(evaluated_period()));
    assert_eq!((c.min, c.max, c.latest), (20.0, 95.3, 95.3));
    assert_eq!(c.threshold, Some(80.0));
    // One of one fired it at 01:59, and the two periods before breached
    // too (85, 92): the breach began at 01:49.
    assert_eq!(c.breach_started.as_deref(), Some("2026-11-25T01:49:00Z"));
    assert!(!c.stale);
    assert!(!i.any_failed(), "{i:#?}");

    // The same in the report's JSON (the CLI's contract).
    let j = serde_json::to_value(i)?;
    assert_eq!(
        j["context"]["datapoints"][33],
        serde_json::json!(["2026-11-25T01:59:00Z", 95.3])
    );
    assert_eq!(j["context"]["breach_started"], "2026-11-25T01:49:00Z");
    assert!(j.get("forecast").is_none(), "no forecast for a CPU alarm");

    // The email: the sparkline of the seeded values, and the figures.
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let doc = inbox[0].document()?;
    let text = doc["text"].as_str().unwrap_or_default();
    let line = sparkline(&values, 48);
    assert_eq!(line.chars().count(), 34);
    assert!(
        text.contains(&format!(
            "AWS/EC2/CPUUtilization (every 300 s, last 3 h): {line}"
        )),
        "{text}"
    );
    assert!(
        text.contains("min 20.0 | max 95.3 | latest 95.3 | threshold 80.0"),
        "{text}"
    );
    assert!(
        text.contains("breaching since 2026-11-25T01:49:00Z"),
        "{text}"
    );
    assert_eq!(
        doc["context"]["datapoints"].as_array().map(Vec::len),
        Some(34)
    );
    Ok(())
}

#[tokio::test]
async fn no_metric_costs_the_page_its_graph_not_the_fix() -> Result<()> {
    // No alarm of that name in CloudWatch (deleted, or another account).
    let w = World::start(FleetSpec::default()).await?;
    let r = w.run_sample("high-cpu-alarm.json").await?;
    let i = &r.incidents[0];
    assert!(i.context.is_none());
    assert!(
        i.notes
            .iter()
            .any(|n| n.starts_with("metric not shown: DescribeAlarms found no metric alarm")),
        "{:?}",
        i.notes
    );
    assert!(!r.any_failed(), "{r:#?}");
    assert!(
        i.actions
            .iter()
            .all(|a| a.status.as_str() == "done" || a.status.as_str() == "skipped"),
        "{i:#?}"
    );
    let j = serde_json::to_value(i)?;
    assert_eq!(j["context"], serde_json::Value::Null);

    // CloudWatch unreachable: the same, within the deadline.
    let mut w = w;
    w.engine.aws.cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&w.sdk)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    )
    .into();
    let started = std::time::Instant::now();
    let event = sample_event("high-cpu-alarm.json", w.fleet.instance())?
        .replace("2026-11-25T02:04:12.152", "2026-11-25T03:04:12.152");
    let r = w.handle_text(&event, Mode::Plan).await?;
    assert!(
        r.incidents[0]
            .notes
            .iter()
            .any(|n| n.starts_with("metric not shown: ")),
        "{:?}",
        r.incidents[0].notes
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    Ok(())
}

#[tokio::test]
async fn a_disk_rising_two_points_an_hour_is_forecast_and_sized_for_it() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let dims = [
        ("InstanceId", instance.as_str()),
        ("path", "/data"),
        ("device", "xvdf"),
        ("fstype", "ext4"),
    ];
    // 97.2% at 02:00, +2 points an hour, with ±0.3 of noise: the true line
    // reaches 100% 1.4 h later, at 03:24.
    let values: Vec<f64> = (0..34)
        .map(|i| 97.2 - 2.0 * f64::from(33 - i) / 12.0 + if i % 2 == 0 { 0.3 } else { -0.3 })
        .collect();
    put_series(
        &w.engine.aws.cloudwatch,
        "CWAgent",
        "disk_used_percent",
        &dims,
        last_point(),
        300,
        &values,
    )
    .await?;
    put_alarm(
        &w.engine.aws.cloudwatch,
        "web-data-disk-full",
        "CWAgent",
        "disk_used_percent",
        &dims,
        300,
        90.0,
        "ALARM",
    )
    .await?;
    assert_eq!(volume_size(&w.sdk, &w.fleet.data_volume).await?, 20);
    w.config.playbooks.disk_full.expand_volume.growth_days = 2;
    let r = w.run_sample("disk-full-alarm.json").await?;
    let i = &r.incidents[0];
    let f = i.forecast.as_ref().context("a forecast")?;
    assert!((f.percent_per_hour - 2.0).abs() < 0.1, "{f:?}");
    let truth = last_point() + chrono::Duration::minutes(84);
    let alarm = Utc.with_ymd_and_hms(2026, 11, 25, 2, 4, 12).unwrap();
    let got: DateTime<Utc> = f.full_at.as_deref().context("full_at")?.parse()?;
    let allowed = (truth - alarm).num_seconds() as f64 * 0.15;
    assert!(
        ((got - truth).num_seconds() as f64).abs() <= allowed,
        "full at {got}, truly {truth} (±{allowed} s)"
    );
    // (19.44 GiB used + 2 days at 0.4 GiB an hour) below 95%: 41 GiB, more
    // than the rule's 30.
    let expand = i
        .actions
        .iter()
        .find(|a| a.action.as_str() == "expand_volume")
        .context("expand_volume")?;
    assert_eq!(expand.status.as_str(), "done", "{expand:?}");
    assert_eq!(volume_size(&w.sdk, &w.fleet.data_volume).await?, 41);
    assert!(
        expand.reason.contains("sized for 2 days more"),
        "{expand:?}"
    );
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(
        text.contains("Forecast: full within the hour")
            || text.contains("Forecast: full in about 1 h"),
        "{text}"
    );
    Ok(())
}

/// The issue's own case: flat at 60% for most of a day, then one step to
/// 96% ninety minutes before the alarm (a restore, an unpacked archive).
/// The forecast reads the day, takes the step out and finds no steady
/// growth: the volume is grown by the rule (20 -> 30 GiB), not for a rate
/// the step would suggest (it once grew 100 GiB to 1,063).
#[tokio::test]
async fn a_step_after_a_flat_day_is_not_read_as_growth() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let dims = [
        ("InstanceId", instance.as_str()),
        ("path", "/data"),
        ("device", "xvdf"),
        ("fstype", "ext4"),
    ];
    // 288 five-minute points to 02:00: 60% (±0.2) until 00:30, then 96%
    // rising to 97.2% by the alarm.
    let values: Vec<f64> = (0..288)
        .map(|i| match i {
            0..270 => 60.0 + if i % 2 == 0 { 0.2 } else { -0.2 },
            _ => 96.0 + 1.2 * f64::from(i - 270) / 17.0,
        })
        .collect();
    put_series(
        &w.engine.aws.cloudwatch,
        "CWAgent",
        "disk_used_percent",
        &dims,
        last_point(),
        300,
        &values,
    )
    .await?;
    put_alarm(
        &w.engine.aws.cloudwatch,
        "web-data-disk-full",
        "CWAgent",
        "disk_used_percent",
        &dims,
        300,
        90.0,
        "ALARM",
    )
    .await?;
    w.config.playbooks.disk_full.expand_volume.growth_days = 2;
    let r = w.run_sample("disk-full-alarm.json").await?;
    let i = &r.incidents[0];
    let f = i.forecast.as_ref().context("a forecast")?;
    // The day was read: the window ends at the alarm's evaluation (02:04)
    // and spans 24 h, so the first point fitted is 02:04 the day before
    // (the period that holds the first seeded datapoint, 02:05).
    let from: DateTime<Utc> = f.fitted_from.parse()?;
    assert_eq!(
        from,
        evaluated_period() - chrono::Duration::minutes(23 * 60 + 55),
        "{f:?}"
    );
    assert_eq!(f.steps_excluded.len(), 1, "{f:?}");
    assert!(f.full_at.is_none(), "{f:?}");
    let expand = i
        .actions
        .iter()
        .find(|a| a.action.as_str() == "expand_volume")
        .context("expand_volume")?;
    assert_eq!(expand.status.as_str(), "done", "{expand:?}");
    assert_eq!(volume_size(&w.sdk, &w.fleet.data_volume).await?, 30);
    assert!(!expand.reason.contains("sized for"), "{expand:?}");
    // The page shows its last 3 hours, not the day.
    let points = i
        .context
        .as_ref()
        .map(|c| c.datapoints.len())
        .unwrap_or_default();
    assert!(points <= 37, "{points} datapoints on the page");
    Ok(())
}

/// An Alertmanager disk alert names an address and a mount point: the
/// responder finds the instance and the CloudWatch agent's metric for that
/// mount point among the instance's (not the root filesystem's), and sizes
/// the volume by its forecast.
#[tokio::test]
async fn an_alertmanager_disk_alert_shows_the_agents_metric_for_its_mount_point() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    // +2 points an hour on /data; the root filesystem flat at 40%.
    let data: Vec<f64> = (0..34)
        .map(|i| 96.5 - 2.0 * f64::from(33 - i) / 12.0)
        .collect();
    for (path, device, values) in [
        ("/", "xvda1", vec![40.0; 34]),
        ("/data", "xvdf", data.clone()),
    ] {
        let dims = [
            ("InstanceId", instance.as_str()),
            ("device", device),
            ("fstype", "ext4"),
            ("path", path),
        ];
        put_series(
            &w.engine.aws.cloudwatch,
            "CWAgent",
            "disk_used_percent",
            &dims,
            last_point(),
            300,
            &values,
        )
        .await?;
    }
    w.config.playbooks.disk_full.expand_volume.growth_days = 2;
    let event =
        std::fs::read_to_string(harness::root().join("events/alertmanager-disk-full.json"))?
            .replace("10.0.1.5", &w.fleet.private_ip);
    let r = w.handle(&event).await?;
    let i = &r.incidents[0];
    let c = i.context.as_ref().context("a metric context")?;
    assert_eq!(c.metric, "CWAgent/disk_used_percent");
    assert_eq!(c.datapoints.len(), data.len(), "{c:?}");
    assert!(
        (c.latest - 96.5).abs() < 1e-9,
        "the /data series, not /: {c:?}"
    );
    let f = i.forecast.as_ref().context("a forecast")?;
    assert!((f.percent_per_hour - 2.0).abs() < 0.01, "{f:?}");
    // 96.5% of 20 GiB as alerted, + 2 days at 2 points an hour, below 95%.
    let (st, detail) = harness::status_of(&r, "expand_volume");
    assert_eq!(st, "done", "{r:#?}");
    assert_eq!(
        volume_size(&w.sdk, &w.fleet.data_volume).await?,
        41,
        "{detail}"
    );
    Ok(())
}

/// A metric alarm as the console makes one, in ALARM with the reason data
/// CloudWatch writes (`StateReasonData`): the tests' own, since the
/// harness's `put_alarm` has one shape.
async fn alarm(
    cw: &aws_sdk_cloudwatch::Client,
    put: aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmFluentBuilder,
    reason_data: &str,
) -> Result<()> {
    use aws_sdk_cloudwatch::types::StateValue;
    let name = put.get_alarm_name().clone().context("an alarm name")?;
    put.send().await.context("PutMetricAlarm")?;
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(StateValue::Alarm)
        .state_reason("seeded by the test")
        .state_reason_data(reason_data)
        .send()
        .await
        .context("SetAlarmState")?;
    Ok(())
}

fn cpu_metric(instance: &str) -> aws_sdk_cloudwatch::types::Metric {
    use aws_sdk_cloudwatch::types::{Dimension, Metric};
    Metric::builder()
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(
            Dimension::builder()
                .name("InstanceId")
                .value(instance)
                .build(),
        )
        .build()
}

/// The shipped anomaly sample: the alarm returns its metric (m1) and its
/// band (ad1, the `ThresholdMetricId`), the band last. The page shows the
/// CPU and the band the alarm compared it with, not the band as the metric.
#[tokio::test]
async fn an_anomaly_alarm_shows_its_metric_and_its_band() -> Result<()> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricDataQuery, MetricStat};
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let values = cpu_values();
    let cw = &w.engine.aws.cloudwatch;
    let dims = [("InstanceId", instance.as_str())];
    put_series(
        cw,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        last_point(),
        300,
        &values,
    )
    .await?;
    let put = cw
        .put_metric_alarm()
        .alarm_name("web-cpu-anomaly")
        .evaluation_periods(1)
        .threshold_metric_id("ad1")
        .comparison_operator(ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold)
        .metrics(
            MetricDataQuery::builder()
                .id("m1")
                .metric_stat(
                    MetricStat::builder()
                        .metric(cpu_metric(&instance))
                        .period(300)
                        .stat("Average")
                        .build(),
                )
                .return_data(true)
                .build(),
        )
        .metrics(
            MetricDataQuery::builder()
                .id("ad1")
                .expression("ANOMALY_DETECTION_BAND(m1, 2)")
                .label("CPUUtilization (expected)")
                .return_data(true)
                .build(),
        );
    let event = sample_event("high-cpu-anomaly.json", &instance)?;
    let v: serde_json::Value = serde_json::from_str(&event)?;
    let reason = v["detail"]["state"]["reasonData"]
        .as_str()
        .context("reasonData")?;
    alarm(cw, put, reason).await?;

    let r = w.handle_text(&event, Mode::Run).await?;
    let c = r.incidents[0]
        .context
        .as_ref()
        .context("a metric context")?;
    assert_eq!(c.metric, "AWS/EC2/CPUUtilization");
    let got: Vec<f64> = c.datapoints.iter().map(|p| p.value).collect();
    assert_eq!(got, values, "the CPU, not the band");
    let band = c.band.context("the band")?;
    assert_eq!((band.lower, band.upper, c.threshold), (12.0, 71.2, None));
    assert_eq!(c.breach_started.as_deref(), Some("2026-11-25T01:49:00Z"));
    let j = serde_json::to_value(&r.incidents[0])?;
    assert_eq!(
        j["context"]["band"],
        serde_json::json!({"lower": 12.0, "upper": 71.2})
    );
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(text.contains("latest 95.3 | band 12.0 to 71.2"), "{text}");
    assert!(
        text.contains("AWS/EC2/CPUUtilization (every 300 s, last 3 h)"),
        "{text}"
    );
    Ok(())
}

/// A 1-hour alarm gets a graph of its own periods (12 of them), aligned to
/// its evaluation at 02:04; an alarm that judged a datapoint hours old says
/// it is stale.
#[tokio::test]
async fn an_hourly_alarm_shows_its_periods_and_an_old_datapoint_is_stale() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let cw = &w.engine.aws.cloudwatch;
    let dims = [("InstanceId", instance.as_str())];
    // Every 10 minutes for a day, up to 02:00.
    let values: Vec<f64> = (0..144).map(|i| 30.0 + f64::from(i % 6)).collect();
    put_series(
        cw,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        last_point(),
        600,
        &values,
    )
    .await?;
    put_alarm(
        cw,
        "web-high-cpu",
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        3600,
        80.0,
        "ALARM",
    )
    .await?;
    let event = sample_event("high-cpu-alarm.json", &instance)?;
    let r = w.handle_text(&event, Mode::Plan).await?;
    let c = r.incidents[0]
        .context
        .as_ref()
        .context("a metric context")?;
    assert_eq!(c.period, 3600);
    let times: Vec<String> = c
        .datapoints
        .iter()
        .map(|p| first_responder::series::rfc3339(p.at))
        .collect();
    assert_eq!(times.len(), 12, "{times:?}");
    assert_eq!(
        times.first().map(String::as_str),
        Some("2026-11-24T14:04:00Z")
    );
    assert_eq!(
        times.last().map(String::as_str),
        Some("2026-11-25T01:04:00Z")
    );
    assert!(!c.stale);
    assert!(
        c.lines()[0].contains("(every 3600 s, last 12 h)"),
        "{:?}",
        c.lines()
    );

    // The same alarm evaluated at 05:04 on data that stopped at 02:00.
    let late = event.replace("2026-11-25T02:04:12.152", "2026-11-25T05:04:12.152");
    let r = w.handle_text(&late, Mode::Plan).await?;
    let c = r.incidents[0]
        .context
        .as_ref()
        .context("a metric context")?;
    assert!(c.stale, "{c:?}");
    assert_eq!(c.latest_at, "2026-11-25T01:04:00Z");
    assert!(
        c.lines()
            .iter()
            .any(|l| l.starts_with("stale: the newest datapoint is from 2026-11-25T01:04:00Z")),
        "{:?}",
        c.lines()
    );
    Ok(())
}

/// 3 of 5, missing data breaching: the breach began at the first breaching
/// period of the five that fired the alarm (01:39), not at the start of
/// the last unbroken run (01:54); a missing period counts as breaching.
#[tokio::test]
async fn an_m_of_n_alarm_breached_from_the_first_breaching_period_it_counted() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let instance = w.fleet.instance().to_owned();
    let cw = &w.engine.aws.cloudwatch;
    let dims = [("InstanceId", instance.as_str())];
    // 5-minute datapoints to 02:00; the alarm's periods are 01:39 … 01:59.
    // 01:35 (period 01:34) breaches too, but lies outside the five.
    let mut values = vec![20.0; 20];
    values.extend([91.0, 25.0, 93.0, 30.0]); // 01:35, 01:40, 01:45, 01:50
    put_series(
        cw,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        last_point() - chrono::Duration::minutes(10),
        300,
        &values,
    )
    .await?;
    put_series(
        cw,
        "AWS/EC2",
        "CPUUtilization",
        &dims,
        last_point(),
        300,
        &[97.0],
    )
    .await?;
    let put = cw
        .put_metric_alarm()
        .alarm_name("web-high-cpu")
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("InstanceId")
                .value(&instance)
                .build(),
        )
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(300)
        .evaluation_periods(5)
        .datapoints_to_alarm(3)
        .treat_missing_data("breaching")
        .threshold(80.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold);
    alarm(
        cw,
        put,
        r#"{"version":"1.0","queryDate":"2026-11-25T02:04:12.148+0000","startDate":"2026-11-25T01:39:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[25.0,93.0,30.0,97.0],"threshold":80.0}"#,
    )
    .await?;
    let event = sample_event("high-cpu-alarm.json", &instance)?;
    let r = w.handle_text(&event, Mode::Plan).await?;
    let c = r.incidents[0]
        .context
        .as_ref()
        .context("a metric context")?;
    let last: Vec<(String, f64)> = c
        .datapoints
        .iter()
        .rev()
        .take(5)
        .map(|p| (first_responder::series::rfc3339(p.at), p.value))
        .collect();
    // 01:54 holds no datapoint (missing, so breaching): 4 real of 5.
    assert_eq!(
        last,
        [
            ("2026-11-25T01:59:00Z".to_owned(), 97.0),
            ("2026-11-25T01:49:00Z".to_owned(), 30.0),
            ("2026-11-25T01:44:00Z".to_owned(), 93.0),
            ("2026-11-25T01:39:00Z".to_owned(), 25.0),
            ("2026-11-25T01:34:00Z".to_owned(), 91.0),
        ]
    );
    assert_eq!(c.breach_started.as_deref(), Some("2026-11-25T01:44:00Z"));
    Ok(())
}
