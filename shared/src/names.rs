//! The actions' names: the one list of the actions (`with_actions!`) and
//! `ActionName`, at the bottom of the crate so that reports, outcomes and
//! settings can name an action without importing the actions themselves.
//! Each action's behaviour (`decide`, `recovery`, `permissions`, …) is in
//! `actions/`, built from the same list.

use serde::{Deserialize, Serialize};

/// The one list of the actions: `with_actions!(m)` is `m! { module => Variant, ... }`.
/// `ActionName` here, the registry (`actions/mod.rs`) and the playbooks
/// file's tables (`playbook::RawPlaybook`) are all built from it.
macro_rules! with_actions {
    ($m:ident) => {
        $m! {
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
            kill_process => KillProcess,
            // The notification always goes last, after every stage: not listed.
            #[serde(skip_deserializing)]
            notify => Notify,
        }
    };
}
pub(crate) use with_actions;

macro_rules! names {
    ($($(#[$attr:meta])* $module:ident => $variant:ident),+ $(,)?) => {
        /// In a playbook's stages, an unknown name is serde's "unknown
        /// variant `x`, expected one of ...", at its line.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ActionName {
            $($(#[$attr])* $variant),+
        }

        impl ActionName {
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// Its module's name: how playbooks, reports and IAM name it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($module)),+
                }
            }
        }
    };
}

with_actions!(names);

impl ActionName {
    /// Whether it changes the service (a fix, worth a mode and a check):
    /// evidence, diagnostics and the notification are not fixes.
    pub fn is_fix(self) -> bool {
        !matches!(
            self,
            Self::Snapshot | Self::CollectDiagnostics | Self::CollectEvidence | Self::Notify
        )
    }
}

/// The scope of incidents no `[scopes.NAME]` of the playbooks matches.
pub const DEFAULT_SCOPE: &str = "default";
