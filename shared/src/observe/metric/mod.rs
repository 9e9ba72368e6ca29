//! The reads behind the metric context: the alarm's own configuration
//! (`DescribeAlarms`), then its metric (`GetMetricData`) over the window.
//! Nothing from the event goes into the query but the alarm's name, which
//! names the alarm to describe; the query's ids come from the alarm and are
//! checked against CloudWatch's own rule.

use aws_sdk_cloudwatch::primitives::DateTime as SdkTime;
use aws_sdk_cloudwatch::types::{DimensionFilter, MetricAlarm, ScanBy};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::alarm::{AlarmRead, FoundAlarm};
use crate::alert::AlertSource;
use crate::aws::{Aws, sdk_error};
use crate::ids::InstanceId;
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::series::evaluation::Evaluation;
use crate::series::{Comparison, MetricContext, Point, forecast_window, page_window, summarize};

mod query;
use query::*;

/// How long the reads may take: they run beside the other first-stage
/// reads; the fix does not wait for them, and the page waits at most this
/// long (a slow CloudWatch costs the page its graph, not the fix).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_millis(2500);

fn to_sdk(t: DateTime<Utc>) -> SdkTime {
    SdkTime::from_secs(t.timestamp())
}

fn from_sdk(t: &SdkTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// The metric behind a firing alert over the window up to its state
/// change: None when there is nothing to read (a recovery, an alert
/// with no metric), Err(why) when the read failed or found no data.
pub async fn metric_context(
    aws: &Aws,
    incident: &Incident,
    lookup: Option<&crate::observe::Lookup<'_>>,
    alarm: AlarmRead<'_>,
) -> Option<Result<MetricContext, String>> {
    if incident.transition != Transition::Firing {
        return None;
    }
    let read = async {
        let mut q = if incident.alert.source == AlertSource::Alertmanager {
            // An alert that names only an address waits for the lookup
            // the fleet's reads share (made once, beside them).
            let instance = match &incident.resource {
                Resource::Instance(i) => i.clone(),
                Resource::Address(_) => crate::observe::resolved(lookup).await.ok()?.0,
                _ => return None,
            };
            let q = if incident.kind.is_disk() {
                match disk_metric(aws, incident, &instance).await {
                    Ok(q) => q,
                    Err(e) => return Some(Err(e)),
                }
            } else {
                for_instance(incident.kind, instance.as_str())?
            };
            with_rule_threshold(q, incident)
        } else if incident.alert.source == AlertSource::Forecast {
            // The predictive check's own metric, from ListMetrics.
            let m = incident.alert.metric.as_ref()?;
            disk_query(&m.namespace, &m.name, &m.dimensions, Some(100.0))
        } else {
            match alarm.await? {
                Ok(Some(FoundAlarm::Metric(a))) => match from_alarm(&a) {
                    Ok(q) => q,
                    Err(e) => return Some(Err(e)),
                },
                Ok(Some(FoundAlarm::Composite(_))) => return None,
                Ok(None) => {
                    return Some(Err(
                        "DescribeAlarms found no metric alarm of that name".to_owned()
                    ));
                }
                Err(e) => return Some(Err(e)),
            }
        };
        let changed =
            crate::series::parse_time(&incident.alert.state_timestamp).unwrap_or_else(Utc::now);
        let Some(judge) = q.judge.take() else {
            // No alarm to follow: the period of the alert's time, and the
            // one after it (a datapoint is stamped at its period's start).
            let period = i64::from(q.period.max(1));
            let end = (changed.timestamp() + period).div_euclid(period) * period + period;
            let end = DateTime::from_timestamp(end, 0).unwrap_or(changed);
            return Some(series(aws, q, end, incident.kind.is_disk()).await);
        };
        let end = judge.end(q.period, changed);
        let limit = judge.limit(&q);
        let e = Evaluation {
            end,
            periods: judge.periods,
            to_alarm: judge.to_alarm,
            missing: judge.missing,
            range_start: judge.reason.as_ref().and_then(|r| r.start()),
        };
        let page = series(aws, q, end, incident.kind.is_disk()).await;
        Some(page.map(|c| c.judged(&e, limit.as_ref())))
    };
    match tokio::time::timeout(DEADLINE, read).await {
        Ok(r) => r,
        Err(_) => Some(Err(format!(
            "CloudWatch did not answer within {} ms",
            DEADLINE.as_millis()
        ))),
    }
}

/// The CloudWatch agent's `disk_used_percent` for the alerted mount
/// point: the instance's metrics are listed by its (validated) id and
/// the one whose `path` is the alert's mount point is picked here, so
/// the query names only what ListMetrics answered.
async fn disk_metric(
    aws: &Aws,
    incident: &Incident,
    instance: &InstanceId,
) -> Result<Query, String> {
    let Some(mount) = crate::actions::context::disk_target(incident).mount else {
        return Err("the alert names no mount point to find its disk_used_percent by".into());
    };
    let mut token = None;
    // A handful of pages: one instance has a few filesystems (moto lists
    // one entry a datapoint).
    for _ in 0..5 {
        let out = aws
            .cloudwatch
            .list_metrics()
            .namespace("CWAgent")
            .metric_name("disk_used_percent")
            .dimensions(
                DimensionFilter::builder()
                    .name("InstanceId")
                    .value(instance.as_str())
                    .build(),
            )
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("ListMetrics: {}", sdk_error(&e)))?;
        let found = out.metrics().iter().find(|m| {
            m.dimensions()
                .iter()
                .any(|d| d.name() == Some("path") && d.value() == Some(mount.as_str()))
        });
        if let Some(m) = found {
            let dimensions = m
                .dimensions()
                .iter()
                .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                .collect();
            return Ok(disk_query(
                "CWAgent",
                "disk_used_percent",
                &dimensions,
                None,
            ));
        }
        token = out.next_token().map(ToOwned::to_owned);
        if token.is_none() {
            break;
        }
    }
    Err(format!(
        "the CloudWatch agent publishes no disk_used_percent for {} on {instance}",
        crate::text::quoted(&mount, 80)
    ))
}

