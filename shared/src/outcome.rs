//! What came of one action, before it becomes a report.

use crate::report::Status;

/// Result of one step, before it becomes an [`ActionReport`](crate::report::ActionReport).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub detail: String,
    pub ids: Vec<String>,
    pub output: Option<String>,
    /// A command's exit code, when one ran and ended.
    pub exit_code: Option<i32>,
    /// Failed, but the change may have been made (the call timed out or its
    /// answer was lost, the command ran and its result is bad or missing, the
    /// deadline cut it off). Such a failure keeps its cooldown and is never
    /// retried by a later delivery: only a change that surely was not made is.
    pub uncertain: bool,
}

impl Outcome {
    pub fn done(detail: impl Into<String>, ids: Vec<String>) -> Self {
        Self {
            status: Status::Done,
            detail: detail.into(),
            ids,
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
    pub fn skipped(detail: impl Into<String>) -> Self {
        Self {
            status: Status::Skipped,
            detail: detail.into(),
            ids: Vec::new(),
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
    /// Failed, and the change may have been made (see [`Outcome::uncertain`]).
    pub fn uncertain(detail: impl Into<String>) -> Self {
        Self {
            uncertain: true,
            ..Self::failed(format!(
                "{}; the change may have been made, so it is not repeated automatically: check it by hand",
                detail.into()
            ))
        }
    }

    pub fn failed(detail: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            detail: detail.into(),
            ids: Vec::new(),
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
}
