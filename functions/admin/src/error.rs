//! The one error shape of the admin API: `{"error": {"code", "message", "field"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadflow_core::error::{ConfigError, StoreError};
use leadflow_stage::StageError;
use serde_json::json;
use tracing::warn;

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field the error is about, as a path (`reps[2].time_zone`, `status`).
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    /// A malformed request: not JSON, a path or query that cannot be read.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A well-formed request whose `field` breaks a rule, which `message` names.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message) }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "A valid admin bearer token is required.")
    }

    /// The store (or another service) failed; a retry may succeed. The cause is logged, not
    /// answered: it is about our infrastructure, not the request.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        warn!(error = %cause, "admin request failed on a backing service");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The lead store is unavailable; try again.",
        )
    }

    /// A configuration that does not compile, with the field named as well as `what` allows.
    pub fn config(e: &ConfigError) -> Self {
        match e {
            ConfigError::Parse { file, message } => ApiError::invalid(file.clone(), message.clone()),
            ConfigError::Invalid { what, message } => ApiError::invalid(field_of(what), format!("{what}: {message}")),
        }
    }
}

/// The field path a `ConfigError`'s `what` stands for: `rep anna` → `reps.anna`,
/// `fit rule senior` → `fit.senior`, anything else as it is.
fn field_of(what: &str) -> String {
    for (prefix, field) in [
        ("rep ", "reps"),
        ("team ", "teams"),
        ("fit rule ", "fit"),
        ("behaviour rule ", "behaviour"),
        ("campaign ", "campaign"),
    ] {
        if let Some(id) = what.strip_prefix(prefix) {
            return format!("{field}.{id}");
        }
    }
    match what {
        "scoring thresholds" => "thresholds".into(),
        other => other.to_string(),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::unavailable(&e)
    }
}

impl From<StageError> for ApiError {
    fn from(e: StageError) -> Self {
        ApiError::unavailable(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "field": self.field } });
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
