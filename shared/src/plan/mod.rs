//! The planner: event + observed AWS state + configuration → plan.
//! Pure: no I/O, so dry-run, `first-responder plan` and tests share it.
//! Which actions a kind runs, and in what stages, comes from the playbooks
//! (`infra/playbooks.toml`); this module decides each one for the resources
//! at hand.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::disk::DiskTarget;
use crate::ids::{GroupName, InstanceId, ServiceName};
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::report::{ActionReport, IncidentReport, Severity, Status};

pub use crate::actions::{ActionName, Diagnostics, Expansion, Step};
use crate::actions::{
    expand_volume::expansion, scale_out::push_scale_out, snapshot::push_snapshots,
};
pub use crate::commands::HIGH_CPU_DIAGNOSTICS;
pub use crate::disk::BlockDev;
pub use crate::observed::{AttachedVolume, GroupState, InstanceHealth, InstanceState, Observed};

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

/// Whether tags carry the opt-in tag (or none is configured).
pub fn is_opted_in(tags: &BTreeMap<String, String>, config: &Config) -> bool {
    opted_in("", tags, config).is_ok()
}

/// Whether a resource is in scope for changes: it carries the opt-in tag
/// (when one is configured). Err holds the reason it is not.
pub(crate) fn opted_in(
    what: &str,
    tags: &BTreeMap<String, String>,
    config: &Config,
) -> Result<(), String> {
    match &config.opt_in {
        None => Ok(()),
        Some((k, v)) if tags.get(k) == Some(v) => Ok(()),
        Some((k, v)) => Err(format!(
            "{what} does not carry the opt-in tag {k}={v}: diagnostics and notification only"
        )),
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
    pub(crate) fn push(
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

    pub(crate) fn runs(&self, config: &Config, name: ActionName) -> bool {
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
pub(crate) fn declared_severity(incident: &Incident) -> Option<Severity> {
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

pub(crate) fn initial_severity(incident: &Incident, config: &Config) -> Severity {
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

/// SSM commands run as root on the instance, so they are sent only to an
/// opted-in instance (the IAM policy allows no other): Err is the decision
/// for an instance that is not.
pub(crate) fn commands_allowed(
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

pub(crate) fn plan_high_cpu(
    p: &mut Plan,
    instance: &InstanceId,
    observed: &Observed,
    config: &Config,
) {
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
pub(crate) fn instance_opted_in(
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

pub(crate) fn plan_disk_full(
    p: &mut Plan,
    instance: &InstanceId,
    observed: &Observed,
    config: &Config,
) {
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

pub(crate) fn plan_memory(
    p: &mut Plan,
    instance: &InstanceId,
    observed: &Observed,
    config: &Config,
) {
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
pub(crate) fn instance_is_down(
    p: &Plan,
    observed: &Observed,
    config: &Config,
) -> Result<String, String> {
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

pub(crate) fn plan_service_down(
    p: &mut Plan,
    instance: &InstanceId,
    observed: &Observed,
    config: &Config,
) {
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

pub(crate) fn incident_value(p: &Plan) -> Option<f64> {
    p.incident.alert.value
}

#[cfg(test)]
mod tests;
