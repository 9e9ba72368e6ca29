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
    usage: "--kind high_cpu|high_cpu_for_kill|memory_pressure",
    example: &["--kind", "memory_pressure"],
    build: |a| match a.required("--kind")? {
        "high_cpu" => Ok(crate::commands::high_cpu_diagnostics(false)),
        // With the current-CPU sample kill_process picks from.
        "high_cpu_for_kill" => Ok(crate::commands::high_cpu_diagnostics(true)),
        "memory_pressure" => Ok(crate::commands::MEMORY_DIAGNOSTICS
            .iter()
            .map(|c| (*c).to_owned())
            .collect()),
        other => Err(format!(
            "--kind {other:?}: high_cpu, high_cpu_for_kill or memory_pressure (the kinds that run diagnostics)"
        )),
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
    /// `observe`, `approve` or `auto` (read by the playbook; `approval =
    /// "required"` is `approve`).
    pub mode: Option<Spanned<String>>,
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
    // kill_process picks from a current-CPU sample; only then is the page
    // worth its second of sampling.
    let sample_cpu = set == Diagnostics::Cpu
        && matches!(
            (p.stage_of(ActionName::CollectDiagnostics), p.stage_of(ActionName::KillProcess)),
            (Some(d), Some(k)) if d < k
        );
    let reason = match sample_cpu {
        true => format!("{reason}; first each process's CPU over one second, for kill_process"),
        false => reason.to_owned(),
    };
    let decision = match commands_allowed(instance, observed, config) {
        Ok(()) => Decision::Do(super::Step::CollectDiagnostics(Step {
            instance: instance.clone(),
            set,
            sample_cpu,
        })),
        Err(d) => d,
    };
    p.push(config, ActionName::CollectDiagnostics, instance.to_string(), reason, decision);
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    pub set: Diagnostics,
    /// The current-CPU sample first ([`crate::commands::CPU_SAMPLE`]).
    pub sample_cpu: bool,
}

impl ActionStep for Step {
    /// SSM: the agent picks the command up and the script's reads return in seconds.
    fn typical(&self) -> std::time::Duration {
        std::time::Duration::from_secs(2 + u64::from(self.sample_cpu))
    }
    fn describe(&self) -> String {
        format!("collect diagnostics on {} through SSM", self.instance)
    }
    fn is_mutating(&self) -> bool {
        false
    }
}
