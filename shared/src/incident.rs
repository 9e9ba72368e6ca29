//! Incidents: an alert, routed to a playbook and to the resource it concerns.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::alert::{AlarmState, Alert, AlertSource};
use crate::error::InputError;
use crate::ids::{GroupName, InstanceId, shown};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    HighCpu,
    DiskFull,
    MemoryPressure,
    ServiceDown,
    /// The predictive check: a filesystem projected to fill within the
    /// horizon (`forecast`); never routed from an alert.
    DiskFilling,
    /// No playbook matches the alert: notify that nothing was done.
    Unrouted,
}

impl IncidentKind {
    pub const ALL: [Self; 6] = [
        Self::HighCpu,
        Self::DiskFull,
        Self::MemoryPressure,
        Self::ServiceDown,
        Self::DiskFilling,
        Self::Unrouted,
    ];

    /// Kinds about a filesystem filling up (a forecast applies).
    pub fn is_disk(self) -> bool {
        matches!(self, Self::DiskFull | Self::DiskFilling)
    }

    /// Whether the metric its alerts fire on is a percentage (CPU, memory,
    /// the disk's space used): a status check's 0 or 1 is not.
    pub fn measures_percent(self) -> bool {
        matches!(
            self,
            Self::HighCpu | Self::MemoryPressure | Self::DiskFull | Self::DiskFilling
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HighCpu => "high_cpu",
            Self::DiskFull => "disk_full",
            Self::MemoryPressure => "memory_pressure",
            Self::ServiceDown => "service_down",
            Self::DiskFilling => "disk_filling",
            Self::Unrouted => "unrouted",
        }
    }

    /// Parses a kind as written in configuration (`none` for no playbook).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::Unrouted),
            _ => Self::ALL.into_iter().find(|k| k.as_str() == s),
        }
    }

    /// Short title for subjects and headings.
    pub fn title(self) -> &'static str {
        match self {
            Self::HighCpu => "High CPU",
            Self::DiskFull => "Disk full",
            Self::MemoryPressure => "Memory pressure",
            Self::ServiceDown => "Service down",
            Self::DiskFilling => "Disk filling",
            Self::Unrouted => "Alert",
        }
    }

    /// Default routing: CloudWatch metric names and the runbook's Prometheus
    /// alert names (chapter 14.5), plus node-exporter's filesystem alerts.
    pub fn route(metric_or_alert: &str) -> Self {
        match metric_or_alert {
            "CPUUtilization" | "HighCPUUsage" => Self::HighCpu,
            "disk_used_percent"
            | "DiskSpaceLow"
            | "NodeFilesystemSpaceFillingUp"
            | "NodeFilesystemAlmostOutOfSpace"
            | "NodeFilesystemFilesFillingUp"
            | "NodeFilesystemAlmostOutOfFiles" => Self::DiskFull,
            "mem_used_percent" | "HighMemoryUsage" => Self::MemoryPressure,
            "ServiceDown" => Self::ServiceDown,
            s if s.starts_with("StatusCheckFailed") => Self::ServiceDown,
            _ => Self::Unrouted,
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Routing overrides from configuration: a metric, alert or alarm name → kind.
pub type Routes = BTreeMap<String, IncidentKind>;

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

/// A scrape target's address (Prometheus `instance` label): resolved to an
/// instance through EC2 by private IP or private DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivateAddress {
    Ip(IpAddr),
    DnsName(String),
}

impl fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::DnsName(n) => f.write_str(n),
        }
    }
}

