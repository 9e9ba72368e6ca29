//! What an action's decision reads and where it puts what it decided: the
//! context the planner hands each listed action, and the helpers several
//! actions share (opt-in, the alerted filesystem, whether an instance is
//! down). Below the actions: it names no action's own types, and nothing
//! above them (plan, config, playbooks).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ActionName, ActionParams, Step};
use crate::disk::DiskTarget;
use crate::ids::InstanceId;
use crate::incident::{Incident, IncidentKind};
use crate::observed::{InstanceState, Observed};

/// The engine-wide settings an action reads (from `Config`, which builds
/// them: `Config::settings`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// The opt-in tag a resource must carry to be changed (`OPT_IN_TAG`).
    pub opt_in: Option<(String, String)>,
    pub max_desired_capacity: Option<i32>,
    pub max_snapshots_per_incident: u32,
    pub scale_out_cooldown: Duration,
    /// How long an SSM command may take.
    pub diagnostics_timeout: Duration,
}

/// What an action decided, with why (`reason` when it acts) and for what.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    pub name: ActionName,
    pub target: String,
    pub reason: String,
    pub decision: Decision,
}

/// The incident's kind, as the decisions see it: its stages, its actions'
/// parameters (which it derefs to) and its kind-wide settings.
pub struct Kind<'a> {
    pub kind: IncidentKind,
    pub stages: &'a [Vec<ActionName>],
    pub params: &'a ActionParams,
    pub act_when_ssm_unreachable: bool,
}

impl std::ops::Deref for Kind<'_> {
    type Target = ActionParams;
    fn deref(&self) -> &ActionParams {
        self.params
    }
}

/// One incident's decisions being made: what they read (the incident, its
/// kind's playbook) and what they decided, in order, with the notes for
/// the report.
pub struct Context<'a> {
    pub incident: &'a Incident,
    pub kind: Kind<'a>,
    pub act_when_ssm_unreachable: bool,
    pub decided: Vec<Decided>,
    pub notes: Vec<String>,
}

