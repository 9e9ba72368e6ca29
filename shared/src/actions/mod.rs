//! The actions, one module each: its parameters and decision (pure), its
//! execution (`run.rs`, with the `aws` feature), its recovery after a crash
//! and the IAM actions it needs. The registry below is the one list of them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::config::Config;
use crate::ids::{GroupName, InstanceId, ServiceName, VolumeId};

pub use collect_diagnostics::Diagnostics;
pub use expand_volume::Expansion;

#[cfg(feature = "aws")]
mod dispatch;

/// Decides one action for the plan being built.
pub(crate) fn decide(
    name: ActionName,
    p: &mut crate::plan::Plan,
    instance: &InstanceId,
    observed: &crate::observed::Observed,
    config: &Config,
) {
    name.decide(p, instance, observed, config);
}
#[cfg(feature = "aws")]
mod freed;
#[cfg(all(test, feature = "aws"))]
mod tests;
#[cfg(feature = "aws")]
pub(crate) use freed::freed;

/// What an action is after a crash of the delivery that started it. Every
/// action states it: there is no default, so a new action left without it
/// does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Changes nothing: simply done again.
    ReadOnly,
    /// Done again safely: the reason says why.
    Idempotent(&'static str),
    /// AWS is read first (how: the text) and the action is repeated only if
    /// it was not done.
    Verifiable(&'static str),
    /// Nothing tells whether it happened and doing it twice is not harmless:
    /// never repeated by a later delivery, reported for a person.
    Unverifiable,
}

/// What an action's decision needs read from AWS beyond the instance itself
/// (always read: its tags decide every opt-in). The observation reads the
/// union of what a kind's listed actions need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The instance's attached volumes.
    Volumes,
    /// The instance's Auto Scaling group.
    Group,
    /// EC2's status checks (and SSM's view, when configured).
    Health,
    /// The instance's block devices, when the API alone cannot tell which
    /// volume holds the alerted filesystem.
    Layout,
}

/// The registry: each action's module and its name. `ActionName`, its
/// string form, its recovery and its permissions all come from this list.
macro_rules! registry {
    ($($(#[$attr:meta])* $module:ident => $variant:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// In a playbook's stages, an unknown name is serde's "unknown
        /// variant `x`, expected one of ...", at its line.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ActionName {
            $($(#[$attr])* $variant),+
        }

        impl ActionName {
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($module)),+
                }
            }

            /// What a later delivery does with it after a crash.
            pub fn recovery(self) -> Recovery {
                match self {
                    $(Self::$variant => $module::RECOVERY),+
                }
            }

            /// Decides this action for the plan being built (pure).
            pub(crate) fn decide(
                self,
                p: &mut crate::plan::Plan,
                instance: &InstanceId,
                observed: &crate::observed::Observed,
                config: &Config,
            ) {
                match self {
                    $(Self::$variant => $module::decide(p, instance, observed, config)),+
                }
            }

            /// What its decision needs observed.
            pub fn needs(self) -> &'static [Need] {
                match self {
                    $(Self::$variant => $module::NEEDS),+
                }
            }

            /// The IAM actions it calls.
            pub fn permissions(self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant => $module::PERMISSIONS),+
                }
            }
        }
    };
}

registry! {
    snapshot => Snapshot,
    collect_diagnostics => CollectDiagnostics,
    collect_evidence => CollectEvidence,
    scale_out => ScaleOut,
    cleanup_temp => CleanupTemp,
    archive_logs => ArchiveLogs,
    expand_volume => ExpandVolume,
    restart_service => RestartService,
    replace_instance => ReplaceInstance,
    reboot => Reboot,
    // The notification always goes last, after every stage: not listed.
    #[serde(skip_deserializing)]
    notify => Notify,
}

/// A fully specified AWS operation the executor can carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Every attached volume of the instance at one instant
    /// (`CreateSnapshots`: crash-consistent across them), less the volumes
    /// over the per-incident cap.
    Snapshot {
        instance: InstanceId,
        /// The volumes snapshotted, with their device names.
        volumes: Vec<(VolumeId, Option<String>)>,
        /// Left out: the boot volume, and data volumes, over the cap.
        exclude_boot: bool,
        exclude: Vec<VolumeId>,
    },
    CollectDiagnostics {
        instance: InstanceId,
        set: Diagnostics,
    },
    CollectEvidence {
        instance: InstanceId,
        /// The console output too: allowed for opted-in instances only.
        console: bool,
    },
    ScaleOut {
        group: GroupName,
        from: i32,
        to: i32,
        max: i32,
    },
    CleanupTemp {
        instance: InstanceId,
        days: u32,
    },
    ArchiveLogs {
        instance: InstanceId,
        days: u32,
        bucket: Option<String>,
    },
    ExpandVolume(Box<Expansion>),
    RestartService {
        instance: InstanceId,
        service: ServiceName,
    },
    ReplaceInstance {
        instance: InstanceId,
        group: GroupName,
    },
    Reboot {
        instance: InstanceId,
    },
    Notify {
        topic_arn: String,
    },
}

