//! The planner: event + observed AWS state + configuration → plan.
//! Pure: no I/O, so dry-run, `first-responder plan` and tests share it.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::config::Config;
use crate::ids::{GroupName, InstanceId, VolumeId};
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::report::{ActionReport, IncidentReport, Severity, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Snapshot,
    CollectDiagnostics,
    ScaleOut,
    Notify,
}

impl ActionName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::CollectDiagnostics => "collect_diagnostics",
            Self::ScaleOut => "scale_out",
            Self::Notify => "notify",
        }
    }
}

/// A fully specified AWS operation the executor can carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Snapshot {
        instance: InstanceId,
        volume: VolumeId,
        device: Option<String>,
    },
    CollectDiagnostics {
        instance: InstanceId,
    },
    ScaleOut {
        group: GroupName,
        from: i32,
        to: i32,
        max: i32,
    },
    Notify {
        topic_arn: String,
    },
}

impl Step {
    /// Changes the fleet (as opposed to reading it or telling people).
    pub fn is_mutating(&self) -> bool {
        matches!(self, Self::Snapshot { .. } | Self::ScaleOut { .. })
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
}

/// The fixed diagnostics for high CPU. Never built from event text.
/// The `echo` lines are fixed headers so the output reads well on a phone.
pub const HIGH_CPU_DIAGNOSTICS: &[&str] = &[
    "echo '== top processes by CPU =='",
    "ps aux --sort=-%cpu | head -n 15",
    "echo '== memory (MiB) =='",
    "free -m",
    "echo '== disks =='",
    "df -h",
    "echo '== load =='",
    "uptime",
];

/// The runbook's manual next steps for high CPU (chapter 14.4, `create_playbook`).
pub const HIGH_CPU_NEXT_STEPS: &[&str] = &[
    "Look at CPU usage in detail on the instance (top, htop).",
    "Identify the processes causing the load.",
    "Check the application logs.",
    "Restart the offending process if needed.",
    "Consider scaling the service (capacity, instance size).",
];

/// The runbook's manual steps for a full disk (chapter 14.4, `create_playbook`).
pub const DISK_FULL_NEXT_STEPS: &[&str] = &[
    "Check disk usage (df -h).",
    "Find the large files and directories (du -sh).",
    "Delete log files that are no longer needed.",
    "Check that log rotation is configured and running.",
    "Expand the disk if it is still needed.",
];

/// The runbook's manual steps for a memory leak (chapter 14.4, `create_playbook`).
pub const MEMORY_NEXT_STEPS: &[&str] = &[
    "Check memory usage (free -m).",
    "Identify the process suspected of leaking memory.",
    "Take a heap dump.",
    "Restart the application.",
    "Investigate the root cause.",
];

/// The runbook has no list for a service that is down; these are the usual first steps.
pub const SERVICE_DOWN_NEXT_STEPS: &[&str] = &[
    "Check the instance's status checks and console output.",
    "Check that the service process is running and listening (systemctl status, ss -ltnp).",
    "Read the service's most recent logs for the cause of the stop.",
    "Restart the service, or replace the instance if it does not answer.",
    "Confirm recovery from the monitoring side (the alert resolves).",
];

#[derive(Clone, Debug, PartialEq)]
pub struct AttachedVolume {
    pub id: VolumeId,
    pub device: Option<String>,
    pub size_gib: Option<i32>,
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
    pub volumes: Result<Vec<AttachedVolume>, String>,
    pub group: Result<Option<GroupState>, String>,
}

impl Observed {
    /// For incidents that need no AWS state.
    pub fn nothing() -> Self {
        Self {
            kill_switch: Ok(false),
            resolved: None,
            volumes: Ok(Vec::new()),
            group: Ok(None),
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
}

impl Plan {
    pub fn next_steps(&self) -> &'static [&'static str] {
        match self.incident.kind {
            IncidentKind::HighCpu => HIGH_CPU_NEXT_STEPS,
            IncidentKind::DiskFull => DISK_FULL_NEXT_STEPS,
            IncidentKind::MemoryPressure => MEMORY_NEXT_STEPS,
            IncidentKind::ServiceDown => SERVICE_DOWN_NEXT_STEPS,
            IncidentKind::Unrouted => &[],
        }
    }

    /// The plan as a report, every action `planned`, `skipped` or `failed`.
    pub fn to_report(&self) -> IncidentReport {
        let actions = self
            .actions
            .iter()
            .map(|a| match &a.decision {
                Decision::Do(_) => ActionReport::new(a.name, &a.target, Status::Planned, &a.reason),
                Decision::Skip(why) => ActionReport::new(a.name, &a.target, Status::Skipped, why),
                Decision::Fail(why) => ActionReport::new(a.name, &a.target, Status::Failed, why),
            })
            .collect();
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
    };
    if let Some(rule) = &incident.alert.alarm_rule {
        p.notes.push(format!("composite alarm rule: {rule}"));
    }
    match (&incident.transition, incident.kind) {
        (Transition::Ignored(why), _) => {
            p.severity = Severity::Info;
            p.notes.push(format!("nothing to do: {why}"));
            return p;
        }
        (Transition::Resolved, _) => {
            p.severity = Severity::Info;
            p.notes
                .push("alert resolved: no remediation on recovery".into());
            if !config.notify_on_resolve {
                p.notes
                    .push("NOTIFY_ON_RESOLVE is off: no notice sent".into());
                return p;
            }
        }
        (Transition::Firing, IncidentKind::HighCpu) => {
            p.severity = match incident.alert.value {
                Some(v) if v >= config.scale_out_cpu_threshold => Severity::Critical,
                _ => Severity::Warning,
            };
            match (&incident.resource, &instance) {
                (_, Some(i)) => plan_high_cpu(&mut p, i, observed, config),
                (Resource::Address(a), None) => {
                    let why = match &observed.resolved {
                        Some(Err(why)) => why.clone(),
                        _ => "not looked up".into(),
                    };
                    p.notes.push(format!("could not tell which instance {a} is: {why}; nothing was done"));
                }
                (Resource::Group(g), None) => {
                    p.notes.push(format!(
                        "group-level alarm on {g}: no single instance to snapshot or diagnose"
                    ));
                    let target = g.to_string();
                    push_scale_out(&mut p, target, &observed.group, config, || format!("Auto Scaling group {g} does not exist"));
                }
                _ => p.notes.push(
                    "the alert names no EC2 instance or Auto Scaling group: nothing to act on, nothing was done".into(),
                ),
            }
        }
        (
            Transition::Firing,
            kind @ (IncidentKind::DiskFull
            | IncidentKind::MemoryPressure
            | IncidentKind::ServiceDown),
        ) => {
            p.severity = Severity::Critical;
            p.notes.push(format!(
                "routed to the {kind} playbook on {}; its automated steps are not built yet, so nothing was done: follow the next steps below",
                instance.as_ref().map(ToString::to_string).unwrap_or_else(|| incident.resource.describe())
            ));
        }
        (Transition::Firing, IncidentKind::Unrouted) => {
            let what = incident
                .alert
                .metric
                .as_ref()
                .map(|m| format!("metric {}/{}", m.namespace, m.name))
                .unwrap_or_else(|| "an alarm without a metric".into());
            p.notes
                .push(format!("no playbook for {what}: nothing was done"));
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
    p.actions.push(match &config.notify_topic_arn {
        Some(arn) => PlannedAction {
            name: ActionName::Notify,
            target: arn.clone(),
            reason: "tell the on-call what fired, what was done and what to do next".into(),
            decision: Decision::Do(Step::Notify {
                topic_arn: arn.clone(),
            }),
        },
        None => PlannedAction {
            name: ActionName::Notify,
            target: "-".into(),
            reason: String::new(),
            decision: Decision::Skip("NOTIFY_TOPIC_ARN is not set".into()),
        },
    });
    p
}

fn plan_high_cpu(p: &mut Plan, instance: &InstanceId, observed: &Observed, config: &Config) {
    match &observed.volumes {
        Err(why) => p.actions.push(PlannedAction {
            name: ActionName::Snapshot,
            target: instance.to_string(),
            reason: String::new(),
            decision: Decision::Fail(format!("could not list the volumes of {instance}: {why}")),
        }),
        Ok(vols) if vols.is_empty() => p.actions.push(PlannedAction {
            name: ActionName::Snapshot,
            target: instance.to_string(),
            reason: String::new(),
            decision: Decision::Skip(format!("no EBS volumes attached to {instance}")),
        }),
        Ok(vols) => p.actions.extend(vols.iter().map(|v| PlannedAction {
            name: ActionName::Snapshot,
            target: v.id.to_string(),
            reason: format!(
                "preserve the evidence on {} ({}) before anything changes",
                v.id,
                v.device.as_deref().unwrap_or("unknown device")
            ),
            decision: match opted_in(&format!("volume {}", v.id), &v.tags, config) {
                Ok(()) => Decision::Do(Step::Snapshot {
                    instance: instance.clone(),
                    volume: v.id.clone(),
                    device: v.device.clone(),
                }),
                Err(why) => Decision::Skip(why),
            },
        })),
    }

    p.actions.push(PlannedAction {
        name: ActionName::CollectDiagnostics,
        target: instance.to_string(),
        reason: "top CPU processes, memory, disks and load, through SSM Run Command".into(),
        decision: Decision::Do(Step::CollectDiagnostics {
            instance: instance.clone(),
        }),
    });

    let not_in_group = format!("{instance} is not in an Auto Scaling group");
    push_scale_out(p, instance.to_string(), &observed.group, config, || {
        not_in_group
    });
}

/// Adds the scale-out decision: +1 up to MaxSize, at or above the threshold.
fn push_scale_out(
    p: &mut Plan,
    subject: String,
    group: &Result<Option<GroupState>, String>,
    config: &Config,
    no_group: impl FnOnce() -> String,
) {
    let threshold = config.scale_out_cpu_threshold;
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
    let reason = match &decision {
        Decision::Do(_) => format!(
            "CPU {:.1}% is at or above {threshold}%: add one instance",
            incident_value(p).unwrap_or_default()
        ),
        _ => String::new(),
    };
    p.actions.push(PlannedAction {
        name: ActionName::ScaleOut,
        target,
        reason,
        decision,
    });
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
            tags: opt_in_tags(),
        }
    }

    fn fleet(desired: i32, max: i32) -> Observed {
        Observed {
            kill_switch: Ok(false),
            resolved: None,
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
                (Snapshot, "vol-0000000000000000a".into(), "do".into()),
                (Snapshot, "vol-0000000000000000b".into(), "do".into()),
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
        let lower = Config {
            scale_out_cpu_threshold: 85.0,
            ..config()
        };
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
        if let Ok(v) = &mut observed.volumes {
            v[1].tags.clear();
        }
        if let Ok(Some(g)) = &mut observed.group {
            g.tags.insert("first-responder".into(), "disabled".into());
        }
        let s = summary(&plan(&i, &observed, &config()));
        assert_eq!(s[0].2, "do");
        assert_eq!(
            s[1].2,
            "skip: volume vol-0000000000000000b does not carry the opt-in tag first-responder=enabled: diagnostics and notification only"
        );
        assert_eq!(s[2].2, "do", "diagnostics need no opt-in");
        assert!(
            s[3].2
                .starts_with("skip: group web-asg does not carry the opt-in tag"),
            "{}",
            s[3].2
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

    #[test]
    fn report_of_a_plan_is_all_planned_or_skipped() {
        let r = plan(&incident(ALARM), &fleet(3, 3), &config()).to_report();
        let statuses: Vec<_> = r.actions.iter().map(|a| a.status).collect();
        use crate::report::Status::*;
        assert_eq!(statuses, vec![Planned, Planned, Planned, Skipped, Planned]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "high_cpu");
        assert_eq!(v["actions"][3]["action"], "scale_out");
        assert_eq!(v["actions"][3]["status"], "skipped");
    }
}
