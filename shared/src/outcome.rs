//! What came of one action, before it becomes a report.

#[cfg(feature = "aws")]
use crate::aws::{HttpResponse, refused, sdk_error};
use crate::report::Status;
#[cfg(feature = "aws")]
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// Result of one step, before it becomes an [`ActionReport`].
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
    pub(crate) fn done(detail: impl Into<String>, ids: Vec<String>) -> Self {
        Self {
            status: Status::Done,
            detail: detail.into(),
            ids,
            output: None,
            exit_code: None,
            uncertain: false,
        }
    }
    pub(crate) fn skipped(detail: impl Into<String>) -> Self {
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
    pub(crate) fn uncertain(detail: impl Into<String>) -> Self {
        Self {
            uncertain: true,
            ..Self::failed(format!(
                "{}; the change may have been made, so it is not repeated automatically: check it by hand",
                detail.into()
            ))
        }
    }

    /// Failed with this SDK error: certain when AWS refused the call, else
    /// the change may have been made.
    pub(crate) fn failed_call<E>(what: &str, e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let text = format!("{what}: {}", sdk_error(e));
        if refused(e) {
            Self::failed(text)
        } else {
            Self::uncertain(text)
        }
    }

    pub(crate) fn failed(detail: impl Into<String>) -> Self {
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
