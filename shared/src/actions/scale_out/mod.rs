//! scale_out: one more instance in the Auto Scaling group, within its maximum and the cap.

use crate::ids::InstanceId;
// The decision still reads the plan being built (see ARCHITECTURE.md).

use super::Recovery;
use super::ActionName;
use super::ActionStep;
use crate::ids::GroupName;
use std::time::Duration;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use crate::observed::{Observed, GroupState};
use super::context::{Decision, opted_in, incident_value, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(test)]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Verifiable("the group's desired capacity is read against the size the claim meant");

crate::actions::clients::permissions! {
    autoscaling: [SetDesiredCapacity, DescribeAutoScalingGroups],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Group];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[];

/// `[kind.scale_out]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Scale out at or above this percentage; also the critical/warning line.
    pub at_percent: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self { at_percent: 90.0 }
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
    pub at_percent: Option<Spanned<f64>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let d = Self::default();
        Self {
            at_percent: v.percent("at_percent", raw.at_percent, d.at_percent),
        }
    }
}

/// Adds the scale-out decision: +1 up to MaxSize, at or above the threshold.
pub(crate) fn push_scale_out(
    p: &mut Context<'_>,
    subject: String,
    group: &Result<Option<GroupState>, String>,
    config: &Settings,
    no_group: impl FnOnce() -> String,
) {
    let threshold = p
        .playbook(config)
        .map_or(Params::default().at_percent, |pb| pb.scale_out.at_percent);
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
        (_, Ok(Some(g))) if g.is_suspended("Launch") => (
            g.name.to_string(),
            Decision::Skip(format!(
                "group {} has its Launch process suspended: a larger desired capacity would launch nothing",
                g.name
            )),
        ),
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
                Ok(()) => Decision::Do(super::Step::ScaleOut(Step {
                    group: g.name.clone(),
                    from: g.desired,
                    to: (g.desired + 1)
                        .min(g.max)
                        .min(config.max_desired_capacity.unwrap_or(i32::MAX)),
                    max: g.max,
                })),
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

pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let not_in_group = format!("{instance} is not in an Auto Scaling group");
    push_scale_out(p, instance.to_string(), &observed.group, config, || not_in_group);
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub group: GroupName,
    pub from: i32,
    pub to: i32,
    pub max: i32,
}

impl ActionStep for Step {
    fn describe(&self) -> String {
        format!(
            "add one instance to {} (desired {} -> {})",
            self.group, self.from, self.to
        )
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn intent(&self) -> String {
        format!("to={}", self.to)
    }
    fn cooldown(&self, _: &crate::actions::ActionParams, config: &Settings) -> Option<(String, Duration)> {
        Some((self.group.to_string(), config.scale_out_cooldown))
    }
}
