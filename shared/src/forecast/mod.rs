//! The predictive check (the runbook's chapter 14.5, `PredictiveAlerting`):
//! on a schedule, every opted-in instance's filesystems (`CWAgent
//! disk_used_percent`, one batched `GetMetricData`) are fitted with the
//! same robust fit as the page's forecast (`series/fit.rs`); a filesystem
//! whose forecast reaches 100% within `horizon_hours` becomes a `disk_filling` incident,
//! which goes through the same pipeline, idempotency and limits as any
//! other: one incident per filesystem per horizon, not one per run.
//!
//! Pure here; the reads are in `run.rs`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alert::{AlarmState, Alert, AlertSource, MetricRef};
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::series::{Forecast, Point, forecast, rfc3339};

#[cfg(feature = "aws")]
pub mod run;

/// The IAM actions of the check besides `DescribeInstances` (the fleet's
/// reads) and `GetMetricData` (the page's): finding the filesystems.
pub const PERMISSIONS: &[&str] = &["cloudwatch:ListMetrics"];

/// `GetMetricData` takes at most 500 queries a call.
pub const QUERIES_PER_CALL: usize = 500;

/// The scheduled invocation's event (`{"first_responder_forecast": {}}`).
pub fn is_scheduled_event(event: &serde_json::Value) -> bool {
    event.get("first_responder_forecast").is_some()
}

/// One filesystem's series, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Filesystem {
    pub instance: String,
    /// The metric's dimensions (InstanceId, path, device, fstype, ...).
    pub dimensions: Vec<(String, String)>,
    pub points: Vec<Point>,
}

impl Filesystem {
    fn dim(&self, k: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// A filesystem projected to fill within the horizon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AtRisk {
    pub instance: String,
    pub path: String,
    pub device: Option<String>,
    pub fstype: Option<String>,
    pub latest: f64,
    #[serde(flatten)]
    pub forecast: Forecast,
    /// The metric's dimensions, for the incident's own read.
    #[serde(skip)]
    pub dimensions: Vec<(String, String)>,
}

/// What `first-responder forecast --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub checked: String,
    pub horizon_hours: u32,
    /// Filesystems read.
    pub filesystems: usize,
    pub at_risk: Vec<AtRisk>,
}

/// The filesystems whose fitted line reaches 100% before `now + horizon`.
pub fn at_risk(filesystems: &[Filesystem], now: DateTime<Utc>, horizon_hours: u32) -> Check {
    let until = now + chrono::Duration::hours(i64::from(horizon_hours));
    let mut at_risk: Vec<AtRisk> = filesystems
        .iter()
        .filter_map(|fs| {
            let f = forecast(&fs.points)?;
            let full = f.full_at_time?;
            (full <= until).then(|| AtRisk {
                instance: fs.instance.clone(),
                path: fs.dim("path").unwrap_or("?").to_owned(),
                device: fs.dim("device").map(ToOwned::to_owned),
                fstype: fs.dim("fstype").map(ToOwned::to_owned),
                latest: fs.points.last().map(|p| p.value).unwrap_or_default(),
                forecast: f,
                dimensions: fs.dimensions.clone(),
            })
        })
        .collect();
    at_risk.sort_by(|a, b| a.forecast.full_at.cmp(&b.forecast.full_at));
    Check {
        checked: rfc3339(now),
        horizon_hours,
        filesystems: filesystems.len(),
        at_risk,
    }
}

/// The key the state table holds for one filesystem over a horizon.
pub fn hold_key(risk: &AtRisk) -> String {
    format!("disk_filling#{}#{}", risk.instance, risk.path)
}

/// A new occurrence for a filesystem at risk, first seen at `now`. The
/// scheduled check keeps the first one for a horizon (`StateStore::hold`),
/// so every run within it raises the same incident.
pub fn occurrence(risk: &AtRisk, now: DateTime<Utc>) -> String {
    format!(
        "forecast:{}:{}:{}",
        risk.instance,
        risk.path,
        now.timestamp()
    )
}

/// The incident for one filesystem at risk, for `occurrence`.
pub fn incident(
    risk: &AtRisk,
    occurrence: String,
    now: DateTime<Utc>,
) -> Result<Incident, crate::error::InputError> {
    let alert = Alert {
        source: AlertSource::Forecast,
        alarm_name: format!("disk-filling {} {}", risk.instance, risk.path),
        alarm_arn: None,
        state: AlarmState::Alarm,
        previous_state: Some(AlarmState::Ok),
        state_timestamp: rfc3339(now),
        reason: format!(
            "{} on {} is {:.1}% used and {}",
            risk.path,
            risk.instance,
            risk.latest,
            risk.forecast.describe(now)
        ),
        description: None,
        metric: Some(MetricRef {
            namespace: "CWAgent".into(),
            name: "disk_used_percent".into(),
            dimensions: risk.dimensions.iter().cloned().collect(),
            field: "forecast.dimensions".into(),
        }),
        alarm_rule: None,
        occurrence,
        value: Some(risk.latest),
        threshold: Some(100.0),
        region: None,
        account: None,
        origin: crate::alert::Origin::Aws,
        tags: Default::default(),
        generator_url: None,
        external_url: None,
    };
    let instance = crate::ids::InstanceId::parse("forecast.InstanceId", &risk.instance)?;
    let mut i = Incident::from_alert(alert)?;
    i.kind = IncidentKind::DiskFilling;
    i.resource = Resource::Instance(instance);
    debug_assert_eq!(i.transition, Transition::Firing);
    Ok(i)
}

#[cfg(test)]
mod tests;
