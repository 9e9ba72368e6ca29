//! The alarm of an incident as CloudWatch holds it (`DescribeAlarms`, metric
//! and composite alarms): read once, and shared by the check of an SNS
//! message's claim (`target::judge`), the metric context and the check
//! after the fix.

use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, Dimension, MetricAlarm};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::alert::AlertSource;
use crate::aws::{Aws, sdk_error};
use crate::incident::{Incident, Transition};

/// An alarm as `DescribeAlarms` found it.
#[derive(Clone, Debug)]
pub enum FoundAlarm {
    Metric(Box<MetricAlarm>),
    Composite(Box<CompositeAlarm>),
}

impl FoundAlarm {
    /// What the claim of a message is judged against (`target::judge`).
    pub fn seen(&self) -> crate::target::SeenAlarm {
        let (state, updated) = match self {
            Self::Metric(a) => (
                a.state_value().map(|v| v.as_str()),
                a.state_updated_timestamp(),
            ),
            Self::Composite(a) => (
                a.state_value().map(|v| v.as_str()),
                a.state_updated_timestamp(),
            ),
        };
        let state = match state {
            Some("OK") => crate::alert::AlarmState::Ok,
            Some("ALARM") => crate::alert::AlarmState::Alarm,
            _ => crate::alert::AlarmState::InsufficientData,
        };
        let metric = match self {
            Self::Metric(a) => {
                let dims = |d: &[Dimension]| {
                    d.iter()
                        .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                        .collect()
                };
                // The message's Trigger names the first metric a metric-math
                // alarm reads, as the EventBridge detail does.
                match (a.namespace(), a.metric_name()) {
                    (Some(ns), Some(n)) => {
                        Some((ns.to_owned(), n.to_owned(), dims(a.dimensions())))
                    }
                    _ => a.metrics().iter().find_map(|q| {
                        let m = q.metric_stat()?.metric()?;
                        Some((
                            m.namespace()?.to_owned(),
                            m.metric_name()?.to_owned(),
                            dims(m.dimensions()),
                        ))
                    }),
                }
            }
            Self::Composite(_) => None,
        };
        crate::target::SeenAlarm {
            state,
            updated_ms: updated.map(|t| t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)),
            metric,
        }
    }
}

/// The alarm of an incident, read once (`DescribeAlarms`) and shared by the
/// check of a message's claim and the metric context. None: nothing to
/// read (not a CloudWatch alarm, or nothing needs it).
pub type AlarmRead<'a> = Shared<BoxFuture<'a, Option<Result<Option<FoundAlarm>, String>>>>;

/// How long the check of a message's claim waits for CloudWatch before the
/// incident is left for a retry (nothing acts before it answers).
pub const CLAIM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The incident's alarm, read when the claim of its message must be
/// checked (`check`) or its metric will be (a firing CloudWatch alarm).
pub fn alarm_read<'a>(aws: &'a Aws, incident: &'a Incident, check: bool) -> AlarmRead<'a> {
    let source = incident.alert.source;
    let wanted = check
        || (incident.transition == Transition::Firing
            && source.is_cloudwatch()
            && source != AlertSource::Forecast);
    async move {
        match wanted {
            true => Some(describe_alarm(aws, &incident.alert.alarm_name).await),
            false => None,
        }
    }
    .boxed()
    .shared()
}

/// The alarm of that name, metric or composite, as CloudWatch has it
/// now (both types asked for: AWS returns metric alarms alone
/// otherwise).
pub async fn describe_alarm(aws: &Aws, name: &str) -> Result<Option<FoundAlarm>, String> {
    let out = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| format!("DescribeAlarms: {}", sdk_error(&e)))?;
    let metric = out
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name));
    let composite = out
        .composite_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name));
    Ok(metric
        .cloned()
        .map(|a| FoundAlarm::Metric(Box::new(a)))
        .or_else(|| {
            composite
                .cloned()
                .map(|a| FoundAlarm::Composite(Box::new(a)))
        }))
}

/// The metric alarm of that name, as CloudWatch has it now.
pub(crate) async fn alarm_now(aws: &Aws, name: &str) -> Result<MetricAlarm, String> {
    match describe_alarm(aws, name).await? {
        Some(FoundAlarm::Metric(a)) => Ok(*a),
        _ => Err("DescribeAlarms found no metric alarm of that name".to_owned()),
    }
}
