//! reboot: reboot the instance (not in a group).

use super::Recovery;

#[cfg(feature = "aws")]
mod run;

pub const RECOVERY: Recovery = Recovery::Unverifiable;

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["ec2:RebootInstances"];
