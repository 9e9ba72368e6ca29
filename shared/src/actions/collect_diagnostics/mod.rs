//! collect_diagnostics: fixed diagnostics (processes, memory, disks, load) through SSM.


use super::Recovery;

#[cfg(feature = "aws")]
mod run;

pub const RECOVERY: Recovery = Recovery::ReadOnly;

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["ssm:SendCommand", "ssm:GetCommandInvocation"];

/// Which fixed diagnostics to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostics {
    Cpu,
    Memory,
}
