//! collect_diagnostics: fixed diagnostics (processes, memory, disks, load) through SSM.


use super::Recovery;
use super::script::Script;
use super::ActionStep;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::incident::IncidentKind;
use serde::Deserialize;
use toml::Spanned;
use super::context::{Decision, commands_allowed, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::ReadOnly;

crate::actions::clients::permissions! {
    ssm: [SendCommand, GetCommandInvocation],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[Script {
    name: "diagnostics",
    usage: "--kind high_cpu|memory_pressure",
    example: &["--kind", "memory_pressure"],
    build: |a| {
        let cmds = match a.required("--kind")? {
            "high_cpu" => crate::commands::HIGH_CPU_DIAGNOSTICS,
            "memory_pressure" => crate::commands::MEMORY_DIAGNOSTICS,
            other => {
                return Err(format!(
                    "--kind {other:?}: high_cpu or memory_pressure (the kinds that run diagnostics)"
                ));
            }
        };
        Ok(cmds.iter().map(|c| (*c).to_owned()).collect())
    },
}];

/// Which fixed diagnostics to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnostics {
    Cpu,
    Memory,
}

impl Diagnostics {
    /// The set a kind runs unless its table says otherwise.
    pub fn for_kind(kind: IncidentKind) -> Self {
        match kind {
            IncidentKind::MemoryPressure => Self::Memory,
            _ => Self::Cpu,
        }
    }
}

/// `[kind.collect_diagnostics]`: optional; `set = "cpu"` or `"memory"`,
/// else the kind's own (`Diagnostics::for_kind`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    pub set: Option<Diagnostics>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// `required`: held for a person's approval (read by the playbook).
    pub approval: Option<Spanned<String>>,
    /// Changes an hour it may make (per account; read by the playbook).
    pub budget_per_hour: Option<Spanned<i64>>,
    pub set: Option<Diagnostics>,
}

impl Params {
    pub fn read(raw: Raw, _: &mut crate::params::Validator) -> Self {
        Self { set: raw.set }
    }
}

/// The kind's diagnostics set (`[kind.collect_diagnostics] set`, else by
/// kind), on an opted-in instance only.
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let set = p
        .playbook(config)
        .and_then(|pb| pb.collect_diagnostics.set)
        .unwrap_or(Diagnostics::for_kind(p.incident.kind));
    let reason = match set {
        Diagnostics::Cpu => "top CPU processes, memory, disks and load, through SSM Run Command",
        Diagnostics::Memory => {
            "processes by memory, free memory and recent OOM-killer lines, through SSM Run Command"
        }
    };
    let decision = match commands_allowed(instance, observed, config) {
        Ok(()) => Decision::Do(super::Step::CollectDiagnostics(Step {
            instance: instance.clone(),
            set,
        })),
        Err(d) => d,
    };
    p.push(config, ActionName::CollectDiagnostics, instance.to_string(), reason, decision);
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    pub set: Diagnostics,
}

impl ActionStep for Step {
    /// SSM: the agent picks the command up and the script's reads return in seconds.
    fn typical(&self) -> std::time::Duration {
        std::time::Duration::from_secs(2)
    }
    fn describe(&self) -> String {
        format!("collect diagnostics on {} through SSM", self.instance)
    }
    fn is_mutating(&self) -> bool {
        false
    }
}
