//! reboot: reboot the instance (not in a group).

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
    ec2: [RebootInstances],
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
        (_, Ok(_)) => (
            Decision::Do(super::Step::Reboot(Step {
                instance: instance.clone(),
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

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
}

impl ActionStep for Step {
    fn describe(&self) -> String {
        format!("reboot {}", self.instance)
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
