//! collect_evidence: EC2 status checks and the console output.

use super::Recovery;
use serde::Deserialize;
use toml::Spanned;
use super::ActionStep;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use super::context::{Decision, instance_opted_in, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::ReadOnly;

crate::actions::clients::permissions! {
    ec2: [DescribeInstanceStatus, GetConsoleOutput],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[];

/// No parameters: its table (`[kind.collect_evidence]`) may be left out, or empty.
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

/// The status checks always; the console output of an opted-in instance only.
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    p.push(
        config,
        ActionName::CollectEvidence,
        instance.to_string(),
        "the instance's status checks and console output",
        Decision::Do(super::Step::CollectEvidence(Step {
            instance: instance.clone(),
            console: instance_opted_in(instance, observed, config).is_ok(),
        })),
    );
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    /// The console output too: allowed for opted-in instances only.
    pub console: bool,
}

impl ActionStep for Step {
    fn describe(&self) -> String {
        format!("read the status checks and console output of {}", self.instance)
    }
    fn is_mutating(&self) -> bool {
        false
    }
}
