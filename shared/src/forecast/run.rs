//! The predictive check's reads: the opted-in instances, their
//! `disk_used_percent` series (found with `ListMetrics`, read in batches of
//! 500 queries), and the incidents for the filesystems at risk.

use aws_sdk_cloudwatch::primitives::DateTime as SdkTime;
use aws_sdk_cloudwatch::types::{DimensionFilter, Metric, MetricDataQuery, MetricStat, ScanBy};
use chrono::{DateTime, Utc};

use std::time::Duration;

use super::{Check, Filesystem, QUERIES_PER_CALL, at_risk, hold_key, incident, occurrence};
use crate::aws::sdk_error;
use crate::config::Config;
use crate::engine::Engine;
use crate::series::{Point, forecast_window};

const PERIOD: i32 = 300;

/// The scheduled check: the filesystems at risk, each raised as a
/// `disk_filling` incident through the whole pipeline (the same
/// idempotency, limits and notification as any incident).
pub async fn scheduled_forecast(
    engine: &Engine,
    config: &Config,
    now: DateTime<Utc>,
    mode: crate::respond::Mode,
) -> Result<(Check, crate::report::Report), String> {
    let check = forecast_check(engine, config, now).await?;
    let horizon = Duration::from_secs(u64::from(check.horizon_hours) * 3600);
    let mut incidents = Vec::new();
    for r in &check.at_risk {
        let mine = occurrence(r, now);
        let occ = match &engine.state {
            Some(st) => {
                st.hold(&hold_key(r), now.timestamp(), horizon, &mine)
                    .await?
            }
            None => mine,
        };
        match incident(r, occ, now) {
            Ok(i) => incidents.push(i),
            Err(e) => {
                tracing::warn!(error = %e, instance = %r.instance, "a filesystem at risk could not become an incident")
            }
        }
    }
    let report = crate::respond::respond(&incidents, 0, engine, config, mode).await;
    Ok((check, report))
}

/// The agent's disk metrics (`CWAgent` `disk_used_percent`) of the
/// opted-in running instances, each once, with its instance.
async fn disk_metrics(
    engine: &Engine,
    instances: &[String],
) -> Result<Vec<(String, Metric)>, String> {
    let mut metrics: Vec<(String, Metric)> = Vec::new();
    let mut token = None;
    loop {
        let out = engine
            .aws
            .cloudwatch
            .list_metrics()
            .namespace("CWAgent")
            .metric_name("disk_used_percent")
            .dimensions(DimensionFilter::builder().name("InstanceId").build())
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("ListMetrics: {}", sdk_error(&e)))?;
        for m in out.metrics() {
            let instance = m
                .dimensions()
                .iter()
                .find(|d| d.name() == Some("InstanceId"))
                .and_then(|d| d.value());
            // Each metric once (moto lists one a datapoint).
            let seen = metrics
                .iter()
                .any(|(_, x)| x.dimensions() == m.dimensions());
            if let Some(i) = instance.filter(|i| instances.iter().any(|x| x == i))
                && !seen
            {
                metrics.push((i.to_owned(), m.clone()));
            }
        }
        token = out.next_token().map(ToOwned::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(metrics)
}

/// Every page of one `GetMetricData` call (`batch`: its number, for errors)
/// over `[start, end)`.
async fn metric_data(
    engine: &Engine,
    queries: Vec<MetricDataQuery>,
    (start, end): (i64, i64),
    batch: usize,
) -> Result<Vec<aws_sdk_cloudwatch::types::MetricDataResult>, String> {
    let mut results = Vec::new();
    let mut token = None;
    loop {
        let out = engine
            .aws
            .cloudwatch
            .get_metric_data()
            .start_time(SdkTime::from_secs(start))
            .end_time(SdkTime::from_secs(end))
            .scan_by(ScanBy::TimestampAscending)
            .set_metric_data_queries(Some(queries.clone()))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("GetMetricData (batch {batch}): {}", sdk_error(&e)))?;
        results.extend(out.metric_data_results().to_vec());
        token = out.next_token().map(ToOwned::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(results)
}

/// Reads every opted-in instance's filesystems and fits each: the
/// filesystems at risk within the `disk_filling` playbook's horizon.
pub async fn forecast_check(
    engine: &Engine,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Check, String> {
    let horizon = config.playbooks.disk_filling_horizon_hours();
    let instances = opted_in_running(engine, config).await?;
    let metrics = disk_metrics(engine, &instances).await?;
    let end = now.timestamp().div_euclid(i64::from(PERIOD)) * i64::from(PERIOD) + i64::from(PERIOD);
    let start = end - forecast_window(PERIOD.unsigned_abs());
    let mut filesystems = Vec::new();
    for (c, chunk) in metrics.chunks(QUERIES_PER_CALL).enumerate() {
        let queries: Vec<MetricDataQuery> = chunk
            .iter()
            .enumerate()
            .map(|(n, (_, m))| {
                MetricDataQuery::builder()
                    .id(format!("m{n}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(m.clone())
                            .period(PERIOD)
                            .stat("Maximum")
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let results = metric_data(engine, queries, (start, end), c).await?;
        for (n, (instance, m)) in chunk.iter().enumerate() {
            let id = format!("m{n}");
            let points: Vec<Point> = results
                .iter()
                .filter(|r| r.id() == Some(id.as_str()))
                .flat_map(|r| r.timestamps().iter().zip(r.values()))
                .filter_map(|(t, v)| {
                    Some(Point {
                        at: DateTime::from_timestamp(t.secs(), t.subsec_nanos())?,
                        value: *v,
                    })
                })
                .collect();
            let mut points = points;
            points.sort_by_key(|p| p.at);
            filesystems.push(Filesystem {
                instance: instance.clone(),
                dimensions: m
                    .dimensions()
                    .iter()
                    .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                    .collect(),
                points,
            });
        }
    }
    Ok(at_risk(&filesystems, now, horizon))
}

/// The running instances carrying the opt-in tag (all running ones when
/// the opt-in is off).
async fn opted_in_running(engine: &Engine, config: &Config) -> Result<Vec<String>, String> {
    use aws_sdk_ec2::types::Filter;
    let mut req = engine.aws.ec2.describe_instances().filters(
        Filter::builder()
            .name("instance-state-name")
            .values("running")
            .build(),
    );
    if let Some((k, v)) = &config.opt_in {
        req = req.filters(Filter::builder().name(format!("tag:{k}")).values(v).build());
    }
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = req
            .clone()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("DescribeInstances: {}", sdk_error(&e)))?;
        for r in page.reservations() {
            for i in r.instances() {
                if let Some(id) = i.instance_id() {
                    out.push(id.to_owned());
                }
            }
        }
        token = page.next_token().map(ToOwned::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}
