//! Error types of the library. Messages name the field and show the value.

use thiserror::Error;

/// The event (or a value in it) cannot be handled; retrying will not help.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    #[error("event is not valid JSON: {0}")]
    Json(String),
    #[error("field `{field}`: {problem}")]
    Field { field: String, problem: String },
    #[error("unsupported event: {0}")]
    Unsupported(String),
}

impl InputError {
    pub fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A configuration variable is malformed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("configuration `{var}` = {value}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub problem: String,
}
