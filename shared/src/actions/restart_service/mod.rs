//! restart_service: restart one systemd service unit named by the instance's tag, and read its state.

use super::Recovery;
use super::script::Script;
use super::ActionStep;
use std::time::Duration;
use super::ActionName;
use crate::ids::InstanceId;
use crate::observed::Observed;
use crate::ids::ServiceName;
use crate::params::Validator;
use serde::Deserialize;
use toml::Spanned;
use super::context::{Decision, instance_opted_in, Settings, Context};

#[cfg(feature = "aws")]
mod run;
#[cfg(test)]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use run::run;

pub const RECOVERY: Recovery = Recovery::Unverifiable;

crate::actions::clients::permissions! {
    ssm: [SendCommand, GetCommandInvocation],
}

/// What its decision reads beyond the instance (see `Need`).
pub const NEEDS: &[super::Need] = &[];

/// The scripts it sends through SSM, for `first-responder script`.
pub const SCRIPTS: &[super::script::Script] = &[Script {
    name: "restart_service",
    usage: "--service NAME [--settle-seconds N]",
    example: &["--service", "app.service"],
    build: |a| {
        let service =
            ServiceName::parse("--service", a.required("--service")?).map_err(|e| e.to_string())?;
        let settle: u32 = a.number("--settle-seconds", Some(Params::default().restart_settle_seconds))?;
        if !(SETTLE_RANGE.0..=SETTLE_RANGE.1).contains(&i64::from(settle)) {
            return Err(format!(
                "--settle-seconds {settle}: {} to {}",
                SETTLE_RANGE.0, SETTLE_RANGE.1
            ));
        }
        Ok(crate::commands::restart_service(&service, settle))
    },
}];

/// `[kind.restart_service]`
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// The instance's tag naming the systemd unit to restart.
    pub service_tag: String,
    /// No second restart on the same instance within this many minutes.
    pub cooldown_minutes: u32,
    /// How long the unit must stay active, without systemd restarting it,
    /// for the restart to count as done.
    pub restart_settle_seconds: u32,
}

/// `restart_settle_seconds`: within SSM's patience for one command.
pub const SETTLE_RANGE: (i64, i64) = (1, 300);

impl Default for Params {
    fn default() -> Self {
        Self {
            service_tag: "first-responder:restart-service".into(),
            cooldown_minutes: 30,
            restart_settle_seconds: 10,
        }
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
    pub service_tag: Option<Spanned<String>>,
    pub cooldown_minutes: Option<Spanned<i64>>,
    pub restart_settle_seconds: Option<Spanned<i64>>,
}

impl Params {
    pub fn read(raw: Raw, v: &mut Validator) -> Self {
        let d = Self::default();
        let service_tag = match v.text("service_tag", raw.service_tag) {
            None => d.service_tag,
            Some(t) => {
                let k = t.get_ref().trim().to_owned();
                if k.is_empty() || k.len() > 128 || k.starts_with("aws:") {
                    let table = v.table.name.clone();
                    v.fail(
                        t.span(),
                        format!(
                            "{table}.service_tag is {k:?}: expected a tag key of 1-128 characters, not starting with aws:"
                        ),
                    );
                }
                k
            }
        };
        Self {
            service_tag,
            cooldown_minutes: v.range("cooldown_minutes", raw.cooldown_minutes, (1, 24 * 60), d.cooldown_minutes),
            restart_settle_seconds: v.optional_range(
                "restart_settle_seconds",
                raw.restart_settle_seconds,
                SETTLE_RANGE,
                d.restart_settle_seconds,
            ),
        }
    }
}

/// The unit named by the instance's tag, on an opted-in instance.
pub(crate) fn decide(p: &mut Context<'_>, instance: &InstanceId, observed: &Observed, config: &Settings) {
    let params = p
        .playbook(config)
        .map(|pb| pb.restart_service.clone())
        .unwrap_or_default();
    let tag = &params.service_tag;
    let (decision, reason) = match instance_opted_in(instance, observed, config) {
        Err(d) => (d, String::new()),
        Ok(s) => match s.tags.get(tag) {
            None => (
                Decision::Skip(format!(
                    "{instance} carries no {tag} tag naming a service to restart"
                )),
                String::new(),
            ),
            Some(name) => match ServiceName::parse(&format!("tag {tag} of {instance}"), name) {
                Err(e) => (Decision::Skip(format!("not restarted: {e}")), String::new()),
                Ok(service) => (
                    Decision::Do(super::Step::RestartService(Step {
                        instance: instance.clone(),
                        service: service.clone(),
                        settle_seconds: params.restart_settle_seconds,
                    })),
                    format!(
                        "restart {service}, named by the instance's {tag} tag, to release its memory; done once it stays up {} s",
                        params.restart_settle_seconds
                    ),
                ),
            },
        },
    };
    p.push(
        config,
        ActionName::RestartService,
        instance.to_string(),
        reason,
        decision,
    );
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub instance: InstanceId,
    pub service: ServiceName,
    pub settle_seconds: u32,
}

impl ActionStep for Step {
    /// SSM: a systemd restart and the check that the unit is active again.
    /// The restart, then the watch.
    fn typical(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 + u64::from(self.settle_seconds))
    }
    fn describe(&self) -> String {
        format!(
            "restart {} on {} and watch it for {} s",
            self.service, self.instance, self.settle_seconds
        )
    }
    fn is_mutating(&self) -> bool {
        true
    }
    fn cooldown(&self, pb: &crate::actions::ActionParams, _: &Settings) -> Option<(String, Duration)> {
        let minutes = u64::from(pb.restart_service.cooldown_minutes);
        Some((self.instance.to_string(), Duration::from_secs(minutes * 60)))
    }
}
