//! replace_instance: mark the instance Unhealthy so its Auto Scaling group replaces it.

use super::Recovery;

#[cfg(feature = "aws")]
mod run;

pub const RECOVERY: Recovery = Recovery::Verifiable("the instance's health in its group: Unhealthy means it was done");

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["autoscaling:SetInstanceHealth", "autoscaling:DescribeAutoScalingInstances"];
