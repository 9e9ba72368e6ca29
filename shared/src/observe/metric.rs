//! The reads behind the metric context: the alarm's own configuration
//! (`DescribeAlarms`), then its metric (`GetMetricData`) over the window.
//! Nothing from the event goes into the query but the alarm's name, which
//! names the alarm to describe; the query's ids come from the alarm and are
//! checked against CloudWatch's own rule.

use aws_sdk_cloudwatch::primitives::DateTime as SdkTime;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricAlarm, MetricDataQuery, MetricStat, ScanBy,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::alarm::{AlarmRead, FoundAlarm};
use crate::alert::AlertSource;
use crate::aws::{Aws, sdk_error};
use crate::ids::InstanceId;
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::series::{Comparison, MetricContext, Point, WINDOW_SECONDS, forecast_window, summarize};

/// How long the reads may take: they run beside the other first-stage
/// reads; the fix does not wait for them, and the page waits at most this
/// long (a slow CloudWatch costs the page its graph, not the fix).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_millis(2500);

/// `MetricDataQuery.Id`: a lowercase letter, then letters, digits and `_`.
fn valid_id(id: &str) -> bool {
    let mut c = id.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && id.len() <= 255
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn to_sdk(t: DateTime<Utc>) -> SdkTime {
    SdkTime::from_secs(t.timestamp())
}

fn from_sdk(t: &SdkTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// What to ask `GetMetricData` for, and how to label and judge it.
#[derive(Debug)]
struct Query {
    queries: Vec<MetricDataQuery>,
    /// The id of the series the alarm watches.
    returned: String,
    label: String,
    period: u32,
    threshold: Option<f64>,
    comparison: Option<Comparison>,
    /// CloudWatch's unit, when the alarm or the query gives one.
    unit: Option<String>,
}

fn from_alarm(a: &MetricAlarm) -> Result<Query, String> {
    let threshold = a.threshold();
    let comparison = a
        .comparison_operator()
        .and_then(|c| Comparison::parse(c.as_str()));
    if !a.metrics().is_empty() {
        // Metric math: the alarm's own queries, ids checked.
        let mut period = a.period().unwrap_or(0);
        let mut returned = None;
        let mut label = String::new();
        for q in a.metrics() {
            let id = q.id().unwrap_or_default();
            if !valid_id(id) {
                return Err(format!(
                    "the alarm's metric query id {id:?} is not a valid MetricDataQuery id"
                ));
            }
            if let Some(p) = q.metric_stat().and_then(|s| s.period()).filter(|p| *p > 0) {
                period = period.max(p);
            }
            if q.return_data().unwrap_or(true) {
                returned = Some(id.to_owned());
                label = q
                    .expression()
                    .map(ToOwned::to_owned)
                    .or_else(|| q.metric_stat().and_then(|s| s.metric()).map(metric_label))
                    .unwrap_or_else(|| id.to_owned());
            }
        }
        return Ok(Query {
            queries: a.metrics().to_vec(),
            returned: returned
                .ok_or_else(|| "the alarm's metric math returns no series".to_owned())?,
            label,
            period: u32::try_from(period).unwrap_or(60).max(1),
            threshold,
            comparison,
            unit: a.unit().map(|u| u.as_str().to_owned()),
        });
    }
    let (Some(ns), Some(name)) = (a.namespace(), a.metric_name()) else {
        return Err("the alarm names no metric".into());
    };
    let period = a.period().filter(|p| *p > 0).unwrap_or(300);
    let stat = a
        .statistic()
        .map(|s| s.as_str().to_owned())
        .or_else(|| a.extended_statistic().map(ToOwned::to_owned))
        .unwrap_or_else(|| "Average".into());
    let metric = Metric::builder()
        .namespace(ns)
        .metric_name(name)
        .set_dimensions(Some(a.dimensions().to_vec()))
        .build();
    Ok(Query {
        label: metric_label(&metric),
        queries: vec![single(metric, period, &stat)],
        returned: "m0".into(),
        period: u32::try_from(period).unwrap_or(300),
        threshold,
        comparison,
        unit: a.unit().map(|u| u.as_str().to_owned()),
    })
}

fn single(metric: Metric, period: i32, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id("m0")
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(period)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

fn metric_label(m: &Metric) -> String {
    format!(
        "{}/{}",
        m.namespace().unwrap_or("?"),
        m.metric_name().unwrap_or("?")
    )
}

/// The CloudWatch agent's disk metric (or the predictive check's, by its
/// listed dimensions), at its 5-minute period, at its maximum.
fn disk_query(
    namespace: &str,
    name: &str,
    dimensions: &BTreeMap<String, String>,
    threshold: Option<f64>,
) -> Query {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .build();
    Query {
        label: metric_label(&metric),
        queries: vec![single(metric, 300, "Maximum")],
        returned: "m0".into(),
        period: 300,
        threshold,
        comparison: None,
        // The agent's disk_used_percent, the predictive check's too.
        unit: Some("Percent".into()),
    }
}

/// For an alert that is not a CloudWatch alarm (Alertmanager): the
/// instance's own CloudWatch metric for the kind, where there is one that
/// names the instance alone.
fn for_instance(kind: IncidentKind, instance: &str) -> Option<Query> {
    let (ns, name, stat) = match kind {
        IncidentKind::HighCpu => ("AWS/EC2", "CPUUtilization", "Average"),
        IncidentKind::MemoryPressure => ("CWAgent", "mem_used_percent", "Average"),
        _ => return None,
    };
    let metric = Metric::builder()
        .namespace(ns)
        .metric_name(name)
        .dimensions(
            Dimension::builder()
                .name("InstanceId")
                .value(instance)
                .build(),
        )
        .build();
    Some(Query {
        label: metric_label(&metric),
        queries: vec![single(metric, 300, stat)],
        returned: "m0".into(),
        period: 300,
        threshold: None,
        comparison: None,
        unit: Some("Percent".into()),
    })
}

/// The rule's `threshold` annotation against the instance's metric, which
/// it watches from above (CPU, memory and disk used). Prometheus disk rules
/// are written on the free percentage, as their `value` is (see
/// `disk_usage`): 10% free is 90% used.
fn with_rule_threshold(q: Query, incident: &Incident) -> Query {
    let threshold = incident
        .alert
        .threshold
        .map(|t| match incident.kind.is_disk() {
            true => 100.0 - t,
            false => t,
        });
    Query {
        threshold,
        comparison: threshold.map(|_| Comparison::GreaterThan),
        ..q
    }
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
        let q = if incident.alert.source == AlertSource::Alertmanager {
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
        let end = crate::metrics::parse_time_ms(&incident.alert.state_timestamp)
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_else(Utc::now);
        Some(series(aws, q, end, incident.kind.is_disk()).await)
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

/// The window ends one period after `end` (the datapoint that breached
/// is stamped at its period's start), on a period boundary as
/// CloudWatch aligns datapoints, and spans [`WINDOW_SECONDS`]. For a disk
/// (`history`), the same one read spans the forecast's longer window: the
/// page shows its last [`WINDOW_SECONDS`], the forecast fits all of it.
async fn series(
    aws: &Aws,
    q: Query,
    end: DateTime<Utc>,
    history: bool,
) -> Result<MetricContext, String> {
    let period = i64::from(q.period.max(1));
    let end = (end.timestamp() + period).div_euclid(period) * period + period;
    let end = DateTime::from_timestamp(end, 0).unwrap_or_else(Utc::now);
    let page_start = end - chrono::Duration::seconds(WINDOW_SECONDS);
    if !history {
        return series_between(aws, q, page_start, end).await;
    }
    let start = end - chrono::Duration::seconds(forecast_window(q.period));
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
mod tests {
    use super::*;

    #[test]
    fn query_ids_follow_cloudwatchs_rule() {
        assert!(valid_id("m0"));
        assert!(valid_id("e1_total"));
        assert!(!valid_id("M0"));
        assert!(!valid_id("0m"));
        assert!(!valid_id(""));
        assert!(!valid_id("m0; drop"));
    }

    #[test]
    fn a_single_metric_alarm_asks_for_its_own_metric_stat_and_period() {
        let a = MetricAlarm::builder()
            .alarm_name("cpu")
            .namespace("AWS/EC2")
            .metric_name("CPUUtilization")
            .dimensions(Dimension::builder().name("InstanceId").value("i-1").build())
            .period(60)
            .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .threshold(90.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .build();
        let q = from_alarm(&a).unwrap();
        assert_eq!(q.label, "AWS/EC2/CPUUtilization");
        assert_eq!(q.period, 60);
        assert_eq!(q.threshold, Some(90.0));
        assert_eq!(q.comparison, Some(Comparison::GreaterThan));
        let stat = q.queries[0].metric_stat().unwrap();
        assert_eq!(stat.stat(), Some("Maximum"));
        assert_eq!(stat.metric().unwrap().dimensions()[0].value(), Some("i-1"));
    }

    #[test]
    fn a_metric_math_alarm_keeps_its_queries_and_refuses_a_bad_id() {
        let input = |id: &str| {
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace("CWAgent")
                                .metric_name("x")
                                .build(),
                        )
                        .period(120)
                        .stat("Sum")
                        .build(),
                )
                .return_data(false)
                .build()
        };
        let expr = MetricDataQuery::builder()
            .id("e1")
            .expression("m1 / m2 * 100")
            .return_data(true)
            .build();
        let a = MetricAlarm::builder()
            .metrics(input("m1"))
            .metrics(input("m2"))
            .metrics(expr.clone())
            .build();
        let q = from_alarm(&a).unwrap();
        assert_eq!(
            (q.returned.as_str(), q.label.as_str(), q.period),
            ("e1", "m1 / m2 * 100", 120)
        );
        let bad = MetricAlarm::builder()
            .metrics(input("Bad-Id"))
            .metrics(expr)
            .build();
        assert!(from_alarm(&bad).unwrap_err().contains("\"Bad-Id\""));
    }
}
