//! cleanup_temp: delete old, unused regular files under /tmp and /var/tmp on the alerted filesystem.

use super::Recovery;

#[cfg(feature = "aws")]
mod run;

pub const RECOVERY: Recovery = Recovery::Idempotent("it deletes only files still old and unused, and reports what it freed");

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["ssm:SendCommand", "ssm:GetCommandInvocation"];
