//! The planner: event + observed AWS state + configuration → plan.
//! Pure: no I/O, so dry-run, `first-responder plan` and tests share it.
//! Which actions a kind runs, and in what stages, comes from the playbooks
//! (`infra/playbooks.toml`); this module decides each one for the resources
//! at hand.

use crate::actions::notify;
use crate::config::Config;
use crate::ids::{GroupName, InstanceId};
use crate::incident::{Incident, IncidentKind, Resource, Transition};
use crate::report::{ActionReport, IncidentReport, Severity, Status};
use crate::series::{Forecast, MetricContext};

pub use crate::actions::context::{disk_usage, is_opted_in};
use crate::actions::scale_out::push_scale_out;
pub use crate::actions::{ActionName, Decision, Diagnostics, Expansion, Step};
use crate::actions::{Context, Kind, Settings};
pub use crate::commands::HIGH_CPU_DIAGNOSTICS;
pub use crate::disk::BlockDev;
pub use crate::observed::{AttachedVolume, GroupState, InstanceHealth, InstanceState, Observed};

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
    /// The alert's metric before it fired, when it could be read.
    pub context: Option<MetricContext>,
    /// Where a disk's usage is heading, from that metric.
    pub forecast: Option<Forecast>,
    /// The event the incident came from, kept with a held action so that
    /// its approval can plan again from it (`crate::approval`).
    pub event: Option<std::sync::Arc<str>>,
    /// The account (with its alias) and region acted in, when the
    /// deployment acts in several (`crate::target`).
    pub account: Option<String>,
    pub region: Option<String>,
    /// The same, as codes (the budgets count by account).
    pub target: Option<crate::target::Target>,
    /// The instance's group's desired capacity (the share of it that may be
    /// taken down at once).
    pub group_size: Option<i32>,
    /// Each change's mode and scope (`crate::autonomy`), which its report
    /// and its track record carry.
    pub autonomy: std::collections::BTreeMap<ActionName, crate::autonomy::Autonomy>,
    /// The account and region the console links of its notifications
    /// point into: where it acts, else where the alert says, else home.
    pub console: Option<crate::oncall::links::Where>,
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

    pub fn report_with(&self, mut actions: Vec<ActionReport>) -> IncidentReport {
        for r in &mut actions {
            if let Some(a) = self.autonomy.get(&r.action) {
                r.mode = Some(a.mode.as_str().to_owned());
                r.scope = Some(a.scope.clone());
            }
        }
        let i = &self.incident;
        IncidentReport {
            id: i.id.clone(),
            kind: i.kind,
            alarm_name: i.alert.alarm_name.clone(),
            alarm_key: crate::alert::alarm_key(&i.alert),
            source: i.alert.source.as_str(),
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
            context: self.context.clone(),
            forecast: self.forecast.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            account_id: self.target.as_ref().map(|t| t.account.to_string()),
            refused: None,
            links: self.links(&actions),
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
            Decision::Do(_) | Decision::Hold(_) => reason.into(),
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

    /// Has the kind's listed actions decide (`f` calls them) in a context
    /// that sees only the incident, its kind's playbook and the settings;
    /// what they decided joins the plan in their stages.
    fn decide(&mut self, config: &Config, f: impl FnOnce(&mut Context<'_>, &Settings)) {
        let Some(pb) = config.playbooks.get(self.incident.kind) else {
            return;
        };
        let settings = config.settings();
        let incident = self.incident.clone();
        let mut cx = Context::new(
            &incident,
            Kind {
                kind: incident.kind,
                stages: &pb.stages,
                params: &pb.params,
                act_when_ssm_unreachable: pb.act_when_ssm_unreachable,
            },
        );
        f(&mut cx, &settings);
        for d in cx.decided {
            self.push(config, d.name, d.target, d.reason, d.decision);
        }
        for n in cx.notes {
            self.note(n);
        }
    }

    /// The alert's metric, when it comes: the context of the page, the
    /// forecast of a disk, and the steps that size themselves by it decided
    /// again. Planning first and adding the metric after gives the same plan
    /// as planning with it (the responder acts before the metric is in).
    pub fn with_metric(&mut self, metric: Option<Result<MetricContext, String>>) {
        match metric {
            Some(Ok(c)) => {
                if self.incident.kind.is_disk() {
                    // Only a percentage can be forecast to 100%: bytes
                    // read as percent would size the volume to its cap.
                    match c.as_percent() {
                        // The longer history when it was read.
                        Ok(()) => {
                            let points = match c.history.is_empty() {
                                true => &c.datapoints,
                                false => &c.history,
                            };
                            self.forecast = crate::series::forecast(points);
                        }
                        Err(why) => {
                            self.forecast = None;
                            self.note(why);
                        }
                    }
                }
                self.context = Some(c);
            }
            Some(Err(why)) => self.note(format!("metric not shown: {why}")),
            None => {}
        }
        for a in &mut self.actions {
            if let Decision::Do(step) | Decision::Hold(step) | Decision::Observe(step) =
                &mut a.decision
                && let Some(reason) = step.with_forecast(self.forecast.as_ref())
            {
                a.reason = reason;
            }
        }
    }

    /// How long the work typically takes: along the stages, the longest of
    /// each stage's steps that will run (held and skipped ones take none).
    /// The notification is not counted. Zero: nothing but the notification.
    pub fn typical_duration(&self) -> std::time::Duration {
        let stages = self.actions.iter().map(|a| a.stage + 1).max().unwrap_or(0);
        (0..stages)
            .map(|stage| {
                self.actions
                    .iter()
                    .filter(|a| a.stage == stage && a.name != ActionName::Notify)
                    .filter_map(|a| match &a.decision {
                        Decision::Do(step) => Some(step.typical()),
                        _ => None,
                    })
                    .max()
                    .unwrap_or_default()
            })
            .sum()
    }

    /// Whether a step of this stage decides by the metric.
    pub fn stage_uses_metric(&self, stage: usize) -> bool {
        self.actions
            .iter()
            .any(|a| a.stage == stage && matches!(&a.decision, Decision::Do(s) if s.uses_metric()))
    }

    /// The account and region the incident acts in, for its report and
    /// notification.
    pub fn set_target(&mut self, t: Option<&crate::target::Target>, config: &Config) {
        if let Some(t) = t {
            self.account = Some(crate::target::named(t.account.as_str(), config));
            self.region = Some(t.region.to_string());
            self.target = Some(t.clone());
            self.console =
                crate::oncall::links::Where::new(Some(t.account.as_str()), t.region.as_str());
        }
    }

    /// A note, once.
    pub(crate) fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// An undone action as a report: planned, skipped or failed.
pub fn decided(a: &PlannedAction) -> ActionReport {
    match &a.decision {
        Decision::Do(_) => ActionReport::new(a.name, &a.target, Status::Planned, &a.reason),
        Decision::Hold(_) => {
            ActionReport::new(a.name, &a.target, Status::AwaitingApproval, &a.reason)
        }
        Decision::Observe(_) => ActionReport::new(a.name, &a.target, Status::Observed, &a.reason),
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
/// Where a home incident's console links lead: the alert's account and
/// region, else the deployment's (`set_target` names a member's).
fn console_of(incident: &Incident, config: &Config) -> Option<crate::oncall::Where> {
    let a = &incident.alert;
    crate::oncall::Where::new(
        a.account
            .as_deref()
            .or(config.home_account.as_ref().map(|a| a.as_str())),
        a.region.as_deref().or(config.region.as_deref())?,
    )
}

pub fn plan(incident: &Incident, observed: &Observed, config: &Config) -> Plan {
    let group = observed.group.as_ref().ok().and_then(|g| g.as_ref());
    let instance = match (&incident.resource, &observed.resolved) {
        (Resource::Instance(i), _) => Some(i.clone()),
        (Resource::Address(_), Some(Ok(i))) => Some(i.clone()),
        _ => None,
    };
    let mut p = Plan {
        incident: incident.clone(),
        severity: Severity::Warning,
        instance: instance.clone(),
        group: group.map(|g| g.name.clone()),
        notes: Vec::new(),
        actions: Vec::new(),
        dry_run: config.dry_run,
        next_steps: config.playbooks.next_steps(incident.kind).to_vec(),
        context: None,
        forecast: None,
        event: None,
        account: None,
        autonomy: std::collections::BTreeMap::new(),
        region: None,
        target: None,
        console: console_of(incident, config),
        group_size: group.map(|g| g.desired),
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
            decide_firing(&mut p, incident, instance.as_ref(), observed, config);
        }
    }
    modes::apply(&mut p, observed, config);
    p.with_metric(observed.metric.clone());
    if let Some(s) = declared_severity(incident) {
        p.severity = s;
    }
    // A chronic problem pages critical whatever the alarm declares.
    if p.autonomy.values().any(|a| a.from == "chronic") {
        p.severity = Severity::Critical;
    }
    kill_switch(&mut p, observed, config);
    pause::apply(&mut p, observed, config);
    p.actions.push(notify_action(&p, config));
    p
}

/// A firing alert's actions: each one its playbook lists decides for
/// itself, on the instance, or on the group for a group-level alarm.
fn decide_firing(
    p: &mut Plan,
    incident: &Incident,
    instance: Option<&InstanceId>,
    observed: &Observed,
    config: &Config,
) {
    let kind = incident.kind;
    match (&incident.resource, instance) {
        // Each action the kind's playbook lists decides for itself,
        // in the playbook's order.
        (_, Some(i)) => p.decide(config, |cx, settings| {
            for name in cx.kind.stages.iter().flatten() {
                name.decide(cx, i, observed, settings);
            }
        }),
        (Resource::Address(a), None) => {
            let why = match &observed.resolved {
                Some(Err(why)) => why.clone(),
                _ => "not looked up".into(),
            };
            p.notes.push(format!(
                "could not tell which instance {a} is: {why}; nothing was done"
            ));
        }
        (Resource::Group(g), None) if config.playbooks.runs(kind, ActionName::ScaleOut) => {
            p.notes.push(format!(
                "group-level alarm on {g}: no single instance to snapshot or diagnose"
            ));
            p.decide(config, |cx, settings| {
                push_scale_out(cx, g.to_string(), &observed.group, settings, || {
                    format!("Auto Scaling group {g} does not exist")
                })
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

/// The kill switch on, or unreadable: every change becomes notify-only.
fn kill_switch(p: &mut Plan, observed: &Observed, config: &Config) {
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
            if matches!(
                a.decision,
                Decision::Do(_) | Decision::Hold(_) | Decision::Observe(_)
            ) {
                a.decision = Decision::Skip(stop.clone());
                stopped = true;
            }
        }
        if stopped {
            p.notes.push(stop);
        }
    }
}

/// The notification, last: to the topic, or skipped without one.
fn notify_action(p: &Plan, config: &Config) -> PlannedAction {
    let last = p.actions.iter().map(|a| a.stage + 1).max().unwrap_or(0);
    match &config.notify_topic_arn {
        Some(arn) => PlannedAction {
            name: ActionName::Notify,
            target: arn.clone(),
            reason: "tell the on-call what fired, what was done and what to do next".into(),
            decision: Decision::Do(Step::Notify(notify::Step {
                topic_arn: arn.clone(),
            })),
            stage: last,
        },
        None => PlannedAction {
            name: ActionName::Notify,
            target: "-".into(),
            reason: String::new(),
            decision: Decision::Skip("NOTIFY_TOPIC_ARN is not set".into()),
            stage: last,
        },
    }
}

pub(crate) fn initial_severity(incident: &Incident, config: &Config) -> Severity {
    let v = incident.alert.value;
    match incident.kind {
        IncidentKind::HighCpu => match v {
            Some(v) if v >= config.playbooks.high_cpu.scale_out.at_percent => Severity::Critical,
            _ => Severity::Warning,
        },
        IncidentKind::DiskFull => match disk_usage(incident) {
            Some(v) if v < config.playbooks.disk_full.expand_volume.at_percent => Severity::Warning,
            _ => Severity::Critical,
        },
        IncidentKind::MemoryPressure => Severity::Warning,
        IncidentKind::ServiceDown => Severity::Critical,
        // A forecast is not an outage yet: a warning, not a page.
        IncidentKind::DiskFilling => Severity::Warning,
        IncidentKind::Unrouted => Severity::Warning,
    }
}

mod links;
mod modes;
pub mod pause;

#[cfg(test)]
pub(crate) mod tests;