impl PrivateAddress {
    /// `host:port`, `[v6]:port` or a bare host.
    pub fn from_instance_label(field: &str, label: &str) -> Result<Self, InputError> {
        let bad = || {
            InputError::field(
                field,
                format!(
                    "{} is not the host:port of a scrape target (IP address or DNS name)",
                    shown(label)
                ),
            )
        };
        let host = if let Some(rest) = label.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
            if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(is_port)) {
                return Err(bad());
            }
            h
        } else {
            match label.rsplit_once(':') {
                Some((h, port)) if is_port(port) => h,
                Some(_) => return Err(bad()),
                None => label,
            }
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if is_dns_name(host) {
            return Ok(Self::DnsName(host.to_ascii_lowercase()));
        }
        Err(bad())
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|p| p <= 65535)
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// What the incident is about.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Instance(InstanceId),
    /// To be resolved to an instance through EC2.
    Address(PrivateAddress),
    /// A group-level alarm (`AutoScalingGroupName` dimension).
    Group(GroupName),
    /// No EC2 resource in the alert.
    None,
}

impl Resource {
    pub fn describe(&self) -> String {
        match self {
            Self::Instance(i) => i.to_string(),
            Self::Address(a) => format!("address {a}"),
            Self::Group(g) => format!("group {g}"),
            Self::None => "no EC2 resource".into(),
        }
    }
}

/// Group names that come from an event are held to the characters real
/// names use, so hostile text stops here.
fn event_group_name(field: &str, value: &str) -> Result<GroupName, InputError> {
    let ok = !value.is_empty()
        && !value.contains("..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@+=: ".contains(&b));
    if !ok {
        return Err(InputError::field(
            field,
            format!(
                "{} is not an Auto Scaling group name (letters, digits and -_.@+=: only)",
                shown(value)
            ),
        ));
    }
    GroupName::parse(field, value)
}

/// Namespaces whose metrics the default routing table speaks of (EC2 and the
/// CloudWatch agent); `CPUUtilization` of an RDS database is not ours.
pub const EC2_NAMESPACES: [&str; 2] = ["AWS/EC2", "CWAgent"];

fn resource_of(alert: &Alert, kind: IncidentKind) -> Result<Resource, InputError> {
    let (dims, field) = match &alert.metric {
        Some(m) => (&m.dimensions, m.field.clone()),
        None => (&alert.tags, "alarmTags".to_owned()),
    };
    if alert.source.is_cloudwatch() {
        if let Some(v) = dims.get("InstanceId") {
            return Ok(Resource::Instance(InstanceId::parse(
                &format!("{field}.InstanceId"),
                v,
            )?));
        }
        if let Some(v) = dims.get("AutoScalingGroupName") {
            return Ok(Resource::Group(event_group_name(
                &format!("{field}.AutoScalingGroupName"),
                v,
            )?));
        }
        // A composite alarm may name its resource in its tags.
        if alert.metric.is_none() {
            if let Some(v) = alert.tags.get("InstanceId") {
                return Ok(Resource::Instance(InstanceId::parse(
                    "alarmTags.InstanceId",
                    v,
                )?));
            }
            if let Some(v) = alert.tags.get("AutoScalingGroupName") {
                return Ok(Resource::Group(event_group_name(
                    "alarmTags.AutoScalingGroupName",
                    v,
                )?));
            }
        }
        // Routed to an EC2 playbook, yet the metric names no EC2 resource:
        // nothing this alert could be acted on, so it is refused.
        if alert.metric.is_some() && kind != IncidentKind::Unrouted {
            let names: Vec<&str> = dims.keys().map(String::as_str).collect();
            let what = if names.is_empty() {
                "no dimension".to_owned()
            } else {
                shown(&names.join(","))
            };
            return Err(InputError::field(
                field,
                format!(
                    "{what} names no EC2 resource (expected an InstanceId or AutoScalingGroupName dimension)"
                ),
            ));
        }
        return Ok(Resource::None);
    }
    if let Some(v) = dims.get("instance_id") {
        return Ok(Resource::Instance(InstanceId::parse(
            &format!("{field}.instance_id"),
            v,
        )?));
    }
    if let Some(v) = dims.get("instance") {
        return Ok(Resource::Address(PrivateAddress::from_instance_label(
            &format!("{field}.instance"),
            v,
        )?));
    }
    Ok(Resource::None)
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// Stable for one occurrence of an alert, so a redelivery maps to the same incident.
    pub id: String,
    pub kind: IncidentKind,
    pub transition: Transition,
    pub resource: Resource,
    pub alert: Alert,
}

