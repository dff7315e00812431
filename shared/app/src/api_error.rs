//! The one error answer of every HTTP surface (capture, unsubscribe, the admin API, the local
//! stack's own endpoints): `{"error": {"code", "message", "field"}}`, with capture's `problems`
//! when a submission has several. Written once so that the surfaces cannot drift apart and the
//! CLI reads exactly what they write.
//!
//! This layer knows no HTTP library: the status is a number. The `axum` feature, which only the
//! surfaces turn on (they link axum anyway), makes the error an axum response, so that a
//! handler can answer `Result<_, ApiError>` as it is.

use std::fmt::Display;

use leadflow_core::error::{FieldProblem, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::warn;

use crate::StageError;

const BAD_REQUEST: u16 = 400;
const UNAUTHORIZED: u16 = 401;
const NOT_FOUND: u16 = 404;
const CONFLICT: u16 = 409;
const UNPROCESSABLE_ENTITY: u16 = 422;
const SERVICE_UNAVAILABLE: u16 = 503;

/// An error as an HTTP surface answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
    /// Machine-readable, `snake_case`; clients branch on it, so it never changes once shipped.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The request field the error is about, as a path (`reps[2].time_zone`, `status`).
    pub field: Option<String>,
    /// Every problem of a submission, not only the first (capture); absent from the body when
    /// empty.
    pub problems: Vec<FieldProblem>,
}

/// The body of an error answer, for whoever writes or reads one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What is inside `"error"`. The fields are in alphabetical order, the order in which
/// serde_json writes a map's keys, so the struct and [`ApiError::json`] write the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    /// Always written, `null` when no field is at fault: the OpenAPI documents require it.
    pub field: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<FieldProblem>,
}

impl ApiError {
    /// `status` is a number or, from a surface, its HTTP library's status code.
    pub fn new(status: impl Into<u16>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status: status.into(), code: code.into(), message: message.into(), field: None, problems: Vec::new() }
    }

    /// A malformed request: not JSON, a path or query that cannot be read.
    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(BAD_REQUEST, code, message)
    }

    /// A well-formed request that breaks a rule; [`with_field`](Self::with_field) names the
    /// field when one is at fault.
    pub fn unprocessable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(UNPROCESSABLE_ENTITY, code, message)
    }

    /// A well-formed request whose `field` breaks a rule, which `message` names.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::unprocessable("invalid_field", message).with_field(field)
    }

    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(NOT_FOUND, code, message)
    }

    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(CONFLICT, code, message)
    }

    /// The admin API's and the local stack's answer to a missing or wrong admin token.
    pub fn unauthorized() -> Self {
        Self::new(UNAUTHORIZED, "unauthorized", "A valid admin bearer token is required.")
    }

    /// A backing service failed and a retry may succeed; `message` tells the client what to do.
    pub fn temporarily_unavailable(message: impl Into<String>) -> Self {
        Self::new(SERVICE_UNAVAILABLE, "temporarily_unavailable", message)
    }

    /// The store (or another service) failed under an admin request. The cause is logged, not
    /// answered: it is about our infrastructure, not the request.
    pub fn unavailable(cause: &dyn Display) -> Self {
        warn!(error = %cause, "request failed on a backing service");
        Self::temporarily_unavailable("The lead store is unavailable; try again.")
    }

    pub fn with_field(self, field: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..self }
    }

    pub fn with_problems(self, problems: Vec<FieldProblem>) -> Self {
        Self { problems, ..self }
    }

    /// A 4xx: the request must change before it can succeed.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// A 5xx: our side failed.
    pub fn is_server_error(&self) -> bool {
        (500..600).contains(&self.status)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.clone(),
                field: self.field.clone(),
                message: self.message.clone(),
                problems: self.problems.clone(),
            },
        }
    }

    /// The body as JSON. Through a `Value`, whose keys serde_json writes sorted at every depth,
    /// so the answer's bytes are what the surfaces have always sent (a `FieldProblem` on its
    /// own writes `field` before `code`).
    pub fn json(&self) -> Value {
        json!(self.body())
    }

    /// The error an answer with `status` carries in `text`, if `text` is an error body.
    pub fn from_body(status: u16, text: &str) -> Option<Self> {
        let ErrorBody { error } = serde_json::from_str(text).ok()?;
        Some(Self { status, code: error.code, message: error.message, field: error.field, problems: error.problems })
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

#[cfg(feature = "axum")]
mod response {
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    use super::ApiError;

    impl ApiError {
        /// The status as axum's type; a number no status can have answers 500.
        pub fn status_code(&self) -> StatusCode {
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }

    impl IntoResponse for ApiError {
        fn into_response(self) -> Response {
            (self.status_code(), axum::Json(self.json())).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_one_every_surface_has_always_written() {
        let e = ApiError::invalid("reps[2].time_zone", "not a time zone");
        assert_eq!(e.status, 422);
        let text = e.json().to_string();
        assert_eq!(
            text,
            r#"{"error":{"code":"invalid_field","field":"reps[2].time_zone","message":"not a time zone"}}"#
        );
        let plain = ApiError::not_found("not_found", "No such endpoint.").json().to_string();
        assert_eq!(plain, r#"{"error":{"code":"not_found","field":null,"message":"No such endpoint."}}"#);
        let several = ApiError::invalid("email", "bad")
            .with_problems(vec![FieldProblem::new("email", "invalid_email", "bad")])
            .json()
            .to_string();
        assert_eq!(
            several,
            r#"{"error":{"code":"invalid_field","field":"email","message":"bad","problems":[{"code":"invalid_email","field":"email","message":"bad"}]}}"#
        );
    }

    #[test]
    fn a_client_reads_back_what_a_surface_wrote() {
        let sent = ApiError::conflict("status_refused", "No.")
            .with_field("status")
            .with_problems(vec![FieldProblem::new("status", "x", "y")]);
        assert_eq!(ApiError::from_body(409, &sent.json().to_string()), Some(sent));
        let without_field = r#"{"error":{"code":"c","message":"m"}}"#;
        assert_eq!(ApiError::from_body(400, without_field).and_then(|e| e.field), None);
        assert_eq!(ApiError::from_body(502, "<html>Bad gateway</html>"), None);
        assert_eq!(ApiError::from_body(500, r#"{"error":{"code":1,"message":"m"}}"#), None);
    }

    #[test]
    fn a_failed_store_is_a_503_that_keeps_its_cause_to_the_log() {
        let e = ApiError::from(StoreError::Unavailable("table leads: throttled".into()));
        assert_eq!((e.status, e.code.as_str()), (503, "temporarily_unavailable"));
        assert!(!e.message.contains("throttled"));
        assert!(e.is_server_error() && !e.is_client_error());
        assert!(ApiError::unauthorized().is_client_error());
    }
}
