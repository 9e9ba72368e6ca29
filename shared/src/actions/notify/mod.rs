//! notify: the notification through SNS, after every stage.

use super::Recovery;

#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
#[allow(unused_imports)]
pub(crate) use run::*;

pub const RECOVERY: Recovery = Recovery::Idempotent("sent again: a duplicate message is better than none, and it names its incident");

/// The IAM actions it calls (the template grants them; a test checks both ways).
pub const PERMISSIONS: &[&str] = &["sns:Publish"];
