use serde::{Deserialize, Serialize};

/// A problem with one field of a submission, in the shape the capture API answers with and the
/// lead keeps as its validation reasons: a machine-readable code and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldProblem {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into(), message: message.into() }
    }
}

/// Failures of the lead store that a caller cannot decide away. Outcomes a caller must handle
/// (a lead already exists, a version moved on) are not errors: they are the `Ok` variants of each
/// port method.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered with a failure; a retry may succeed.
    #[error("the lead store is unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be read back as what it should be.
    #[error("a stored item is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the stage queue is unavailable: {0}")]
    Unavailable(String),
    /// The message could not be written as JSON: no retry can fix it.
    #[error("the stage message could not be written: {0}")]
    Unwritable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail service asked us to slow down; the send must be retried later, not recorded.
    #[error("the mail service is throttling sends: {0}")]
    Throttled(String),
    /// The mail service refused this message for good (bad address, suppressed recipient).
    #[error("the mail service rejected the message: {0}")]
    Rejected(String),
    #[error("the mail service is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
}

/// Configuration that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}
