//! snapshot: evidence before any change: every volume of the instance at one instant.

use crate::ids::{InstanceId, VolumeId};
// The decision still reads the plan being built (see ARCHITECTURE.md).

use super::Recovery;
use super::ActionName;
use serde::Deserialize;
use toml::Spanned;
use super::ActionStep;
use crate::observed::{Observed, AttachedVolume};
use super::context::{Decision, instance_opted_in, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(test)]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Verifiable("the incident's snapshots of the instance are looked up by their tags");

crate::actions::clients::permissions! {
    ec2: [CreateSnapshots, CreateTags, DescribeSnapshots],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Volumes];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[];

/// No parameters: its table (`[kind.snapshot]`) may be left out, or empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params;

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
}

impl Params {
    pub fn read(_: Raw, _: &mut crate::params::Validator) -> Self {
        Self
    }
}

/// A snapshot of every attached volume of an opted-in instance: the
/// evidence, before anything changes. A snapshot changes nothing of the
/// fleet, so a volume needs no opt-in tag of its own (the root volume, which
/// holds the logs, rarely carries one); the instance's tag is the scope.
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
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
                Decision::Do(super::Step::Snapshot(Step {
                    instance: instance.clone(),
                    volumes: taken
                        .iter()
                        .map(|v| (v.id.clone(), v.device.clone()))
                        .collect(),
                    exclude_boot,
                    exclude,
                }))
            };
            (decision, reason)
        }
    };
    p.push(config, ActionName::Snapshot, target, reason, decision);
}

/// Every attached volume of the instance at one instant (`CreateSnapshots`:
/// crash-consistent across them), less the volumes over the per-incident cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    /// The volumes snapshotted, with their device names.
    pub volumes: Vec<(VolumeId, Option<String>)>,
    /// Left out: the boot volume, and data volumes, over the cap.
    pub exclude_boot: bool,
    pub exclude: Vec<VolumeId>,
}

impl ActionStep for Step {
    fn describe(&self) -> String {
        format!(
            "snapshot {} of {} ({})",
            match self.volumes.len() {
                1 => "the volume".to_owned(),
                n => format!("all {n} volumes"),
            },
            self.instance,
            self.volumes
                .iter()
                .map(|(v, _)| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn is_evidence(&self) -> bool {
        true
    }
}