impl Incident {
    pub fn from_alert(alert: Alert) -> Result<Self, InputError> {
        Self::routed(alert, &Routes::new())
    }

    /// Routes with configuration overrides: an entry for the alarm name wins
    /// over one for the metric (or alert) name, which wins over the defaults.
    pub fn routed(alert: Alert, routes: &Routes) -> Result<Self, InputError> {
        let metric_name = alert.metric.as_ref().map(|m| m.name.as_str());
        let ours = alert.metric.as_ref().is_some_and(|m| {
            !alert.source.is_cloudwatch() || EC2_NAMESPACES.contains(&m.namespace.as_str())
        });
        let kind = routes
            .get(&alert.alarm_name)
            .copied()
            .or_else(|| metric_name.and_then(|n| routes.get(n).copied()))
            .unwrap_or_else(|| match metric_name {
                Some(n) if ours => IncidentKind::route(n),
                _ => IncidentKind::Unrouted,
            });
        let resource = resource_of(&alert, kind)?;
        Ok(Self {
            id: incident_id(&alert.occurrence),
            kind,
            transition: Transition::of(alert.state, alert.previous_state),
            resource,
            alert,
        })
    }

    /// Where this alert's resolution is recorded for the check after the
    /// fix (see [`resolution_key`]): an Alertmanager
    /// resolution under the id its firing delivery got (the same
    /// fingerprint and `startsAt`), a CloudWatch alarm under its name.
    pub fn resolution_key(&self, place: &str) -> Option<String> {
        let firing = match self.alert.source {
            AlertSource::Alertmanager => self
                .alert
                .occurrence
                .rsplit_once('\n')
                .map(|(base, _status)| incident_id(&format!("{base}\nfiring")))?,
            _ => self.id.clone(),
        };
        resolution_key(
            self.alert.source.as_str(),
            &self.alert.alarm_name,
            &firing,
            place,
        )
    }

    pub fn instance(&self) -> Option<&InstanceId> {
        match &self.resource {
            Resource::Instance(i) => Some(i),
            _ => None,
        }
    }
}

/// The key of an alert's resolution in the state table: the firing
/// incident's id for Alertmanager (its resolved delivery has its own id),
/// `alarm:NAME` for a CloudWatch alarm (its OK is a new state change);
/// None for the predictive check, which nothing resolves.
/// `place` is where the alert lives (`Target::place`, or `home`): an
/// alarm of one name in two accounts or regions is two alarms.
pub fn resolution_key(
    source: &str,
    alarm_name: &str,
    firing_incident: &str,
    place: &str,
) -> Option<String> {
    legacy_resolution_key(source, alarm_name, firing_incident).map(|k| format!("{place}#{k}"))
}

/// The key of the release before, without the place: read when the new
/// one finds nothing, for one release, so a resolution recorded before an
/// upgrade still counts.
pub fn legacy_resolution_key(
    source: &str,
    alarm_name: &str,
    firing_incident: &str,
) -> Option<String> {
    match source {
        "alertmanager" => Some(firing_incident.to_owned()),
        "forecast" => None,
        _ => Some(format!("alarm:{alarm_name}")),
    }
}

/// Where a stored incident acted, as keys name it (`Target::place`).
pub fn place_of(account_id: Option<&str>, region: Option<&str>) -> String {
    match (account_id, region) {
        (Some(a), Some(r)) => format!("{a}/{r}"),
        _ => "home".to_owned(),
    }
}

fn incident_id(occurrence: &str) -> String {
    let digest = Sha256::digest(occurrence.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("inc-{hex}")
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventBridge => "eventbridge",
            Self::Sns => "sns",
            Self::AlarmAction => "alarm_action",
            Self::Alertmanager => "alertmanager",
            Self::Forecast => "forecast",
        }
    }
}

#[cfg(test)]
mod shipped_rules;
#[cfg(test)]
mod tests;
