//! replace_instance: mark the instance Unhealthy so its Auto Scaling group replaces it.

use super::Recovery;
use super::ActionStep;
use crate::ids::GroupName;
use std::time::Duration;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use super::context::{Decision, opted_in, down_or_skip, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(test)]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Verifiable("the instance's health in its group: Unhealthy means it was done");

crate::actions::clients::permissions! {
    autoscaling: [SetInstanceHealth, DescribeAutoScalingInstances],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Group, super::Need::Health];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[];

/// `[kind.replace_instance]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// At most one replacement per group within this many minutes.
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

/// Only when the instance itself is down (`instance_is_down`), in an
/// opted-in group.
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let Some(down) = down_or_skip(p, ActionName::ReplaceInstance, instance, observed, config) else {
        return;
    };
    {
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
            Ok(Some(g)) if will_not_replace(g, instance).is_some() => (
                instance.to_string(),
                Decision::Skip(will_not_replace(g, instance).unwrap_or_default()),
                String::new(),
            ),
            Ok(Some(g)) => match opted_in(&format!("group {}", g.name), &g.tags, config) {
                Err(why) => (instance.to_string(), Decision::Skip(why), String::new()),
                Ok(()) => (
                    instance.to_string(),
                    Decision::Do(super::Step::ReplaceInstance(Step {
                        instance: instance.clone(),
                        group: g.name.clone(),
                    })),
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
}

/// Why marking the instance Unhealthy would replace nothing: the group
/// does not replace, launch or terminate (a suspended process), or the
/// instance is not one it replaces (on standby, in the warm pool, already
/// leaving or still joining).
pub(crate) fn will_not_replace(g: &crate::observed::GroupState, instance: &InstanceId) -> Option<String> {
    if let Some(p) = ["ReplaceUnhealthy", "Launch", "Terminate"]
        .into_iter()
        .find(|p| g.is_suspended(p))
    {
        return Some(format!(
            "group {} has its {p} process suspended: it would not replace {instance}",
            g.name
        ));
    }
    match g.lifecycle.as_deref() {
        None | Some("InService") => None,
        Some(state) => Some(format!(
            "{instance} is {state} in group {}, not InService: the group does not replace it",
            g.name
        )),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    pub group: GroupName,
}

impl ActionStep for Step {
    fn describe(&self) -> String {
        format!("mark {} Unhealthy so {} replaces it", self.instance, self.group)
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn takes_instance_down(&self) -> bool {
        true
    }
    fn cooldown(&self, pb: &crate::actions::ActionParams, _: &Settings) -> Option<(String, Duration)> {
        let minutes = u64::from(pb.replace_instance.cooldown_minutes);
        Some((self.group.to_string(), Duration::from_secs(minutes * 60)))
    }
}
