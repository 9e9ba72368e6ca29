//! The planner: event + observed AWS state + configuration → plan.
//! Pure: no I/O, so dry-run, `first-responder plan` and tests share it.
//! Which actions a kind runs, and in what stages, comes from the playbooks
//! (`infra/playbooks.toml`); this module decides each one for the resources
//! at hand.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Config;
use crate::disk::{DiskTarget, Filesystem, new_size, resolve_volume};
use crate::ids::{GroupName, InstanceId, ServiceName, VolumeId};
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::report::{ActionReport, IncidentReport, Severity, Status};

pub use crate::commands::HIGH_CPU_DIAGNOSTICS;
pub use crate::disk::BlockDev;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Snapshot,
    CollectDiagnostics,
    CollectEvidence,
    ScaleOut,
    CleanupTemp,
    ArchiveLogs,
    ExpandVolume,
    RestartService,
    ReplaceInstance,
    Reboot,
    Notify,
}

impl ActionName {
    pub const ALL: [Self; 11] = [
        Self::Snapshot,
        Self::CollectDiagnostics,
        Self::CollectEvidence,
        Self::ScaleOut,
        Self::CleanupTemp,
        Self::ArchiveLogs,
        Self::ExpandVolume,
        Self::RestartService,
        Self::ReplaceInstance,
        Self::Reboot,
        Self::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::CollectDiagnostics => "collect_diagnostics",
            Self::CollectEvidence => "collect_evidence",
            Self::ScaleOut => "scale_out",
            Self::CleanupTemp => "cleanup_temp",
            Self::ArchiveLogs => "archive_logs",
            Self::ExpandVolume => "expand_volume",
            Self::RestartService => "restart_service",
            Self::ReplaceInstance => "replace_instance",
            Self::Reboot => "reboot",
            Self::Notify => "notify",
        }
    }
}

/// Which fixed diagnostics to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostics {
    Cpu,
    Memory,
}

/// Everything the executor needs to grow one volume and its filesystem.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    pub instance: InstanceId,
    pub volume: VolumeId,
    /// Block-device mapping letters (`f` of /dev/sdf), for Xen instances.
    pub xen_letters: Option<String>,
    pub from_gib: i32,
    pub to_gib: i32,
    /// The alert's mount point: read in `df` output, never put in a command.
    pub mount: Option<String>,
    /// Expand only when usage after the cleanup is at or above this.
    pub expand_at: f64,
    /// The usage the alert reported, for when the instance reports none.
    pub alert_usage: Option<f64>,
    pub modification_wait: Duration,
    /// How the volume was traced from the mount point.
    pub how: String,
}

/// A fully specified AWS operation the executor can carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Every attached volume of the instance at one instant
    /// (`CreateSnapshots`: crash-consistent across them), less the volumes
    /// over the per-incident cap.
    Snapshot {
        instance: InstanceId,
        /// The volumes snapshotted, with their device names.
        volumes: Vec<(VolumeId, Option<String>)>,
        /// Left out: the boot volume, and data volumes, over the cap.
        exclude_boot: bool,
        exclude: Vec<VolumeId>,
    },
    CollectDiagnostics {
        instance: InstanceId,
        set: Diagnostics,
    },
    CollectEvidence {
        instance: InstanceId,
        /// The console output too: allowed for opted-in instances only.
        console: bool,
    },
    ScaleOut {
        group: GroupName,
        from: i32,
        to: i32,
        max: i32,
    },
    CleanupTemp {
        instance: InstanceId,
        days: u32,
    },
    ArchiveLogs {
        instance: InstanceId,
        days: u32,
        bucket: Option<String>,
    },
    ExpandVolume(Box<Expansion>),
    RestartService {
        instance: InstanceId,
        service: ServiceName,
    },
    ReplaceInstance {
        instance: InstanceId,
        group: GroupName,
    },
    Reboot {
        instance: InstanceId,
    },
    Notify {
        topic_arn: String,
    },
}

impl Step {
    /// Changes the fleet (as opposed to reading it or telling people).
    pub fn is_mutating(&self) -> bool {
        !matches!(
            self,
            Self::CollectDiagnostics { .. } | Self::CollectEvidence { .. } | Self::Notify { .. }
        )
    }

    /// Evidence: creates something (a snapshot) but changes nothing of the
    /// fleet, so the breaker, flap guard and cooldowns do not count it.
    pub fn is_evidence(&self) -> bool {
        matches!(self, Self::Snapshot { .. })
    }

