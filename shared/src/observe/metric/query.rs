//! What `GetMetricData` is asked for, built from the alarm's own
//! configuration (or, with no alarm, the instance's metric for the kind),
//! and how the alarm judges it.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::incident::{Incident, IncidentKind};
use crate::series::evaluation::{BandSide, ReasonData, TreatMissing, minute_floor};
use crate::series::{Comparison, Limit};

/// `MetricDataQuery.Id`: a lowercase letter, then letters, digits and `_`.
pub(super) fn valid_id(id: &str) -> bool {
    let mut c = id.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && id.len() <= 255
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// What to ask `GetMetricData` for, and how to label and judge it.
#[derive(Debug)]
pub(super) struct Query {
    pub(super) queries: Vec<MetricDataQuery>,
    /// The id of the series the alarm watches.
    pub(super) returned: String,
    pub(super) label: String,
    pub(super) period: u32,
    pub(super) threshold: Option<f64>,
    pub(super) comparison: Option<Comparison>,
    /// CloudWatch's unit, when the alarm or the query gives one.
    pub(super) unit: Option<String>,
    /// An alarm's own judgement: how it counts datapoints, and for an
    /// anomaly-detection alarm which side of the band it watches.
    pub(super) judge: Option<Judge>,
}

#[derive(Debug)]
pub(super) struct Judge {
    pub(super) periods: u32,
    pub(super) to_alarm: u32,
    pub(super) missing: TreatMissing,
    pub(super) band_side: Option<BandSide>,
    /// The alarm's `StateReasonData`, while it is in ALARM: the evaluation
    /// that fired it.
    pub(super) reason: Option<ReasonData>,
}

impl Judge {
    pub(super) fn of(a: &MetricAlarm) -> Self {
        let periods = a
            .evaluation_periods()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
            .max(1);
        let in_alarm = a.state_value().map(|v| v.as_str()) == Some("ALARM");
        Self {
            periods,
            to_alarm: a
                .datapoints_to_alarm()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(periods),
            missing: TreatMissing::parse(a.treat_missing_data()),
            band_side: a
                .comparison_operator()
                .and_then(|c| BandSide::parse(c.as_str())),
            reason: a
                .state_reason_data()
                .filter(|_| in_alarm)
                .and_then(ReasonData::parse),
        }
    }

    /// The end of the periods the alarm evaluated: from its reason data,
    /// else the minute of its state change.
    pub(super) fn end(&self, period: u32, changed: DateTime<Utc>) -> DateTime<Utc> {
        self.reason
            .as_ref()
            .and_then(|r| r.end(period, self.periods))
            .unwrap_or_else(|| minute_floor(changed))
    }

    pub(super) fn limit(&self, q: &Query) -> Option<Limit> {
        match (self.band_side, q.threshold, q.comparison) {
            (Some(side), _, _) => Some(Limit::Band(
                self.reason.as_ref().and_then(ReasonData::band)?,
                side,
            )),
            (None, Some(t), Some(c)) => Some(Limit::Threshold(t, c)),
            _ => None,
        }
    }
}

pub(super) fn from_alarm(a: &MetricAlarm) -> Result<Query, String> {
    let threshold = a.threshold();
    let comparison = a
        .comparison_operator()
        .and_then(|c| Comparison::parse(c.as_str()));
    if !a.metrics().is_empty() {
        // Metric math: the alarm's own queries, ids checked.
        let mut period = a.period().unwrap_or(0);
        let mut returned = None;
        let mut label = String::new();
        // An anomaly-detection alarm returns its metric and its band; the
        // band (`ThresholdMetricId`) is what the metric is judged against.
        let band = a.threshold_metric_id();
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
            if q.return_data().unwrap_or(true) && Some(id) != band {
                returned = Some(id.to_owned());
                label = q
                    .expression()
                    .map(ToOwned::to_owned)
                    .or_else(|| q.metric_stat().and_then(|s| s.metric()).map(metric_label))
                    .unwrap_or_else(|| id.to_owned());
            }
        }
        let returned =
            returned.ok_or_else(|| "the alarm's metric math returns no series".to_owned())?;
        // Only the watched series comes back; the rest are its inputs.
        let queries = a
            .metrics()
            .iter()
            .map(|q| {
                let mut q = q.clone();
                q.return_data = Some(q.id() == Some(returned.as_str()));
                q
            })
            .collect();
        return Ok(Query {
            queries,
            returned,
            label,
            period: u32::try_from(period).unwrap_or(60).max(1),
            threshold,
            comparison,
            unit: a.unit().map(|u| u.as_str().to_owned()),
            judge: Some(Judge::of(a)),
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
        judge: Some(Judge::of(a)),
    })
}

pub(super) fn single(metric: Metric, period: i32, stat: &str) -> MetricDataQuery {
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

pub(super) fn metric_label(m: &Metric) -> String {
    format!(
        "{}/{}",
        m.namespace().unwrap_or("?"),
        m.metric_name().unwrap_or("?")
    )
}

/// The CloudWatch agent's disk metric (or the predictive check's, by its
/// listed dimensions), at its 5-minute period, at its maximum.
pub(super) fn disk_query(
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
        judge: None,
    }
}

/// For an alert that is not a CloudWatch alarm (Alertmanager): the
/// instance's own CloudWatch metric for the kind, where there is one that
/// names the instance alone.
pub(super) fn for_instance(kind: IncidentKind, instance: &str) -> Option<Query> {
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
        judge: None,
    })
}

/// The rule's `threshold` annotation against the instance's metric, which
/// it watches from above (CPU, memory and disk used). Prometheus disk rules
/// are written on the free percentage, as their `value` is (see
/// `disk_usage`): 10% free is 90% used.
pub(super) fn with_rule_threshold(q: Query, incident: &Incident) -> Query {
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