impl Step {
    /// Changes the fleet (as opposed to reading it or telling people).
    pub fn is_mutating(&self) -> bool {
        !matches!(
            self,
            Self::CollectDiagnostics { .. } | Self::CollectEvidence { .. } | Self::Notify { .. }
        )
    }

    /// Evidence: creates something (a snapshot) but changes nothing of the
    /// fleet, so the breaker, flap guard and cooldowns do not count it.
    pub fn is_evidence(&self) -> bool {
        matches!(self, Self::Snapshot { .. })
    }

    /// The change in words, as a verb phrase ("add one instance to web-asg
    /// (desired 1 -> 2)"): what a dry run says it would do.
    pub fn describe(&self) -> String {
        match self {
            Self::Snapshot {
                instance, volumes, ..
            } => format!(
                "snapshot {} of {instance} ({})",
                match volumes.len() {
                    1 => "the volume".to_owned(),
                    n => format!("all {n} volumes"),
                },
                volumes
                    .iter()
                    .map(|(v, _)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::CollectDiagnostics { instance, .. } => {
                format!("collect diagnostics on {instance} through SSM")
            }
            Self::CollectEvidence { instance, .. } => {
                format!("read the status checks and console output of {instance}")
            }
            Self::ScaleOut {
                group, from, to, ..
            } => format!("add one instance to {group} (desired {from} -> {to})"),
            Self::CleanupTemp { instance, days } => format!(
                "delete regular files older than {days} days under /tmp and /var/tmp on {instance}"
            ),
            Self::ArchiveLogs { instance, days, .. } => {
                format!("compress rotated logs older than {days} days under /var/log on {instance}")
            }
            Self::ExpandVolume(e) => format!(
                "grow {} from {} to {} GiB, then its partition and filesystem",
                e.volume, e.from_gib, e.to_gib
            ),
            Self::RestartService { instance, service } => {
                format!("restart {service} on {instance}")
            }
            Self::ReplaceInstance { instance, group } => {
                format!("mark {instance} Unhealthy so {group} replaces it")
            }
            Self::Reboot { instance } => format!("reboot {instance}"),
            Self::Notify { topic_arn } => format!("publish the notification to {topic_arn}"),
        }
    }

    /// What this step means to leave behind, recorded with its claim so a
    /// later delivery can check AWS if this one dies half-way.
    pub fn intent(&self) -> String {
        match self {
            Self::ScaleOut { to, .. } => format!("to={to}"),
            Self::ExpandVolume(e) => format!("to={}", e.to_gib),
            _ => String::new(),
        }
    }

    /// The cooldown this step takes: (action, resource, how long), with the
    /// parameters of the kind's playbook.
    pub fn cooldown(
        &self,
        config: &Config,
        kind: crate::incident::IncidentKind,
    ) -> Option<(&'static str, String, Duration)> {
        let pb = config.playbooks.get(kind)?;
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        let (action, resource, d) = match self {
            Self::ScaleOut { group, .. } => {
                ("scale_out", group.to_string(), config.scale_out_cooldown)
            }
            Self::ExpandVolume(e) => (
                "expand_volume",
                e.volume.to_string(),
                Duration::from_secs(u64::from(pb.expand_volume.cooldown_hours) * 3600),
            ),
            Self::RestartService { instance, .. } => (
                "restart_service",
                instance.to_string(),
                minutes(pb.restart_service.cooldown_minutes),
            ),
            Self::ReplaceInstance { group, .. } => (
                "replace_instance",
                group.to_string(),
                minutes(pb.replace_instance.cooldown_minutes),
            ),
            Self::Reboot { instance } => (
                "reboot",
                instance.to_string(),
                minutes(pb.reboot.cooldown_minutes),
            ),
            _ => return None,
        };
        (!d.is_zero()).then_some((action, resource, d))
    }
}
