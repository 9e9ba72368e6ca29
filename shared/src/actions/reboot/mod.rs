//! reboot: reboot the instance (not in a group); when EC2's system status
//! check failed (the host, not the instance), stop and start it instead, so
//! that it comes back on a new host: a reboot keeps it on the faulty one.

use super::Recovery;
use super::ActionStep;
use std::time::Duration;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use super::context::{Decision, instance_opted_in, down_or_skip, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Unverifiable;

crate::actions::clients::permissions! {
    ec2: [RebootInstances, StopInstances, StartInstances, DescribeInstances],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Group, super::Need::Health];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[];

/// `[kind.reboot]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// At most one reboot per instance within this many minutes.
    pub cooldown_minutes: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self { cooldown_minutes: 15 }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// `required`: held for a person's approval (read by the playbook).
    pub approval: Option<Spanned<String>>,
    /// `observe`, `approve` or `auto` (read by the playbook; `approval =
    /// "required"` is `approve`).
    pub mode: Option<Spanned<String>>,
    /// Changes an hour it may make (per account; read by the playbook).
    pub budget_per_hour: Option<Spanned<i64>>,
    pub cooldown_minutes: Option<Spanned<i64>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let d = Self::default();
        Self {
            cooldown_minutes: v.range("cooldown_minutes", raw.cooldown_minutes, (1, 24 * 60), d.cooldown_minutes),
        }
    }
}

/// Only when the instance itself is down, is running, and is in no group
/// that `replace_instance` (if listed) replaces it from.
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let Some(down) = down_or_skip(p, ActionName::Reboot, instance, observed, config) else {
        return;
    };
    let replaces = p.runs(config, ActionName::ReplaceInstance);
    let (decision, reason) = match (
        &observed.group,
        instance_opted_in(instance, observed, config),
    ) {
        // A group that will not replace it (a suspended process, the
        // instance on standby) leaves the reboot as the remedy.
        (Ok(Some(g)), _)
            if replaces && super::replace_instance::will_not_replace(g, instance).is_none() =>
        {
            (
                Decision::Skip(format!(
                    "{instance} is in group {}: replaced, not rebooted",
                    g.name
                )),
                String::new(),
            )
        }
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
        (_, Ok(s)) if host_at_fault(p, observed) => match s.root_device_type.as_deref() {
            Some("instance-store") => (
                Decision::Skip(format!(
                    "EC2's system status check failed (the host is at fault), and {instance} is instance-store-backed: it cannot be stopped and started onto a new host, and a reboot would keep it on the faulty one; launch a replacement from its AMI, or wait for AWS's scheduled event for the host"
                )),
                String::new(),
            ),
            _ => (
                Decision::Do(super::Step::Reboot(Step {
                    instance: instance.clone(),
                    stop_start: true,
                })),
                format!(
                    "{down}: EC2's system status check failed, so the host is at fault: stop and start {instance} (EBS-backed, in no group that replaces it) to move it to a new host, where a reboot would keep it on the faulty one. Its public IPv4 address changes unless it has an Elastic IP, and data on instance-store volumes is lost"
                ),
            ),
        },
        (_, Ok(_)) => (
            Decision::Do(super::Step::Reboot(Step {
                instance: instance.clone(),
                stop_start: false,
            })),
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

/// Whether the host, not the instance, is at fault: the alarm watches
/// `StatusCheckFailed_System`, or EC2 reports the system check impaired
/// while the instance check is not.
pub fn host_at_fault(p: &Context<'_>, observed: &Observed) -> bool {
    let alarm = p.incident.alert.source.is_cloudwatch()
        && p.incident
            .alert
            .metric
            .as_ref()
            .is_some_and(|m| m.name == "StatusCheckFailed_System");
    let checks = matches!(&observed.health, Some(Ok(h))
        if h.system.as_deref() == Some("impaired") && h.instance.as_deref() != Some("impaired"));
    alarm || checks
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    /// Stop and start (a new host) rather than reboot (the same host).
    pub stop_start: bool,
}

/// How long a stop may take before the start is given up on: an instance
/// on a failed host can hang in `stopping`.
pub const STOP_DEADLINE: Duration = Duration::from_secs(240);

impl ActionStep for Step {
    fn describe(&self) -> String {
        match self.stop_start {
            true => format!("stop and start {} (onto a new host)", self.instance),
            false => format!("reboot {}", self.instance),
        }
    }
    fn typical(&self) -> Duration {
        match self.stop_start {
            true => Duration::from_secs(90),
            false => Duration::from_secs(1),
        }
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn takes_instance_down(&self) -> bool {
        true
    }
    fn cooldown(&self, pb: &crate::actions::ActionParams, _: &Settings) -> Option<(String, Duration)> {
        let minutes = u64::from(pb.reboot.cooldown_minutes);
        Some((self.instance.to_string(), Duration::from_secs(minutes * 60)))
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{config, decision_of, fleet, incident};
    use crate::plan::{ActionName, Decision, Step, plan};

    const DOWN: &str = include_str!("../../../../events/service-down-alarm.json");

    /// The decision for a standalone instance (no group), with `metric`
    /// as the alarm's and the root device of `root_type`.
    fn standalone(metric: &str, root_type: &str) -> crate::plan::Plan {
        let mut o = fleet(1, 3);
        o.group = Ok(None);
        if let Ok(Some(i)) = &mut o.instance {
            i.root_device_type = Some(root_type.into());
        }
        let mut c = config();
        c.playbooks.service_down.all_auto();
        let event = DOWN.replace("\"StatusCheckFailed\"", &format!("\"{metric}\""));
        plan(&incident(&event), &o, &c)
    }

    #[test]
    fn the_host_at_fault_is_left_by_stop_and_start_and_never_for_instance_store() {
        let p = standalone("StatusCheckFailed_System", "ebs");
        let a = p.actions.iter().find(|a| a.name == ActionName::Reboot).unwrap();
        assert!(
            matches!(&a.decision, Decision::Do(Step::Reboot(s)) if s.stop_start),
            "{:?}",
            a.decision
        );
        assert!(a.reason.contains("a reboot would keep it on the faulty one"), "{}", a.reason);
        // The instance's own check, or the combined one: a reboot.
        for metric in ["StatusCheckFailed_Instance", "StatusCheckFailed"] {
            let p = standalone(metric, "ebs");
            let a = p.actions.iter().find(|a| a.name == ActionName::Reboot).unwrap();
            assert!(
                matches!(&a.decision, Decision::Do(Step::Reboot(s)) if !s.stop_start),
                "{metric}: {:?}",
                a.decision
            );
        }
        // Instance store: it cannot be stopped; refused with the reason.
        let p = standalone("StatusCheckFailed_System", "instance-store");
        let d = decision_of(&p, ActionName::Reboot);
        assert!(d.contains("skip: "), "{d}");
        assert!(d.contains("instance-store-backed: it cannot be stopped"), "{d}");
    }

    #[test]
    fn an_impaired_system_check_read_from_ec2_counts_too() {
        use crate::observed::InstanceHealth;
        let mut o = fleet(1, 3);
        o.group = Ok(None);
        o.health = Some(Ok(InstanceHealth {
            state: Some("running".into()),
            system: Some("impaired".into()),
            instance: Some("ok".into()),
        }));
        let mut c = config();
        c.playbooks.service_down.all_auto();
        let p = plan(&incident(DOWN), &o, &c);
        let a = p.actions.iter().find(|a| a.name == ActionName::Reboot).unwrap();
        assert!(
            matches!(&a.decision, Decision::Do(Step::Reboot(s)) if s.stop_start),
            "{:?}",
            a.decision
        );
    }
}