    /// The change in words, as a verb phrase ("add one instance to web-asg
    /// (desired 1 -> 2)"): what a dry run says it would do.
    pub fn describe(&self) -> String {
        match self {
            Self::Snapshot {
                instance, volumes, ..
            } => format!(
                "snapshot {} of {instance} ({})",
                match volumes.len() {
                    1 => "the volume".to_owned(),
                    n => format!("all {n} volumes"),
                },
                volumes
                    .iter()
                    .map(|(v, _)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::CollectDiagnostics { instance, .. } => {
                format!("collect diagnostics on {instance} through SSM")
            }
            Self::CollectEvidence { instance, .. } => {
                format!("read the status checks and console output of {instance}")
            }
            Self::ScaleOut {
                group, from, to, ..
            } => format!("add one instance to {group} (desired {from} -> {to})"),
            Self::CleanupTemp { instance, days } => format!(
                "delete regular files older than {days} days under /tmp and /var/tmp on {instance}"
            ),
            Self::ArchiveLogs { instance, days, .. } => {
                format!("compress rotated logs older than {days} days under /var/log on {instance}")
            }
            Self::ExpandVolume(e) => format!(
                "grow {} from {} to {} GiB, then its partition and filesystem",
                e.volume, e.from_gib, e.to_gib
            ),
            Self::RestartService { instance, service } => {
                format!("restart {service} on {instance}")
            }
            Self::ReplaceInstance { instance, group } => {
                format!("mark {instance} Unhealthy so {group} replaces it")
            }
            Self::Reboot { instance } => format!("reboot {instance}"),
            Self::Notify { topic_arn } => format!("publish the notification to {topic_arn}"),
        }
    }

    /// What this step means to leave behind, recorded with its claim so a
    /// later delivery can check AWS if this one dies half-way.
    pub fn intent(&self) -> String {
        match self {
            Self::ScaleOut { to, .. } => format!("to={to}"),
            Self::ExpandVolume(e) => format!("to={}", e.to_gib),
            _ => String::new(),
        }
    }

    /// The cooldown this step takes: (action, resource, how long).
    pub fn cooldown(&self, config: &Config) -> Option<(&'static str, String, Duration)> {
        let pb = &config.playbooks;
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        let (action, resource, d) = match self {
            Self::ScaleOut { group, .. } => {
                ("scale_out", group.to_string(), config.scale_out_cooldown)
            }
            Self::ExpandVolume(e) => (
                "expand_volume",
                e.volume.to_string(),
                Duration::from_secs(u64::from(pb.disk_full.expand_cooldown_hours) * 3600),
            ),
            Self::RestartService { instance, .. } => (
                "restart_service",
                instance.to_string(),
                minutes(pb.memory_pressure.restart_cooldown_minutes),
            ),
            Self::ReplaceInstance { group, .. } => (
                "replace_instance",
                group.to_string(),
                minutes(pb.service_down.replace_cooldown_minutes),
            ),
            Self::Reboot { instance } => (
                "reboot",
                instance.to_string(),
                minutes(pb.service_down.replace_cooldown_minutes),
            ),
            _ => return None,
        };
        (!d.is_zero()).then_some((action, resource, d))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Do(Step),
    Skip(String),
    Fail(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedAction {
    pub name: ActionName,
    pub target: String,
    pub reason: String,
    pub decision: Decision,
    /// The playbook stage it runs in; stages run in order, actions within
    /// one concurrently. The notification comes after every stage.
    pub stage: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttachedVolume {
    pub id: VolumeId,
    pub device: Option<String>,
    pub size_gib: Option<i32>,
    pub volume_type: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    pub name: GroupName,
    pub desired: i32,
    pub min: i32,
    pub max: i32,
    pub tags: BTreeMap<String, String>,
}

/// The instance itself, as DescribeInstances shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceState {
    pub tags: BTreeMap<String, String>,
    pub root_device: Option<String>,
    /// running, stopped, ...
    pub state: Option<String>,
}

/// EC2's own view of an instance (`DescribeInstanceStatus` with all
/// instances): its state and the two status checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceHealth {
    /// running, stopped, ...
    pub state: Option<String>,
    /// ok, impaired, initializing, insufficient-data, not-applicable
    pub system: Option<String>,
    pub instance: Option<String>,
}

impl InstanceHealth {
    /// Some(why) when EC2 itself says the instance is down: a status check
    /// `impaired`, or a state other than running. `initializing` and
    /// `insufficient-data` are not evidence of anything.
    pub fn impaired(&self) -> Option<String> {
        let state = self.state.as_deref().unwrap_or("unknown");
        if state != "running" {
            return Some(format!("EC2 reports the instance {state}"));
        }
        match (self.system.as_deref(), self.instance.as_deref()) {
            (Some("impaired"), _) => Some("EC2's system status check is impaired".into()),
            (_, Some("impaired")) => Some("EC2's instance status check is impaired".into()),
            _ => None,
        }
    }

    fn summary(&self) -> String {
        format!(
            "state {}, system check {}, instance check {}",
            self.state.as_deref().unwrap_or("unknown"),
            self.system.as_deref().unwrap_or("unknown"),
            self.instance.as_deref().unwrap_or("unknown")
        )
    }
}

/// Whether tags carry the opt-in tag (or none is configured).
pub fn is_opted_in(tags: &BTreeMap<String, String>, config: &Config) -> bool {
    opted_in("", tags, config).is_ok()
}

/// Whether a resource is in scope for changes: it carries the opt-in tag
/// (when one is configured). Err holds the reason it is not.
fn opted_in(what: &str, tags: &BTreeMap<String, String>, config: &Config) -> Result<(), String> {
    match &config.opt_in {
        None => Ok(()),
        Some((k, v)) if tags.get(k) == Some(v) => Ok(()),
        Some((k, v)) => Err(format!(
            "{what} does not carry the opt-in tag {k}={v}: diagnostics and notification only"
        )),
    }
}

/// What the executor read from AWS before planning. An `Err` holds why the
/// read failed; the actions depending on it fail with that reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The kill switch (`KILL_SWITCH_PARAMETER`): Ok(true) when on. A failed
    /// read is an Err and counts as on: when in doubt, only notify.
    pub kill_switch: Result<bool, String>,
    /// The instance behind a private address (Prometheus `instance` label).
    pub resolved: Option<Result<InstanceId, String>>,
    /// How the address was resolved (which VPC matched), for the report.
    pub resolved_in: Option<String>,
    pub volumes: Result<Vec<AttachedVolume>, String>,
    pub group: Result<Option<GroupState>, String>,
    /// Tags and state of the instance, for the playbooks that act on it.
    pub instance: Result<Option<InstanceState>, String>,
    /// The instance's block devices (`lsblk` through SSM), read only when
    /// the alert's device cannot be traced to a volume from the API alone.
    pub layout: Option<Result<Vec<BlockDev>, String>>,
    /// EC2's status checks, read for a Prometheus `ServiceDown`: a scrape
    /// failure alone never reboots or replaces a healthy instance.
    pub health: Option<Result<InstanceHealth, String>>,
    /// Whether SSM reaches the instance (its agent online), read only when
    /// `service_down.act_when_ssm_unreachable` is on.
    pub ssm_online: Option<Result<bool, String>>,
}

impl Observed {
    /// Every read failed for this reason (the reads ran out of time): the
    /// actions that need them fail with it, the notification goes out.
    pub fn failed(why: &str) -> Self {
        Self {
            kill_switch: Ok(false),
            resolved: Some(Err(why.to_owned())),
            resolved_in: None,
            volumes: Err(why.to_owned()),
            group: Err(why.to_owned()),
            instance: Err(why.to_owned()),
            layout: Some(Err(why.to_owned())),
            health: Some(Err(why.to_owned())),
            ssm_online: None,
        }
    }

    /// For incidents that need no AWS state.
    pub fn nothing() -> Self {
        Self {
            kill_switch: Ok(false),
            resolved: None,
            resolved_in: None,
            volumes: Ok(Vec::new()),
            group: Ok(None),
            instance: Ok(None),
            layout: None,
            health: None,
            ssm_online: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub incident: Incident,
    pub severity: Severity,
    /// The instance acted on: from the alert, or resolved from its address.
    pub instance: Option<InstanceId>,
    pub group: Option<GroupName>,
    pub notes: Vec<String>,
    pub actions: Vec<PlannedAction>,
    pub dry_run: bool,
    /// The kind's manual steps, from the playbooks.
    pub next_steps: Vec<String>,
}

impl Plan {
    pub fn next_steps(&self) -> &[String] {
        &self.next_steps
    }

    /// The plan as a report, every action `planned`, `skipped` or `failed`.
    pub fn to_report(&self) -> IncidentReport {
        let actions = self.actions.iter().map(decided).collect();
        self.report_with(actions)
    }

    pub fn report_with(&self, actions: Vec<ActionReport>) -> IncidentReport {
        let i = &self.incident;
        IncidentReport {
            id: i.id.clone(),
            kind: i.kind,
            alarm_name: i.alert.alarm_name.clone(),
            alarm_time: i.alert.state_timestamp.clone(),
            state: i.alert.state,
            transition: i.transition.as_str(),
            severity: self.severity,
            instance: self.instance.as_ref().map(ToString::to_string),
            group: self.group.as_ref().map(ToString::to_string),
            value: i.alert.value,
            dry_run: self.dry_run,
            delivery: "planned",
            transient_error: None,
            notes: self.notes.clone(),
            actions,
        }
    }

    /// Adds an action if the kind's playbook runs it, in its stage.
    fn push(
        &mut self,
        config: &Config,
        name: ActionName,
        target: impl Into<String>,
        reason: impl Into<String>,
        decision: Decision,
    ) {
        let kind = self.incident.kind;
        if !config.playbooks.runs(kind, name) {
            return;
        }
        let reason = match &decision {
            Decision::Do(_) => reason.into(),
            _ => String::new(),
        };
        self.actions.push(PlannedAction {
            name,
            target: target.into(),
            reason,
            decision,
            stage: config.playbooks.stage_of(kind, name),
        });
    }

    fn runs(&self, config: &Config, name: ActionName) -> bool {
        config.playbooks.runs(self.incident.kind, name)
    }
}

/// An undone action as a report: planned, skipped or failed.
pub fn decided(a: &PlannedAction) -> ActionReport {
    match &a.decision {
        Decision::Do(_) => ActionReport::new(a.name, &a.target, Status::Planned, &a.reason),
        Decision::Skip(why) => ActionReport::new(a.name, &a.target, Status::Skipped, why),
        Decision::Fail(why) => ActionReport::new(a.name, &a.target, Status::Failed, why),
    }
}

/// Severity named by the alert itself (alarm tag or Prometheus label).
fn declared_severity(incident: &Incident) -> Option<Severity> {
    match incident
        .alert
        .tags
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page" | "high") => Some(Severity::Critical),
        Some("warning" | "warn" | "medium") => Some(Severity::Warning),
        Some("info" | "low" | "none") => Some(Severity::Info),
        _ => None,
    }
}

/// Decides what to do. Pure.
pub fn plan(incident: &Incident, observed: &Observed, config: &Config) -> Plan {
    let group = observed
        .group
        .as_ref()
        .ok()
        .and_then(|g| g.as_ref())
        .map(|g| g.name.clone());
    let instance = match (&incident.resource, &observed.resolved) {
        (Resource::Instance(i), _) => Some(i.clone()),
        (Resource::Address(_), Some(Ok(i))) => Some(i.clone()),
        _ => None,
    };
    let mut p = Plan {
        incident: incident.clone(),
        severity: Severity::Warning,
        instance: instance.clone(),
        group,
        notes: Vec::new(),
        actions: Vec::new(),
        dry_run: config.dry_run,
        next_steps: config.playbooks.next_steps(incident.kind).to_vec(),
    };
    if let Some(rule) = &incident.alert.alarm_rule {
        p.notes.push(format!(
            "composite alarm rule: {}",
            crate::text::quoted(rule, crate::text::MAX_LONG_FIELD_CHARS)
        ));
    }
    if let (Resource::Address(a), Some(Ok(i)), Some(how)) = (
        &incident.resource,
        &observed.resolved,
        &observed.resolved_in,
    ) {
        p.notes.push(format!("{a} is {i} ({how})"));
    }
    let kind = incident.kind;
    match &incident.transition {
        Transition::Ignored(why) => {
            p.severity = Severity::Info;
            p.notes.push(format!("nothing to do: {why}"));
            return p;
        }
        Transition::Resolved => {
            p.severity = Severity::Info;
            p.notes
                .push("alert resolved: no remediation on recovery".into());
            if !config.notify_on_resolve {
                p.notes
                    .push("NOTIFY_ON_RESOLVE is off: no notice sent".into());
                return p;
            }
        }
        Transition::Firing if kind == IncidentKind::Unrouted => {
            let what = incident
                .alert
                .metric
                .as_ref()
                .map(|m| {
                    format!(
                        "metric {}/{}",
                        crate::text::escape(&m.namespace),
                        crate::text::escape(&m.name)
                    )
                })
                .unwrap_or_else(|| "an alarm without a metric".into());
            p.notes
                .push(format!("no playbook for {what}: nothing was done"));
        }
        Transition::Firing => {
            p.severity = initial_severity(incident, config);
            match (&incident.resource, &instance) {
                (_, Some(i)) => match kind {
                    IncidentKind::HighCpu => plan_high_cpu(&mut p, i, observed, config),
                    IncidentKind::DiskFull => plan_disk_full(&mut p, i, observed, config),
                    IncidentKind::MemoryPressure => plan_memory(&mut p, i, observed, config),
                    IncidentKind::ServiceDown => plan_service_down(&mut p, i, observed, config),
                    IncidentKind::Unrouted => {}
                },
                (Resource::Address(a), None) => {
                    let why = match &observed.resolved {
                        Some(Err(why)) => why.clone(),
                        _ => "not looked up".into(),
                    };
                    p.notes.push(format!(
                        "could not tell which instance {a} is: {why}; nothing was done"
                    ));
                }
                (Resource::Group(g), None) if kind == IncidentKind::HighCpu => {
                    p.notes.push(format!(
                        "group-level alarm on {g}: no single instance to snapshot or diagnose"
                    ));
                    push_scale_out(&mut p, g.to_string(), &observed.group, config, || {
                        format!("Auto Scaling group {g} does not exist")
                    });
                }
                (Resource::Group(g), None) => p.notes.push(format!(
                    "group-level {kind} alarm on {g}: the {kind} playbook acts on one instance, so nothing was done"
                )),
                _ => p.notes.push(
                    "the alert names no EC2 instance or Auto Scaling group: nothing to act on, nothing was done".into(),
                ),
            }
        }
    }
    if let Some(s) = declared_severity(incident) {
        p.severity = s;
    }
    let stop = match (&observed.kill_switch, &config.kill_switch_parameter) {
        (Ok(true), Some(name)) => Some(format!("kill switch {name} is on: notify only")),
        (Err(why), Some(name)) => Some(format!(
            "kill switch {name} could not be read ({why}): notify only"
        )),
        _ => None,
    };
    if let Some(stop) = stop {
        let mut stopped = false;
        for a in &mut p.actions {
            if matches!(a.decision, Decision::Do(_)) {
                a.decision = Decision::Skip(stop.clone());
                stopped = true;
            }
        }
        if stopped {
            p.notes.push(stop);
        }
    }
    let last = p.actions.iter().map(|a| a.stage + 1).max().unwrap_or(0);
    p.actions.push(match &config.notify_topic_arn {
        Some(arn) => PlannedAction {
            name: ActionName::Notify,
            target: arn.clone(),
            reason: "tell the on-call what fired, what was done and what to do next".into(),
            decision: Decision::Do(Step::Notify {
                topic_arn: arn.clone(),
            }),
            stage: last,
        },
        None => PlannedAction {
            name: ActionName::Notify,
            target: "-".into(),
            reason: String::new(),
            decision: Decision::Skip("NOTIFY_TOPIC_ARN is not set".into()),
            stage: last,
        },
    });
    p
}

/// Percent used of the filesystem the alert is about. CloudWatch's
/// `disk_used_percent` is that already; Prometheus disk rules (the runbook's
/// `DiskSpaceLow`, node-exporter's `NodeFilesystem*`) alert on the percent
/// still *available*, so their value is turned around.
pub fn disk_usage(incident: &Incident) -> Option<f64> {
    let v = incident.alert.value?;
    if incident.alert.source.is_cloudwatch() {
        Some(v)
    } else {
        Some((100.0 - v).clamp(0.0, 100.0))
    }
}

fn initial_severity(incident: &Incident, config: &Config) -> Severity {
    let v = incident.alert.value;
    match incident.kind {
        IncidentKind::HighCpu => match v {
            Some(v) if v >= config.playbooks.high_cpu.scale_out_at_percent => Severity::Critical,
            _ => Severity::Warning,
        },
        IncidentKind::DiskFull => match disk_usage(incident) {
            Some(v) if v < config.playbooks.disk_full.expand_at_percent => Severity::Warning,
            _ => Severity::Critical,
        },
        IncidentKind::MemoryPressure => Severity::Warning,
        IncidentKind::ServiceDown => Severity::Critical,
        IncidentKind::Unrouted => Severity::Warning,
    }
}

/// A snapshot of every attached volume of an opted-in instance: the
/// evidence, before anything changes. A snapshot changes nothing of the
/// fleet, so a volume needs no opt-in tag of its own (the root volume, which
/// holds the logs, rarely carries one); the instance's tag is the scope.
fn push_snapshots(p: &mut Plan, instance: &InstanceId, observed: &Observed, config: &Config) {
    if !p.runs(config, ActionName::Snapshot) {
        return;
    }
    let target = instance.to_string();
    let (decision, reason) = match (
        &observed.volumes,
        instance_opted_in(instance, observed, config),
    ) {
        (Err(why), _) => (
            Decision::Fail(format!("could not list the volumes of {instance}: {why}")),
            String::new(),
        ),
        (Ok(vols), _) if vols.is_empty() => (
            Decision::Skip(format!("no EBS volumes attached to {instance}")),
            String::new(),
        ),
        (_, Err(d)) => (d, String::new()),
        (Ok(vols), Ok(state)) => {
            let cap = usize::try_from(config.max_snapshots_per_incident).unwrap_or(usize::MAX);
            // The root volume first (it holds the logs), then by device.
            let is_root = |v: &AttachedVolume| {
                v.device.is_some() && v.device.as_deref() == state.root_device.as_deref()
            };
            let mut ordered: Vec<&AttachedVolume> = vols.iter().collect();
            ordered.sort_by_key(|v| (!is_root(v), v.device.clone(), v.id.clone()));
            let (taken, left) = ordered.split_at(cap.min(ordered.len()));
            let exclude_boot = left.iter().any(|v| is_root(v));
            let exclude: Vec<VolumeId> = left
                .iter()
                .filter(|v| !is_root(v))
                .map(|v| v.id.clone())
                .collect();
            let mut reason = format!(
                "preserve the evidence on every volume of {instance} ({}), crash-consistent, before anything changes",
                taken
                    .iter()
                    .map(|v| format!("{} {}", v.id, v.device.as_deref().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !left.is_empty() {
                reason.push_str(&format!(
                    "; {} more left out, over the cap of {cap} snapshots per incident (MAX_SNAPSHOTS_PER_INCIDENT): {}",
                    left.len(),
                    left.iter()
                        .map(|v| v.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let decision = if taken.is_empty() {
                Decision::Skip(format!(
                    "MAX_SNAPSHOTS_PER_INCIDENT is {cap}: no evidence snapshots"
                ))
            } else {
                Decision::Do(Step::Snapshot {
                    instance: instance.clone(),
                    volumes: taken
                        .iter()
                        .map(|v| (v.id.clone(), v.device.clone()))
                        .collect(),
                    exclude_boot,
                    exclude,
                })
            };
            (decision, reason)
        }
    };
    p.push(config, ActionName::Snapshot, target, reason, decision);
}

/// SSM commands run as root on the instance, so they are sent only to an
/// opted-in instance (the IAM policy allows no other): Err is the decision
/// for an instance that is not.
fn commands_allowed(
    instance: &InstanceId,
    observed: &Observed,
    config: &Config,
) -> Result<(), Decision> {
    match instance_opted_in(instance, observed, config) {
        Ok(_) => Ok(()),
        Err(Decision::Skip(why)) => Err(Decision::Skip(format!(
            "{why}; SSM commands are sent to opted-in instances only"
        ))),
        Err(d) => Err(d),
    }
}

fn plan_high_cpu(p: &mut Plan, instance: &InstanceId, observed: &Observed, config: &Config) {
    push_snapshots(p, instance, observed, config);
    p.push(
        config,
        ActionName::CollectDiagnostics,
        instance.to_string(),
        "top CPU processes, memory, disks and load, through SSM Run Command",
        match commands_allowed(instance, observed, config) {
            Ok(()) => Decision::Do(Step::CollectDiagnostics {
                instance: instance.clone(),
                set: Diagnostics::Cpu,
            }),
            Err(d) => d,
        },
    );
    if p.runs(config, ActionName::ScaleOut) {
        let not_in_group = format!("{instance} is not in an Auto Scaling group");
        push_scale_out(p, instance.to_string(), &observed.group, config, || {
            not_in_group
        });
    }
}

/// The instance's own opt-in, for actions that change it.
fn instance_opted_in(
    instance: &InstanceId,
    observed: &Observed,
    config: &Config,
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

fn plan_disk_full(p: &mut Plan, instance: &InstanceId, observed: &Observed, config: &Config) {
    let pb = &config.playbooks.disk_full;
    let labels = p
        .incident
        .alert
        .metric
        .as_ref()
        .map(|m| m.dimensions.clone())
        .unwrap_or_else(|| p.incident.alert.tags.clone());
    let target = DiskTarget::from_labels(&labels);
    let me = instance_opted_in(instance, observed, config);
    // Cleaning a directory frees space only on the filesystem it lives on:
    // a /data alert must not delete files on /. Decided from the instance's
    // block devices when it reported them.
    let layout = match &observed.layout {
        Some(Ok(l)) => Some(l.as_slice()),
        _ => None,
    };
    let helps = |dirs: &[&str]| match target.mount.as_deref() {
        Some(m) => crate::disk::frees_space_on(dirs, m, layout),
        None => Ok(()),
    };
    let on_instance = |step: Step, dirs: &[&str]| match (&me, helps(dirs)) {
        (Err(d), _) => d.clone(),
        (Ok(_), Err(why)) => Decision::Skip(why),
        (Ok(_), Ok(())) => Decision::Do(step),
    };
    p.push(
        config,
        ActionName::CleanupTemp,
        instance.to_string(),
        format!(
            "delete files neither modified nor read for {} days under /tmp and /var/tmp",
            pb.temp_older_than_days
        ),
        on_instance(
            Step::CleanupTemp {
                instance: instance.clone(),
                days: pb.temp_older_than_days,
            },
            &["/tmp", "/var/tmp"],
        ),
    );
    p.push(
        config,
        ActionName::ArchiveLogs,
        instance.to_string(),
        match &pb.log_archive_bucket {
            Some(b) => format!(
                "compress rotated logs older than {} days under /var/log and ship them to s3://{b}",
                pb.logs_older_than_days
            ),
            None => format!(
                "compress rotated logs older than {} days under /var/log",
                pb.logs_older_than_days
            ),
        },
        on_instance(
            Step::ArchiveLogs {
                instance: instance.clone(),
                days: pb.logs_older_than_days,
                bucket: pb.log_archive_bucket.clone(),
            },
            &["/var/log"],
        ),
    );
    if !p.runs(config, ActionName::ExpandVolume) {
        return;
    }
    let usage = disk_usage(&p.incident);
    let (target_name, decision, reason) =
        expansion(instance, &target, observed, config, &me, usage);
    p.push(
        config,
        ActionName::ExpandVolume,
        target_name,
        reason,
        decision,
    );
}

/// The expand_volume decision: (target, decision, reason).
fn expansion(
    instance: &InstanceId,
    target: &DiskTarget,
    observed: &Observed,
    config: &Config,
    me: &Result<InstanceState, Decision>,
    usage: Option<f64>,
) -> (String, Decision, String) {
    let pb = &config.playbooks.disk_full;
    let subject = target.describe();
    let skip = |why: String| (subject.clone(), Decision::Skip(why), String::new());
    let fail = |why: String| (subject.clone(), Decision::Fail(why), String::new());
    if let Some(u) = usage
        && u < pb.expand_at_percent
    {
        return skip(format!(
            "usage {u:.1}% is below {}% (disk_full.expand_at_percent): cleanup only",
            pb.expand_at_percent
        ));
    }
    let volumes = match &observed.volumes {
        Ok(v) => v,
        Err(why) => return fail(format!("could not list the volumes of {instance}: {why}")),
    };
    let root = me
        .as_ref()
        .ok()
        .and_then(|s| s.root_device.clone())
        .or_else(|| match &observed.instance {
            Ok(Some(s)) => s.root_device.clone(),
            _ => None,
        });
    let r = match resolve_volume(target, volumes, root.as_deref(), observed.layout.as_ref()) {
        Ok(r) => r,
        Err(why) => return fail(format!("{why}: not expanded; find the volume by hand")),
    };
    let Some(v) = volumes.iter().find(|v| v.id == r.volume) else {
        return fail(format!("{} is not attached to {instance}", r.volume));
    };
    let subject = v.id.to_string();
    let skip = |why: String| (subject.clone(), Decision::Skip(why), String::new());
    match r.fstype.as_deref().or(target.fstype.as_deref()) {
        None => {
            return skip(format!(
                "the filesystem type on {} is unknown: not grown automatically (ext2/3/4 and xfs are)",
                v.id
            ));
        }
        Some(fs) if Filesystem::parse(fs).is_none() => {
            return skip(format!(
                "filesystem {fs} on {} is not grown automatically (ext2/3/4 and xfs are)",
                v.id
            ));
        }
        Some(_) => {}
    }
    if let Err(d) = me {
        return (subject, d.clone(), String::new());
    }
    if let Err(why) = opted_in(&format!("volume {}", v.id), &v.tags, config) {
        return skip(why);
    }
    if v.volume_type.as_deref() == Some("standard") {
        return skip(format!(
            "{} is a magnetic (standard) volume, which cannot be modified",
            v.id
        ));
    }
    let Some(from) = v.size_gib else {
        return (
            subject.clone(),
            Decision::Fail(format!("DescribeVolumes gave no size for {}", v.id)),
            String::new(),
        );
    };
    let mbr = r.pttype.as_deref() == Some("dos") && r.partitioned != Some(false);
    let to = match new_size(
        from,
        pb.grow_percent,
        pb.grow_min_gib,
        pb.max_volume_gib,
        mbr,
    ) {
        Ok(to) => to,
        Err(why) => return skip(why),
    };
    let reason = format!(
        "{} is at or above {}%: snapshot {}, grow it {from} -> {to} GiB, then the partition and filesystem ({})",
        target.describe(),
        pb.expand_at_percent,
        v.id,
        r.how
    );
    (
        subject,
        Decision::Do(Step::ExpandVolume(Box::new(Expansion {
            instance: instance.clone(),
            volume: v.id.clone(),
            xen_letters: r.xen_letters.clone(),
            from_gib: from,
            to_gib: to,
            mount: target.mount.clone(),
            expand_at: pb.expand_at_percent,
            alert_usage: usage,
            modification_wait: Duration::from_secs(u64::from(pb.modification_wait_seconds)),
            how: r.how,
        }))),
        reason,
    )
}

fn plan_memory(p: &mut Plan, instance: &InstanceId, observed: &Observed, config: &Config) {
    p.push(
        config,
        ActionName::CollectDiagnostics,
        instance.to_string(),
        "processes by memory, free memory and recent OOM-killer lines, through SSM Run Command",
        match commands_allowed(instance, observed, config) {
            Ok(()) => Decision::Do(Step::CollectDiagnostics {
                instance: instance.clone(),
                set: Diagnostics::Memory,
            }),
            Err(d) => d,
        },
    );
    if !p.runs(config, ActionName::RestartService) {
        return;
    }
    let tag = &config.playbooks.memory_pressure.service_tag;
    let (decision, reason) = match instance_opted_in(instance, observed, config) {
        Err(d) => (d, String::new()),
        Ok(s) => match s.tags.get(tag) {
            None => (
                Decision::Skip(format!(
                    "{instance} carries no {tag} tag naming a service to restart"
                )),
                String::new(),
            ),
            Some(name) => match ServiceName::parse(&format!("tag {tag} of {instance}"), name) {
                Err(e) => (Decision::Skip(format!("not restarted: {e}")), String::new()),
                Ok(service) => (
                    Decision::Do(Step::RestartService {
                        instance: instance.clone(),
                        service: service.clone(),
                    }),
                    format!(
                        "restart {service}, named by the instance's {tag} tag, to release its memory"
                    ),
                ),
            },
        },
    };
    p.push(
        config,
        ActionName::RestartService,
        instance.to_string(),
        reason,
        decision,
    );
}

/// Whether a service-down alert is evidence that the instance itself is
/// down. Ok(why) lets replace/reboot go ahead; Err(why) skips them.
/// CloudWatch's `StatusCheckFailed*` alarms are EC2's own word; a Prometheus
/// `up == 0` only says a scrape failed (a security group, a dead exporter),
/// so EC2's status checks must agree.
fn instance_is_down(p: &Plan, observed: &Observed, config: &Config) -> Result<String, String> {
    if p.incident.alert.source.is_cloudwatch() {
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
    if config.playbooks.service_down.act_when_ssm_unreachable {
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

fn plan_service_down(p: &mut Plan, instance: &InstanceId, observed: &Observed, config: &Config) {
    push_snapshots(p, instance, observed, config);
    p.push(
        config,
        ActionName::CollectEvidence,
        instance.to_string(),
        "the instance's status checks and console output",
        Decision::Do(Step::CollectEvidence {
            instance: instance.clone(),
            console: instance_opted_in(instance, observed, config).is_ok(),
        }),
    );
    let down = match instance_is_down(p, observed, config) {
        Ok(why) => why,
        Err(why) => {
            for name in [ActionName::ReplaceInstance, ActionName::Reboot] {
                p.push(
                    config,
                    name,
                    instance.to_string(),
                    "",
                    Decision::Skip(why.clone()),
                );
            }
            if observed.health.as_ref().is_some_and(|h| h.is_ok()) {
                p.notes.push(format!(
                    "Prometheus cannot scrape {instance}, but EC2 reports the instance healthy: look at the exporter on it (systemctl status node_exporter), the security group or network ACL between Prometheus and its port, and Prometheus's Targets page for the scrape error"
                ));
            }
            return;
        }
    };
    let replaces = p.runs(config, ActionName::ReplaceInstance);
    if replaces {
        let (target, decision, reason) = match &observed.group {
            Err(why) => (
                instance.to_string(),
                Decision::Fail(format!("could not read the Auto Scaling group: {why}")),
                String::new(),
            ),
            Ok(None) => (
                instance.to_string(),
                Decision::Skip(format!("{instance} is in no Auto Scaling group")),
                String::new(),
            ),
            Ok(Some(g)) => match opted_in(&format!("group {}", g.name), &g.tags, config) {
                Err(why) => (instance.to_string(), Decision::Skip(why), String::new()),
                Ok(()) => (
                    instance.to_string(),
                    Decision::Do(Step::ReplaceInstance {
                        instance: instance.clone(),
                        group: g.name.clone(),
                    }),
                    format!(
                        "{down}: mark {instance} Unhealthy so {} replaces it",
                        g.name
                    ),
                ),
            },
        };
        p.push(
            config,
            ActionName::ReplaceInstance,
            target,
            reason,
            decision,
        );
    }
    if !p.runs(config, ActionName::Reboot) {
        return;
    }
    let (decision, reason) = match (
        &observed.group,
        instance_opted_in(instance, observed, config),
    ) {
        (Ok(Some(g)), _) if replaces => (
            Decision::Skip(format!(
                "{instance} is in group {}: replaced, not rebooted",
                g.name
            )),
            String::new(),
        ),
        (Err(why), _) => (
            Decision::Fail(format!("could not read the Auto Scaling group: {why}")),
            String::new(),
        ),
        (_, Err(d)) => (d, String::new()),
        (_, Ok(s)) if s.state.as_deref().is_some_and(|st| st != "running") => (
            Decision::Skip(format!(
                "{instance} is {}: a reboot cannot bring it back; start it by hand",
                s.state.as_deref().unwrap_or("?")
            )),
            String::new(),
        ),
        (_, Ok(_)) => (
            Decision::Do(Step::Reboot {
                instance: instance.clone(),
            }),
            format!("{down}: reboot {instance}, which no Auto Scaling group would replace"),
        ),
    };
    p.push(
        config,
        ActionName::Reboot,
        instance.to_string(),
        reason,
        decision,
    );
}

/// Adds the scale-out decision: +1 up to MaxSize, at or above the threshold.
fn push_scale_out(
    p: &mut Plan,
    subject: String,
    group: &Result<Option<GroupState>, String>,
    config: &Config,
    no_group: impl FnOnce() -> String,
) {
    let threshold = config.playbooks.high_cpu.scale_out_at_percent;
    let (target, decision) = match (incident_value(p), group) {
        (None, _) => (
            subject,
            Decision::Skip("the alert carries no CPU value: not scaling blind".into()),
        ),
        (Some(v), _) if v < threshold => (
            subject,
            Decision::Skip(format!(
                "CPU {v:.1}% is below the scale-out threshold of {threshold}%"
            )),
        ),
        (_, Err(why)) => (
            subject,
            Decision::Fail(format!("could not read the Auto Scaling group: {why}")),
        ),
        (_, Ok(None)) => (subject, Decision::Skip(no_group())),
        (_, Ok(Some(g))) if g.desired >= g.max => (
            g.name.to_string(),
            Decision::Skip(format!(
                "group {} is already at its MaxSize ({})",
                g.name, g.max
            )),
        ),
        (_, Ok(Some(g)))
            if config
                .max_desired_capacity
                .is_some_and(|cap| g.desired >= cap) =>
        {
            (
                g.name.to_string(),
                Decision::Skip(format!(
                    "group {} is at the configured cap MAX_DESIRED_CAPACITY={} (MaxSize {})",
                    g.name,
                    config.max_desired_capacity.unwrap_or_default(),
                    g.max
                )),
            )
        }
        (Some(_), Ok(Some(g))) => (
            g.name.to_string(),
            match opted_in(&format!("group {}", g.name), &g.tags, config) {
                Ok(()) => Decision::Do(Step::ScaleOut {
                    group: g.name.clone(),
                    from: g.desired,
                    to: (g.desired + 1)
                        .min(g.max)
                        .min(config.max_desired_capacity.unwrap_or(i32::MAX)),
                    max: g.max,
                }),
                Err(why) => Decision::Skip(why),
            },
        ),
    };
    let reason = format!(
        "CPU {:.1}% is at or above {threshold}%",
        incident_value(p).unwrap_or_default()
    );
    p.push(config, ActionName::ScaleOut, target, reason, decision);
}

fn incident_value(p: &Plan) -> Option<f64> {
    p.incident.alert.value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::parse_event;

    const ALARM: &str = include_str!("../../events/high-cpu-alarm.json");

    fn incident(src: &str) -> Incident {
        Incident::from_alert(parse_event(src.as_bytes()).unwrap().remove(0)).unwrap()
    }

    fn config() -> Config {
        Config {
            notify_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
            ..Config::default()
        }
    }

    fn opt_in_tags() -> BTreeMap<String, String> {
        BTreeMap::from([("first-responder".to_owned(), "enabled".to_owned())])
    }

    fn vol(id: &str, dev: &str) -> AttachedVolume {
        AttachedVolume {
            id: VolumeId::parse("t", id).unwrap(),
            device: Some(dev.into()),
            size_gib: Some(8),
            volume_type: Some("gp3".into()),
            tags: opt_in_tags(),
        }
    }

    fn fleet(desired: i32, max: i32) -> Observed {
        Observed {
            kill_switch: Ok(false),
            resolved: None,
            resolved_in: None,
            volumes: Ok(vec![
                vol("vol-0000000000000000a", "/dev/xvda"),
                vol("vol-0000000000000000b", "/dev/sdf"),
            ]),
            group: Ok(Some(GroupState {
                name: GroupName::parse("t", "web-asg").unwrap(),
                desired,
                min: 1,
                max,
                tags: opt_in_tags(),
            })),
            instance: Ok(Some(InstanceState {
                tags: opt_in_tags(),
                root_device: Some("/dev/xvda".into()),
                state: Some("running".into()),
            })),
            layout: None,
            health: None,
            ssm_online: None,
        }
    }

    fn summary(p: &Plan) -> Vec<(ActionName, String, String)> {
        p.actions
            .iter()
            .map(|a| {
                let d = match &a.decision {
                    Decision::Do(Step::ScaleOut { from, to, .. }) => format!("do {from}->{to}"),
                    Decision::Do(_) => "do".to_owned(),
                    Decision::Skip(w) => format!("skip: {w}"),
                    Decision::Fail(w) => format!("fail: {w}"),
                };
                (a.name, a.target.clone(), d)
            })
            .collect()
    }

    #[test]
    fn high_cpu_over_threshold_does_everything() {
        let p = plan(&incident(ALARM), &fleet(1, 3), &config());
        assert_eq!(p.severity, Severity::Critical);
        assert_eq!(p.group.as_ref().unwrap().as_str(), "web-asg");
        let s = summary(&p);
        use ActionName::*;
        assert_eq!(
            s,
            vec![
                (Snapshot, "i-0123456789abcdef0".into(), "do".into()),
                (
                    CollectDiagnostics,
                    "i-0123456789abcdef0".into(),
                    "do".into()
                ),
                (ScaleOut, "web-asg".into(), "do 1->2".into()),
                (
                    Notify,
                    "arn:aws:sns:us-east-1:123456789012:oncall".into(),
                    "do".into()
                ),
            ]
        );
        assert!(
            p.actions
                .iter()
                .all(|a| a.decision.is_do() && !a.reason.is_empty())
        );
    }

    impl Decision {
        fn is_do(&self) -> bool {
            matches!(self, Decision::Do(_))
        }
    }

    fn scale_decision(p: &Plan) -> String {
        summary(p)
            .into_iter()
            .find(|(n, ..)| *n == ActionName::ScaleOut)
            .unwrap()
            .2
    }

    #[test]
    fn scale_out_cases() {
        let i = incident(ALARM);
        let c = config();
        let cases: Vec<(Observed, &str)> = vec![
            (
                fleet(3, 3),
                "skip: group web-asg is already at its MaxSize (3)",
            ),
            (
                fleet(4, 3),
                "skip: group web-asg is already at its MaxSize (3)",
            ),
            (fleet(2, 3), "do 2->3"),
            (
                Observed {
                    group: Ok(None),
                    ..fleet(1, 3)
                },
                "skip: i-0123456789abcdef0 is not in an Auto Scaling group",
            ),
            (
                Observed {
                    group: Err("AccessDenied".into()),
                    ..fleet(1, 3)
                },
                "fail: could not read the Auto Scaling group: AccessDenied",
            ),
        ];
        for (observed, want) in cases {
            assert_eq!(scale_decision(&plan(&i, &observed, &c)), want);
        }
    }

    #[test]
    fn below_threshold_does_not_scale_and_is_a_warning() {
        let p = plan(
            &incident(include_str!("../../events/high-cpu-alarm-moderate.json")),
            &fleet(1, 3),
            &config(),
        );
        assert_eq!(
            scale_decision(&p),
            "skip: CPU 85.1% is below the scale-out threshold of 90%"
        );
        assert_eq!(p.severity, Severity::Warning);
        let mut lower = config();
        lower.playbooks.high_cpu.scale_out_at_percent = 85.0;
        let p = plan(
            &incident(include_str!("../../events/high-cpu-alarm-moderate.json")),
            &fleet(1, 3),
            &lower,
        );
        assert_eq!(scale_decision(&p), "do 1->2");
        assert_eq!(p.severity, Severity::Critical);
    }

    #[test]
    fn threshold_is_inclusive() {
        let src = ALARM.replace("[95.3]", "[90.0]");
        assert_eq!(
            scale_decision(&plan(&incident(&src), &fleet(1, 3), &config())),
            "do 1->2"
        );
    }

    #[test]
    fn no_value_no_scaling() {
        let src = ALARM.replace("[95.3]", "[]").replace("[95.3 (", "[? (");
        assert_eq!(
            scale_decision(&plan(&incident(&src), &fleet(1, 3), &config())),
            "skip: the alert carries no CPU value: not scaling blind"
        );
    }

    #[test]
    fn volume_lookup_cases() {
        let i = incident(ALARM);
        let p = plan(
            &i,
            &Observed {
                volumes: Ok(vec![]),
                ..fleet(1, 3)
            },
            &config(),
        );
        assert_eq!(
            summary(&p)[0],
            (
                ActionName::Snapshot,
                "i-0123456789abcdef0".into(),
                "skip: no EBS volumes attached to i-0123456789abcdef0".into()
            )
        );
        let p = plan(
            &i,
            &Observed {
                volumes: Err("RequestLimitExceeded".into()),
                ..fleet(1, 3)
            },
            &config(),
        );
        assert!(
            summary(&p)[0]
                .2
                .starts_with("fail: could not list the volumes")
        );
        // The other actions still go ahead.
        assert_eq!(scale_decision(&p), "do 1->2");
    }

    #[test]
    fn without_topic_notify_is_skipped() {
        let p = plan(&incident(ALARM), &fleet(1, 3), &Config::default());
        let last = summary(&p).pop().unwrap();
        assert_eq!(
            last,
            (
                ActionName::Notify,
                "-".into(),
                "skip: NOTIFY_TOPIC_ARN is not set".into()
            )
        );
    }

    #[test]
    fn resolved_only_notifies() {
        let p = plan(
            &incident(include_str!("../../events/high-cpu-ok.json")),
            &Observed::nothing(),
            &config(),
        );
        assert_eq!(p.severity, Severity::Info);
        assert_eq!(
            summary(&p).iter().map(|a| a.0).collect::<Vec<_>>(),
            vec![ActionName::Notify]
        );
        let quiet = Config {
            notify_on_resolve: false,
            ..config()
        };
        let p = plan(
            &incident(include_str!("../../events/high-cpu-ok.json")),
            &Observed::nothing(),
            &quiet,
        );
        assert!(p.actions.is_empty());
    }

    #[test]
    fn ignored_transitions_do_nothing() {
        let src = ALARM.replace("\"value\": \"OK\"", "\"value\": \"ALARM\"");
        let p = plan(&incident(&src), &fleet(1, 3), &config());
        assert!(p.actions.is_empty());
        assert!(p.notes[0].contains("already in ALARM"), "{:?}", p.notes);
    }

    #[test]
    fn unrouted_and_instanceless_alarms_only_notify() {
        let net = ALARM.replace("CPUUtilization", "NetworkIn");
        let p = plan(&incident(&net), &Observed::nothing(), &config());
        assert_eq!(p.actions.len(), 1);
        assert!(
            p.notes[0].contains("no playbook for metric AWS/EC2/NetworkIn"),
            "{:?}",
            p.notes
        );
        let no_dim = ALARM.replace(
            "\"InstanceId\": \"i-0123456789abcdef0\"",
            "\"AutoScalingGroupName\": \"web-asg\"",
        );
        // A group-level alarm scales the group itself, without instance evidence.
        let p = plan(
            &incident(&no_dim),
            &Observed {
                volumes: Ok(vec![]),
                ..fleet(1, 3)
            },
            &config(),
        );
        assert!(
            p.notes[0].contains("group-level alarm on web-asg"),
            "{:?}",
            p.notes
        );
        assert_eq!(
            summary(&p).iter().map(|a| a.0).collect::<Vec<_>>(),
            vec![ActionName::ScaleOut, ActionName::Notify]
        );
        assert_eq!(scale_decision(&p), "do 1->2");
        let p = plan(&incident(&no_dim), &Observed::nothing(), &config());
        assert_eq!(
            scale_decision(&p),
            "skip: Auto Scaling group web-asg does not exist"
        );
        // An RDS alarm is not ours: notified, nothing done.
        let rds = ALARM.replace("AWS/EC2", "AWS/RDS").replace(
            "\"InstanceId\": \"i-0123456789abcdef0\"",
            "\"DBInstanceIdentifier\": \"orders-db\"",
        );
        let p = plan(&incident(&rds), &Observed::nothing(), &config());
        assert_eq!(p.actions.len(), 1);
        assert!(
            p.notes[0].contains("no playbook for metric AWS/RDS/CPUUtilization"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn only_opted_in_resources_are_changed() {
        let i = incident(ALARM);
        let mut observed = fleet(1, 3);
        // The root volume without a tag of its own: still evidence.
        if let Ok(v) = &mut observed.volumes {
            v[0].tags.clear();
        }
        if let Ok(Some(g)) = &mut observed.group {
            g.tags.insert("first-responder".into(), "disabled".into());
        }
        let p = plan(&i, &observed, &config());
        let s = summary(&p);
        assert_eq!(s[0].2, "do", "every volume of an opted-in instance");
        match &p.actions[0].decision {
            Decision::Do(Step::Snapshot { volumes, .. }) => assert_eq!(volumes.len(), 2),
            d => panic!("{d:?}"),
        }
        assert_eq!(s[1].2, "do", "diagnostics on an opted-in instance");
        assert!(
            s[2].2
                .starts_with("skip: group web-asg does not carry the opt-in tag"),
            "{}",
            s[2].2
        );
        // An instance without the tag: no snapshot, no SSM command (its IAM
        // policy allows neither), and nothing changed.
        let mut untagged = fleet(1, 3);
        if let Ok(Some(st)) = &mut untagged.instance {
            st.tags.clear();
        }
        let s = summary(&plan(&i, &untagged, &config()));
        assert!(
            s[0].2
                .starts_with("skip: instance i-0123456789abcdef0 does not carry the opt-in tag"),
            "{}",
            s[0].2
        );
        assert!(
            s[1].2
                .contains("SSM commands are sent to opted-in instances only"),
            "{}",
            s[1].2
        );
        // Another tag, or none at all, when configured so.
        let custom = Config {
            opt_in: Some(("team".into(), "sre".into())),
            ..config()
        };
        assert!(
            summary(&plan(&i, &fleet(1, 3), &custom))[0]
                .2
                .contains("opt-in tag team=sre")
        );
        let off = Config {
            opt_in: None,
            ..config()
        };
        assert!(
            summary(&plan(&i, &observed, &off))
                .iter()
                .all(|a| a.2.starts_with("do"))
        );
    }

    /// Snapshots are evidence with a cap of their own per incident: the
    /// root volume first, the rest by device, the remainder named.
    #[test]
    fn evidence_snapshots_have_their_own_cap() {
        let i = incident(ALARM);
        let mut observed = fleet(1, 3);
        if let Ok(v) = &mut observed.volumes {
            for n in 0..30 {
                v.push(vol(
                    &format!("vol-00000000000001{n:03}"),
                    &format!("/dev/sd{n:03}"),
                ));
            }
        }
        let c = Config {
            max_snapshots_per_incident: 20,
            ..config()
        };
        let p = plan(&i, &observed, &c);
        match &p.actions[0].decision {
            Decision::Do(Step::Snapshot {
                volumes,
                exclude_boot,
                exclude,
                ..
            }) => {
                assert_eq!(volumes.len(), 20);
                assert_eq!(volumes[0].1.as_deref(), Some("/dev/xvda"), "root first");
                assert!(!exclude_boot);
                assert_eq!(exclude.len(), 12);
            }
            d => panic!("{d:?}"),
        }
        assert!(
            p.actions[0]
                .reason
                .contains("12 more left out, over the cap of 20"),
            "{}",
            p.actions[0].reason
        );
    }

    #[test]
    fn the_capacity_cap_holds_below_max_size() {
        let i = incident(ALARM);
        let capped = Config {
            max_desired_capacity: Some(2),
            ..config()
        };
        assert_eq!(scale_decision(&plan(&i, &fleet(1, 5), &capped)), "do 1->2");
        assert_eq!(
            scale_decision(&plan(&i, &fleet(2, 5), &capped)),
            "skip: group web-asg is at the configured cap MAX_DESIRED_CAPACITY=2 (MaxSize 5)"
        );
    }

    #[test]
    fn the_kill_switch_leaves_only_the_notification() {
        let i = incident(ALARM);
        let c = Config {
            kill_switch_parameter: Some("/fr/kill".into()),
            ..config()
        };
        for (state, why) in [
            (Ok(true), "kill switch /fr/kill is on: notify only"),
            (
                Err("AccessDenied".to_owned()),
                "kill switch /fr/kill could not be read (AccessDenied): notify only",
            ),
        ] {
            let p = plan(
                &i,
                &Observed {
                    kill_switch: state,
                    ..fleet(1, 3)
                },
                &c,
            );
            let s = summary(&p);
            assert_eq!(s.last().unwrap().2, "do", "the notification still goes out");
            for a in &s[..s.len() - 1] {
                assert_eq!(a.2, format!("skip: {why}"));
            }
            assert!(p.notes.contains(&why.to_owned()));
        }
        // Off, or not configured: business as usual.
        assert_eq!(
            scale_decision(&plan(
                &i,
                &Observed {
                    kill_switch: Ok(false),
                    ..fleet(1, 3)
                },
                &c
            )),
            "do 1->2"
        );
    }

    #[test]
    fn severity_declared_by_the_alert_wins() {
        let src = ALARM.replace(
            "\"configuration\": {",
            "\"alarmTags\": {\"severity\": \"warning\"},\n    \"configuration\": {",
        );
        let p = plan(&incident(&src), &fleet(1, 3), &config());
        assert_eq!(p.severity, Severity::Warning);
    }

    #[test]
    fn diagnostics_commands_are_fixed_text() {
        // The runbook's commands, and nothing that could carry event text.
        for c in [
            "ps aux --sort=-%cpu | head -n 15",
            "free -m",
            "df -h",
            "uptime",
        ] {
            assert!(HIGH_CPU_DIAGNOSTICS.contains(&c));
        }
        assert!(
            HIGH_CPU_DIAGNOSTICS
                .iter()
                .all(|c| !c.contains('$') && !c.contains('`'))
        );
    }

    const DISK: &str = include_str!("../../events/disk-full-alarm.json");
    const DISK_NVME: &str = include_str!("../../events/disk-full-nvme-alarm.json");
    const MEMORY: &str = include_str!("../../events/memory-pressure-alarm.json");
    const DOWN: &str = include_str!("../../events/service-down-alarm.json");

    /// The fleet of `fleet()`, with the data volume at 100 GiB.
    fn disk_fleet() -> Observed {
        let mut o = fleet(1, 3);
        if let Ok(v) = &mut o.volumes {
            v[1].size_gib = Some(100);
        }
        o
    }

    fn decision_of(p: &Plan, name: ActionName) -> String {
        summary(p)
            .into_iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, t, d)| format!("{t}: {d}"))
            .unwrap_or_else(|| "absent".into())
    }

    fn expansion_of(p: &Plan) -> &Expansion {
        p.actions
            .iter()
            .find_map(|a| match &a.decision {
                Decision::Do(Step::ExpandVolume(e)) => Some(&**e),
                _ => None,
            })
            .expect("an expansion")
    }

    #[test]
    fn disk_full_cleans_up_then_expands_the_right_volume() {
        let p = plan(&incident(DISK), &disk_fleet(), &config());
        assert_eq!(p.severity, Severity::Critical);
        let s: Vec<(ActionName, usize)> = p.actions.iter().map(|a| (a.name, a.stage)).collect();
        use ActionName::*;
        assert_eq!(
            s,
            vec![
                (CleanupTemp, 0),
                (ArchiveLogs, 0),
                (ExpandVolume, 1),
                (Notify, 2)
            ]
        );
        // /data is full; /tmp, /var/tmp and /var/log are on /: cleaning them
        // frees nothing there.
        assert_eq!(
            decision_of(&p, CleanupTemp),
            "i-0123456789abcdef0: skip: /tmp is on / (assumed: the instance reported no block devices), /var/tmp is on / (assumed: the instance reported no block devices), not on /data: cleaning there frees nothing on the full filesystem"
        );
        assert!(
            decision_of(&p, ArchiveLogs).contains("/var/log is on /"),
            "{}",
            decision_of(&p, ArchiveLogs)
        );
        assert!(matches!(p.actions[2].decision, Decision::Do(_)));
        let e = expansion_of(&p);
        assert_eq!(e.volume.as_str(), "vol-0000000000000000b");
        assert_eq!((e.from_gib, e.to_gib), (100, 120));
        assert_eq!(e.xen_letters.as_deref(), Some("f"));
        assert_eq!(e.mount.as_deref(), Some("/data"));
        assert_eq!(e.alert_usage, Some(97.2));
        assert_eq!(e.how, "device xvdf is block-device mapping /dev/sdf");
        assert_eq!(p.next_steps()[0], "Check disk usage (df -h).");
        // The root filesystem alerting: the cleanup runs there.
        let root = DISK.replace("\"path\": \"/data\"", "\"path\": \"/\"");
        let p = plan(&incident(&root), &disk_fleet(), &config());
        assert!(matches!(
            &p.actions[0].decision,
            Decision::Do(Step::CleanupTemp { days: 7, .. })
        ));
        assert!(matches!(
            &p.actions[1].decision,
            Decision::Do(Step::ArchiveLogs { .. })
        ));
        // Without the instance's report, a /var alert holds /var/tmp and
        // /var/log (they are under it), not /tmp.
        let var_alert = DISK.replace("\"path\": \"/data\"", "\"path\": \"/var\"");
        let p = plan(&incident(&var_alert), &disk_fleet(), &config());
        assert!(matches!(
            &p.actions[0].decision,
            Decision::Do(Step::CleanupTemp { .. })
        ));
        assert!(matches!(
            &p.actions[1].decision,
            Decision::Do(Step::ArchiveLogs { .. })
        ));
        // What the instance reported decides: /var on its own volume.
        let mut o = disk_fleet();
        o.layout = Some(crate::disk::parse_lsblk(
            r#"{"blockdevices":[{"name":"xvda","type":"disk","children":[{"name":"xvda1","type":"part","mountpoint":"/","fstype":"xfs"}]},{"name":"xvdf","type":"disk","mountpoint":"/var","fstype":"ext4"}]}"#,
        ));
        let var = DISK.replace("\"path\": \"/data\"", "\"path\": \"/var\"");
        let p = plan(&incident(&var), &o, &config());
        assert!(
            matches!(
                &p.actions[0].decision,
                Decision::Do(Step::CleanupTemp { .. })
            ),
            "/var/tmp is on /var"
        );
        assert!(matches!(
            &p.actions[1].decision,
            Decision::Do(Step::ArchiveLogs { .. })
        ));
        let p = plan(&incident(&root), &o, &config());
        assert!(
            matches!(
                &p.actions[0].decision,
                Decision::Do(Step::CleanupTemp { .. })
            ),
            "/tmp is on /"
        );
        assert_eq!(
            decision_of(&p, ArchiveLogs),
            "i-0123456789abcdef0: skip: /var/log is on /var, not on /: cleaning there frees nothing on the full filesystem"
        );
    }

    #[test]
    fn disk_full_limits_and_refusals() {
        let i = incident(DISK);
        // Below the expansion threshold: cleanup only.
        let low = DISK
            .replace("[97.2", "[91.0")
            .replace("97.2]", "91.0]")
            .replace(":97.2}", ":91.0}");
        let p = plan(&incident(&low), &disk_fleet(), &config());
        assert_eq!(
            decision_of(&p, ActionName::ExpandVolume),
            "/data (xvdf): skip: usage 91.0% is below 95% (disk_full.expand_at_percent): cleanup only"
        );
        assert!(
            decision_of(&p, ActionName::CleanupTemp).contains("not on /data"),
            "{}",
            decision_of(&p, ActionName::CleanupTemp)
        );
        // Capped at the maximum volume size.
        let mut capped = config();
        capped.playbooks.disk_full.max_volume_gib = 110;
        assert_eq!(expansion_of(&plan(&i, &disk_fleet(), &capped)).to_gib, 110);
        capped.playbooks.disk_full.max_volume_gib = 100;
        assert_eq!(
            decision_of(&plan(&i, &disk_fleet(), &capped), ActionName::ExpandVolume),
            "vol-0000000000000000b: skip: the volume is 100 GiB, at or above the maximum of 100 GiB (disk_full.max_volume_gib)"
        );
        // An unknown filesystem is never grown.
        let btrfs = DISK.replace("\"ext4\"", "\"btrfs\"");
        assert!(
            decision_of(&plan(&incident(&btrfs), &disk_fleet(), &config()), ActionName::ExpandVolume)
                .ends_with("skip: filesystem btrfs on vol-0000000000000000b is not grown automatically (ext2/3/4 and xfs are)")
        );
        // Volume without the opt-in tag; instance without it: nothing changes.
        let mut o = disk_fleet();
        if let Ok(v) = &mut o.volumes {
            v[1].tags.clear();
        }
        assert!(
            decision_of(&plan(&i, &o, &config()), ActionName::ExpandVolume)
                .contains("volume vol-0000000000000000b does not carry the opt-in tag")
        );
        let mut o = disk_fleet();
        if let Ok(Some(s)) = &mut o.instance {
            s.tags.clear();
        }
        let p = plan(&i, &o, &config());
        for a in [
            ActionName::CleanupTemp,
            ActionName::ArchiveLogs,
            ActionName::ExpandVolume,
        ] {
            assert!(
                decision_of(&p, a)
                    .contains("instance i-0123456789abcdef0 does not carry the opt-in tag"),
                "{a:?}"
            );
        }
        // NVMe without lsblk: refuses to guess; with it: the serial decides.
        let p = plan(&incident(DISK_NVME), &disk_fleet(), &config());
        assert!(
            decision_of(&p, ActionName::ExpandVolume)
                .contains("fail: / (nvme0n1p1) is an NVMe device")
        );
        let mut o = disk_fleet();
        o.layout = Some(crate::disk::parse_lsblk(
            r#"{"blockdevices":[{"name":"nvme0n1","type":"disk","serial":"vol0000000000000000a","pttype":"gpt","children":[{"name":"nvme0n1p1","type":"part","mountpoint":"/","fstype":"xfs"}]}]}"#,
        ));
        let p = plan(&incident(DISK_NVME), &o, &config());
        let e = expansion_of(&p);
        assert_eq!(
            (e.volume.as_str(), e.from_gib, e.to_gib),
            ("vol-0000000000000000a", 8, 18)
        );
        // Dry run and the kill switch leave it planned-but-not-done / skipped.
        let c = Config {
            kill_switch_parameter: Some("/k".into()),
            ..config()
        };
        let p = plan(
            &i,
            &Observed {
                kill_switch: Ok(true),
                ..disk_fleet()
            },
            &c,
        );
        assert!(
            decision_of(&p, ActionName::ExpandVolume)
                .ends_with("skip: kill switch /k is on: notify only")
        );
    }

    #[test]
    fn prometheus_disk_alerts_carry_the_free_percentage() {
        let i = incident(include_str!("../../events/alertmanager-disk-full.json"));
        assert_eq!(i.kind, IncidentKind::DiskFull);
        assert_eq!(disk_usage(&i), Some(96.5));
    }

    #[test]
    fn memory_pressure_restarts_only_a_tagged_valid_service() {
        let i = incident(MEMORY);
        let tag = "first-responder:restart-service";
        let with = |v: Option<&str>| {
            let mut o = fleet(1, 3);
            if let (Ok(Some(s)), Some(v)) = (&mut o.instance, v) {
                s.tags.insert(tag.into(), v.into());
            }
            o
        };
        let p = plan(&i, &with(Some("app.service")), &config());
        assert_eq!(p.severity, Severity::Warning);
        assert_eq!(
            decision_of(&p, ActionName::CollectDiagnostics),
            "i-0123456789abcdef0: do"
        );
        assert!(matches!(
            &p.actions[0].decision,
            Decision::Do(Step::CollectDiagnostics {
                set: Diagnostics::Memory,
                ..
            })
        ));
        match &p.actions[1].decision {
            Decision::Do(Step::RestartService { service, .. }) => {
                assert_eq!(service.as_str(), "app.service")
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(p.actions[1].stage, 1);
        assert_eq!(
            decision_of(
                &plan(&i, &with(None), &config()),
                ActionName::RestartService
            ),
            format!(
                "i-0123456789abcdef0: skip: i-0123456789abcdef0 carries no {tag} tag naming a service to restart"
            )
        );
        assert!(
            decision_of(
                &plan(&i, &with(Some("app; reboot")), &config()),
                ActionName::RestartService
            )
            .contains("is not a systemd service name")
        );
        // Configuration that leaves restart_service out refuses it.
        let mut c = config();
        c.playbooks.memory_pressure.stages = vec![vec![ActionName::CollectDiagnostics]];
        assert_eq!(
            decision_of(
                &plan(&i, &with(Some("app")), &c),
                ActionName::RestartService
            ),
            "absent"
        );
    }

    #[test]
    fn service_down_replaces_in_a_group_and_reboots_otherwise() {
        let i = incident(DOWN);
        let p = plan(&i, &fleet(1, 3), &config());
        use ActionName::*;
        let s: Vec<(ActionName, usize)> = p.actions.iter().map(|a| (a.name, a.stage)).collect();
        assert_eq!(
            s,
            vec![
                (Snapshot, 0),
                (CollectEvidence, 0),
                (ReplaceInstance, 1),
                (Reboot, 1),
                (Notify, 2)
            ]
        );
        assert!(matches!(
            &p.actions[2].decision,
            Decision::Do(Step::ReplaceInstance { .. })
        ));
        assert_eq!(
            decision_of(&p, Reboot),
            "i-0123456789abcdef0: skip: i-0123456789abcdef0 is in group web-asg: replaced, not rebooted"
        );
        let alone = Observed {
            group: Ok(None),
            ..fleet(1, 3)
        };
        let p = plan(&i, &alone, &config());
        assert!(decision_of(&p, ReplaceInstance).contains("is in no Auto Scaling group"));
        assert_eq!(decision_of(&p, Reboot), "i-0123456789abcdef0: do");
        let mut stopped = alone.clone();
        if let Ok(Some(s)) = &mut stopped.instance {
            s.state = Some("stopped".into());
        }
        assert!(
            decision_of(&plan(&i, &stopped, &config()), Reboot)
                .contains("is stopped: a reboot cannot bring it back")
        );
        // Not allowed by configuration: neither.
        let mut c = config();
        c.playbooks.service_down.stages = vec![vec![Snapshot, CollectEvidence]];
        let p = plan(&i, &fleet(1, 3), &c);
        assert_eq!(
            (decision_of(&p, ReplaceInstance), decision_of(&p, Reboot)),
            ("absent".into(), "absent".into())
        );
    }

    /// Prometheus's ServiceDown is a failed scrape: only EC2's own word
    /// that the instance is down lets replace or reboot go ahead.
    #[test]
    fn a_scrape_failure_never_reboots_or_replaces_a_healthy_instance() {
        use ActionName::*;
        let i = incident(include_str!("../../events/alertmanager-service-down.json"));
        let me = InstanceId::parse("t", "i-0123456789abcdef0").unwrap();
        let health = |state: &str, system: &str, inst: &str| InstanceHealth {
            state: Some(state.into()),
            system: Some(system.into()),
            instance: Some(inst.into()),
        };
        let observed = |h: Option<Result<InstanceHealth, String>>, in_group: bool| Observed {
            resolved: Some(Ok(me.clone())),
            health: h,
            group: if in_group {
                fleet(1, 3).group
            } else {
                Ok(None)
            },
            ..fleet(1, 3)
        };
        let healthy = "skip: EC2 status checks pass: the exporter, not the instance, is down";
        // (health, in a group) -> (replace_instance, reboot)
        type Case<'a> = (
            Option<Result<InstanceHealth, String>>,
            bool,
            &'a str,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                Some(Ok(health("running", "ok", "ok"))),
                true,
                healthy,
                healthy,
            ),
            (
                Some(Ok(health("running", "ok", "ok"))),
                false,
                healthy,
                healthy,
            ),
            (
                Some(Ok(health("running", "initializing", "insufficient-data"))),
                true,
                healthy,
                healthy,
            ),
            (
                Some(Ok(health("running", "ok", "impaired"))),
                true,
                "do",
                "skip: i-0123456789abcdef0 is in group web-asg",
            ),
            (
                Some(Ok(health("running", "impaired", "ok"))),
                false,
                "skip: i-0123456789abcdef0 is in no Auto Scaling group",
                "do",
            ),
            (
                Some(Err("DescribeInstanceStatus: Throttling".into())),
                true,
                "skip: EC2 status checks could not be read (DescribeInstanceStatus: Throttling)",
                "skip: EC2 status checks could not be read",
            ),
            (
                None,
                true,
                "skip: EC2 status checks were not read",
                "skip: EC2 status checks were not read",
            ),
        ];
        for (h, in_group, replace, reboot) in cases {
            let what = format!("{h:?}, in group {in_group}");
            let p = plan(&i, &observed(h, in_group), &config());
            let got = (decision_of(&p, ReplaceInstance), decision_of(&p, Reboot));
            assert!(
                got.0
                    .starts_with(&format!("i-0123456789abcdef0: {replace}")),
                "{what}: replace {}",
                got.0
            );
            assert!(
                got.1.starts_with(&format!("i-0123456789abcdef0: {reboot}")),
                "{what}: reboot {}",
                got.1
            );
        }
        // The healthy case says what to look at instead.
        let p = plan(
            &i,
            &observed(Some(Ok(health("running", "ok", "ok"))), true),
            &config(),
        );
        assert!(
            p.notes.iter().any(|n| n.contains("look at the exporter")),
            "{:?}",
            p.notes
        );
        // An impaired instance: the reason says why it acts.
        let p = plan(
            &i,
            &observed(Some(Ok(health("running", "ok", "impaired"))), true),
            &config(),
        );
        let replace = p
            .actions
            .iter()
            .find(|a| a.name == ReplaceInstance)
            .unwrap();
        assert!(
            replace
                .reason
                .starts_with("EC2's instance status check is impaired"),
            "{}",
            replace.reason
        );
        // SSM unreachable as well: acts only when configured to.
        let mut o = observed(Some(Ok(health("running", "ok", "ok"))), false);
        o.ssm_online = Some(Ok(false));
        assert!(decision_of(&plan(&i, &o, &config()), Reboot).contains(healthy));
        let mut c = config();
        c.playbooks.service_down.act_when_ssm_unreachable = true;
        assert_eq!(
            decision_of(&plan(&i, &o, &c), Reboot),
            "i-0123456789abcdef0: do"
        );
        o.ssm_online = Some(Ok(true));
        assert!(decision_of(&plan(&i, &o, &c), Reboot).contains(healthy));
        // CloudWatch's StatusCheckFailed is EC2's own word: acts as before,
        // without reading the checks again.
        let p = plan(&incident(DOWN), &fleet(1, 3), &config());
        assert_eq!(decision_of(&p, ReplaceInstance), "i-0123456789abcdef0: do");
    }

    #[test]
    fn report_of_a_plan_is_all_planned_or_skipped() {
        let r = plan(&incident(ALARM), &fleet(3, 3), &config()).to_report();
        let statuses: Vec<_> = r.actions.iter().map(|a| a.status).collect();
        use crate::report::Status::*;
        assert_eq!(statuses, vec![Planned, Planned, Skipped, Planned]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "high_cpu");
        assert_eq!(v["actions"][2]["action"], "scale_out");
        assert_eq!(v["actions"][2]["status"], "skipped");
    }
}
