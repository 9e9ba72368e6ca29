//! archive_logs: compress old rotated logs under /var/log (and ship them to S3 when a bucket is set).

use super::Recovery;

#[cfg(feature = "aws")]
mod run;

pub const RECOVERY: Recovery = Recovery::Idempotent("it compresses only rotated logs not yet compressed and not held open");

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["ssm:SendCommand", "ssm:GetCommandInvocation"];
