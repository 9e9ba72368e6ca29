//! cleanup_temp: delete old, unused regular files under /tmp and /var/tmp on the alerted filesystem.

use super::Recovery;
use super::script::Script;
use super::ActionStep;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use super::context::{on_alerted_filesystem, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Idempotent("it deletes only files still old and unused, and reports what it freed");

crate::actions::clients::permissions! {
    ssm: [SendCommand, GetCommandInvocation],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[super::Need::Volumes, super::Need::Layout];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[Script {
    name: "cleanup_temp",
    usage: "[--days N]",
    example: &["--days", "7"],
    build: |a| {
        let days = match a.get("--days") {
            Some(_) => Some(a.number::<u32>("--days", None)?),
            None => None,
        };
        Ok(crate::commands::cleanup_temp(days))
    },
}];

/// `[kind.cleanup_temp]`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    /// A shorter age than the host's own (its systemd-tmpfiles, else 10
    /// days for /tmp and 30 for /var/tmp), in days; None: the host's.
    pub older_than_days: Option<u32>,
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
    pub older_than_days: Option<Spanned<i64>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let older_than_days = raw
            .older_than_days
            .is_some()
            .then(|| v.range("older_than_days", raw.older_than_days, (1, 3650), 10));
        Self { older_than_days }
    }
}

pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let days = p
        .playbook(config)
        .and_then(|pb| pb.cleanup_temp.older_than_days);
    let step = super::Step::CleanupTemp(Step {
        instance: instance.clone(),
        days,
    });
    let decision = on_alerted_filesystem(p, instance, observed, config, step, &["/tmp", "/var/tmp"]);
    p.push(
        config,
        ActionName::CleanupTemp,
        instance.to_string(),
        format!("delete files neither modified nor read for {} under /tmp and /var/tmp", ages(days)),
        decision,
    );
}

/// The ages the script will use, in the plan's words.
fn ages(max_days: Option<u32>) -> String {
    let host = "the host's own ages (its systemd-tmpfiles; else 10 days for /tmp and 30 for /var/tmp)";
    match max_days {
        Some(d) => format!("{host}, or {d} days where shorter (older_than_days)"),
        None => host.to_owned(),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    /// The playbook's shorter age, if any.
    pub days: Option<u32>,
}

impl ActionStep for Step {
    /// SSM: a find over /tmp and /var/tmp, tens of seconds on a full disk.
    fn typical(&self) -> std::time::Duration {
        std::time::Duration::from_secs(20)
    }
    fn describe(&self) -> String {
        format!(
            "delete regular files under /tmp and /var/tmp older than {} on {}",
            ages(self.days),
            self.instance
        )
    }
    fn is_mutating(&self) -> bool {
        true
    }
}
