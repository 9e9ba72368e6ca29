//! collect_evidence: EC2 status checks and the console output.

use super::Recovery;

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
#[allow(unused_imports)]
pub(crate) use run::*;

pub const RECOVERY: Recovery = Recovery::ReadOnly;

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["ec2:DescribeInstanceStatus", "ec2:GetConsoleOutput"];
