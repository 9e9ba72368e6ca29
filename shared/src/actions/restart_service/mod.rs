//! restart_service: restart one systemd service unit named by the instance's tag, and read its state.

use super::Recovery;

#[cfg(feature = "aws")]
mod run;

pub const RECOVERY: Recovery = Recovery::Unverifiable;

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["ssm:SendCommand", "ssm:GetCommandInvocation"];