/// The window ends at `end` (for an alarm, the end of the periods it
/// evaluated), starts a whole number of periods before it (so the
/// datapoints are the alarm's own periods: CloudWatch counts periods from
/// the query's start) and spans [`page_window`]. For a disk (`history`),
/// the same one read spans the forecast's longer window: the page shows
/// its last [`page_window`], the forecast fits all of it.
async fn series(
    aws: &Aws,
    q: Query,
    end: DateTime<Utc>,
    history: bool,
) -> Result<MetricContext, String> {
    let period = i64::from(q.period.max(1));
    let whole = |seconds: i64| chrono::Duration::seconds((seconds + period - 1) / period * period);
    let page_start = end - whole(page_window(q.period));
    if !history {
        return series_between(aws, q, page_start, end).await;
    }
    let start = end - whole(forecast_window(q.period).max(page_window(q.period)));
    let (threshold, comparison) = (q.threshold, q.comparison);
    let all = series_between(aws, q, start, end).await?;
    let recent: Vec<Point> = all
        .datapoints
        .iter()
        .filter(|p| p.at >= page_start)
        .cloned()
        .collect();
    let page = summarize(
        all.metric.clone(),
        all.period,
        recent,
        threshold,
        comparison,
    )
    .ok_or_else(|| {
        format!(
            "no datapoints for {} between {} and {}",
            all.metric,
            crate::series::rfc3339(page_start),
            crate::series::rfc3339(end)
        )
    })?;
    Ok(MetricContext {
        dimensions: all.dimensions.clone(),
        unit: all.unit.clone(),
        history: all.datapoints,
        ..page
    })
}

/// The alarm's metric from one period before `since` to `until` (the
/// verification's "since the fix").
pub(crate) async fn alarm_series(
    aws: &Aws,
    alarm: &MetricAlarm,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<MetricContext, String> {
    let q = from_alarm(alarm)?;
    series_since(aws, q, since, until).await
}

/// An Alertmanager alert's metric since the fix, read again as the page
/// read it: the instance's metric for the kind (for a disk, the agent's
/// metric by the dimensions ListMetrics gave the page), against the
/// rule's threshold as the page had it.
pub(crate) async fn instance_series(
    aws: &Aws,
    kind: IncidentKind,
    instance: &InstanceId,
    page: &BTreeMap<String, String>,
    threshold: Option<f64>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<MetricContext, String> {
    let q = if kind.is_disk() {
        if page.get("InstanceId").map(String::as_str) != Some(instance.as_str()) {
            return Err("the page read no disk metric of this instance".into());
        }
        disk_query("CWAgent", "disk_used_percent", page, None)
    } else {
        for_instance(kind, instance.as_str())
            .ok_or_else(|| format!("no instance metric for {kind}"))?
    };
    let q = Query {
        threshold,
        comparison: threshold.map(|_| Comparison::GreaterThan),
        ..q
    };
    series_since(aws, q, since, until).await
}

/// From one period before `since` to the period after `until`.
async fn series_since(
    aws: &Aws,
    q: Query,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<MetricContext, String> {
    let period = i64::from(q.period.max(1));
    let start = (since.timestamp() - period).div_euclid(period) * period;
    let end = until.timestamp().div_euclid(period) * period + period;
    let (Some(start), Some(end)) = (
        DateTime::from_timestamp(start, 0),
        DateTime::from_timestamp(end, 0),
    ) else {
        return Err("times out of range".into());
    };
    series_between(aws, q, start, end).await
}

async fn series_between(
    aws: &Aws,
    q: Query,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<MetricContext, String> {
    let dimensions = q
        .queries
        .iter()
        .find(|x| x.id() == Some(q.returned.as_str()))
        .and_then(|x| x.metric_stat())
        .and_then(|s| s.metric())
        .map(|m| {
            m.dimensions()
                .iter()
                .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let out = aws
        .cloudwatch
        .get_metric_data()
        .start_time(to_sdk(start))
        .end_time(to_sdk(end))
        .scan_by(ScanBy::TimestampAscending)
        .set_metric_data_queries(Some(q.queries))
        .send()
        .await
        .map_err(|e| format!("GetMetricData: {}", sdk_error(&e)))?;
    let result = out
        .metric_data_results()
        .iter()
        .find(|r| r.id() == Some(q.returned.as_str()));
    let points: Vec<Point> = result
        .map(|r| {
            r.timestamps()
                .iter()
                .zip(r.values())
                .filter_map(|(t, v)| {
                    Some(Point {
                        at: from_sdk(t)?,
                        value: *v,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    summarize(q.label.clone(), q.period, points, q.threshold, q.comparison)
        .map(|c| MetricContext {
            dimensions,
            unit: q.unit.clone(),
            ..c
        })
        .ok_or_else(|| {
            format!(
                "no datapoints for {} between {} and {}",
                q.label,
                crate::series::rfc3339(start),
                crate::series::rfc3339(end)
            )
        })
}

#[cfg(test)]
mod tests;