impl<'a> Context<'a> {
    pub fn new(incident: &'a Incident, kind: Kind<'a>) -> Self {
        Self {
            incident,
            act_when_ssm_unreachable: kind.act_when_ssm_unreachable,
            kind,
            decided: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The kind's playbook (always there once decisions are asked for).
    pub fn playbook(&self, _: &Settings) -> Option<&Kind<'a>> {
        Some(&self.kind)
    }

    /// Whether the kind's playbook lists this action.
    pub fn runs(&self, _: &Settings, name: ActionName) -> bool {
        self.kind.stages.iter().flatten().any(|a| *a == name)
    }

    /// The stage an action runs in, if listed.
    pub fn stage_of(&self, name: ActionName) -> Option<usize> {
        self.kind.stages.iter().position(|s| s.contains(&name))
    }

    /// Records a decision for an action the playbook lists.
    pub fn push(
        &mut self,
        settings: &Settings,
        name: ActionName,
        target: impl Into<String>,
        reason: impl Into<String>,
        decision: Decision,
    ) {
        if !self.runs(settings, name) {
            return;
        }
        let reason = match &decision {
            Decision::Do(_) => reason.into(),
            _ => String::new(),
        };
        self.decided.push(Decided {
            name,
            target: target.into(),
            reason,
            decision,
        });
    }

    /// A note, once.
    pub fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Do(Step),
    /// Decided, and held until a person approves it: its playbook table
    /// says `approval = "required"` (`crate::approval`).
    Hold(Step),
    /// Decided, and not carried out: its mode is `observe` here. The page
    /// says what it would have done; its check judges whether it was needed.
    Observe(Step),
    Skip(String),
    Fail(String),
}

/// Whether tags carry the opt-in tag (or none is configured).
pub fn is_opted_in(tags: &BTreeMap<String, String>, config: &Settings) -> bool {
    opted_in("", tags, config).is_ok()
}

/// Whether a resource is in scope for changes: it carries the opt-in tag
/// (when one is configured). Err holds the reason it is not.
pub(crate) fn opted_in(
    what: &str,
    tags: &BTreeMap<String, String>,
    config: &Settings,
) -> Result<(), String> {
    match &config.opt_in {
        None => Ok(()),
        Some((k, v)) if tags.get(k) == Some(v) => Ok(()),
        Some((k, v)) => Err(format!(
            "{what} does not carry the opt-in tag {k}={v}: diagnostics and notification only"
        )),
    }
}

/// Percent used of the filesystem the alert is about. CloudWatch's
/// `disk_used_percent` is that already; Prometheus disk rules (the runbook's
/// `DiskSpaceLow`, node-exporter's `NodeFilesystem*`) alert on the percent
/// still *available*, so their value is turned around.
pub fn disk_usage(incident: &Incident) -> Option<f64> {
    let v = incident.alert.value?;
    // Only the Prometheus rules fire on the free percentage: CloudWatch's
    // alarms and the predictive check read `disk_used_percent` (the check
    // was once counted as free, and its page said "Disk filling 15.0%" for
    // a disk 85% used).
    match incident.alert.source {
        crate::alert::AlertSource::Alertmanager => Some((100.0 - v).clamp(0.0, 100.0)),
        crate::alert::AlertSource::EventBridge
        | crate::alert::AlertSource::Sns
        | crate::alert::AlertSource::AlarmAction
        | crate::alert::AlertSource::Forecast => Some(v),
    }
}

/// The filesystem the alert is about (mount point, device, type), from the
/// metric's dimensions or the alert's labels.
pub(crate) fn disk_target(incident: &Incident) -> DiskTarget {
    let labels = incident
        .alert
        .metric
        .as_ref()
        .map(|m| m.dimensions.clone())
        .unwrap_or_else(|| incident.alert.tags.clone());
    DiskTarget::from_labels(&labels)
}

/// A cleanup on the instance: done only on an opted-in instance, and only
/// where cleaning `dirs` frees space on the alerted filesystem (a /data
/// alert must not delete files on /), decided from the instance's block
/// devices when it reported them.
pub(crate) fn on_alerted_filesystem(
    p: &Context,
    instance: &InstanceId,
    observed: &Observed,
    config: &Settings,
    step: Step,
    dirs: &[&str],
) -> Decision {
    let layout = match &observed.layout {
        Some(Ok(l)) => Some(l.as_slice()),
        _ => None,
    };
    let helps = match disk_target(p.incident).mount.as_deref() {
        Some(m) => crate::disk::frees_space_on(dirs, m, layout),
        None => Ok(()),
    };
    match (instance_opted_in(instance, observed, config), helps) {
        (Err(d), _) => d,
        (Ok(_), Err(why)) => Decision::Skip(why),
        (Ok(_), Ok(())) => Decision::Do(step),
    }
}

/// Whether a service-down alert is evidence that the instance itself is
/// down. Ok(why) lets replace/reboot go ahead; Err(why) skips them.
/// CloudWatch's `StatusCheckFailed*` alarms are EC2's own word; a Prometheus
/// `up == 0` only says a scrape failed (a security group, a dead exporter),
/// so EC2's status checks must agree.
pub(crate) fn instance_is_down(p: &Context<'_>, observed: &Observed) -> Result<String, String> {
    if p.incident.alert.source.is_cloudwatch() && p.incident.kind == IncidentKind::ServiceDown {
        return Ok("EC2's status check alarm fired".into());
    }
    let scrape = "not replacing or rebooting on a scrape failure alone";
    let health = match &observed.health {
        None => return Err(format!("EC2 status checks were not read: {scrape}")),
        Some(Err(why)) => {
            return Err(format!(
                "EC2 status checks could not be read ({why}): {scrape}"
            ));
        }
        Some(Ok(h)) => h,
    };
    if let Some(why) = health.impaired() {
        return Ok(why);
    }
    if p.act_when_ssm_unreachable {
        match &observed.ssm_online {
            Some(Ok(false)) => {
                return Ok(format!(
                    "EC2 status checks pass ({}), but SSM cannot reach the instance either",
                    health.summary()
                ));
            }
            Some(Err(why)) => {
                return Err(format!(
                    "EC2 status checks pass ({}) and SSM's view could not be read ({why}): {scrape}",
                    health.summary()
                ));
            }
            _ => {}
        }
    }
    Err(format!(
        "EC2 status checks pass: the exporter, not the instance, is down ({})",
        health.summary()
    ))
}

/// For replace_instance and reboot: Some(why it is down), or None after
/// recording the skip (and, when EC2 says the instance is healthy, the note
/// on what to look at instead).
pub(crate) fn down_or_skip(
    p: &mut Context<'_>,
    name: ActionName,
    instance: &InstanceId,
    observed: &Observed,
    settings: &Settings,
) -> Option<String> {
    match instance_is_down(p, observed) {
        Ok(why) => Some(why),
        Err(why) => {
            p.push(
                settings,
                name,
                instance.to_string(),
                "",
                Decision::Skip(why),
            );
            if observed.health.as_ref().is_some_and(|h| h.is_ok()) {
                p.note(format!(
                    "Prometheus cannot scrape {instance}, but EC2 reports the instance healthy: look at the exporter on it (systemctl status node_exporter), the security group or network ACL between Prometheus and its port, and Prometheus's Targets page for the scrape error"
                ));
            }
            None
        }
    }
}

/// SSM commands run as root on the instance, so they are sent only to an
/// opted-in instance (the IAM policy allows no other): Err is the decision
/// for an instance that is not.
pub(crate) fn commands_allowed(
    instance: &InstanceId,
    observed: &Observed,
    config: &Settings,
) -> Result<(), Decision> {
    match instance_opted_in(instance, observed, config) {
        Ok(_) => Ok(()),
        Err(Decision::Skip(why)) => Err(Decision::Skip(format!(
            "{why}; SSM commands are sent to opted-in instances only"
        ))),
        Err(d) => Err(d),
    }
}

/// The instance's own opt-in, for actions that change it.
pub(crate) fn instance_opted_in(
    instance: &InstanceId,
    observed: &Observed,
    config: &Settings,
) -> Result<InstanceState, Decision> {
    match &observed.instance {
        Err(why) => Err(Decision::Fail(format!(
            "could not describe {instance}: {why}"
        ))),
        Ok(None) => Err(Decision::Fail(format!(
            "{instance} was not found in this account and region"
        ))),
        Ok(Some(s)) => match opted_in(&format!("instance {instance}"), &s.tags, config) {
            Ok(()) => Ok(s.clone()),
            Err(why) => Err(Decision::Skip(why)),
        },
    }
}

pub(crate) fn incident_value(p: &Context) -> Option<f64> {
    p.incident.alert.value
}
