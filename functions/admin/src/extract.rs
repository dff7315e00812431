//! Extractors that answer in the API's error shape (axum's own answer in plain text), and the
//! authorization check every route takes first.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use leadflow_core::model::LeadId;
use leadflow_core::ports::Ports;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::{AdminAuth, AppState};

/// Proof that the caller may use the admin API. Every handler takes it as its first argument.
pub struct Authorized;

/// Compares in time independent of where the strings differ, and of their lengths: both sides
/// are hashed first, so the token cannot be guessed byte by byte, nor its length learnt, from
/// response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

impl AdminAuth {
    /// Whether a request with these headers may use the admin API (and the local stack's other
    /// token-guarded endpoints).
    pub fn allows(&self, headers: &axum::http::HeaderMap) -> bool {
        match self {
            AdminAuth::Upstream => true,
            // An empty token would match a request without one: it opens nothing. (`leadflow dev`
            // refuses to start with one; this holds for any other caller too.)
            AdminAuth::Bearer(token) if token.is_empty() => false,
            AdminAuth::Bearer(token) => {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                !given.is_empty() && same_secret(given.as_bytes(), token.as_bytes())
            }
        }
    }
}

impl<P: Ports> FromRequestParts<Arc<AppState<P>>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState<P>>) -> Result<Self, ApiError> {
        if state.auth.allows(&parts.headers) { Ok(Authorized) } else { Err(ApiError::unauthorized()) }
    }
}

/// The path's parameters.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| PathParams(v))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// The query string.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| QueryParams(v))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// The body as bytes, with its content type.
pub struct RawBody {
    pub content_type: String,
    pub bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "unreadable_body", e.body_text()))?;
        Ok(RawBody { content_type, bytes })
    }
}

/// A JSON body, read so that an error names the field it is about.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = RawBody::from_request(req, state).await?;
        if !body.content_type.is_empty() && !body.content_type.contains("json") {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send a JSON body (content-type: application/json).",
            ));
        }
        from_json(&body.bytes).map(JsonBody)
    }
}

/// Reads JSON into `T`; a type error names the field by its path (`reps[2].time_zone`).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().starts_with(b"[") {
        return Err(not_an_object());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("malformed_body", format!("The body is not valid JSON: {inner}"))
        } else {
            field_error(&path, &without_position(&inner.to_string()))
        }
    })?;
    de.end().map_err(|e| ApiError::bad_request("malformed_body", format!("The body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Reads a JSON value into `T`, naming the field of an error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if value.is_array() {
        return Err(not_an_object());
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        field_error(&path, &without_position(&e.into_inner().to_string()))
    })
}

/// Every body of this API is an object. serde would also read a struct from an array of its
/// fields in order (`["won"]` for `{"status": "won"}`), which no client means.
fn not_an_object() -> ApiError {
    ApiError::invalid("body", "must be a JSON object, not an array")
}

/// A type error at `path`; serde reports a missing field at its parent, so the field's own
/// name is taken from the message.
pub fn field_error(path: &str, message: &str) -> ApiError {
    let parent = if path == "." { "" } else { path };
    let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        Some(name) if parent.is_empty() => name.to_string(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_string(),
        None => parent.to_string(),
    };
    ApiError::invalid(field, message)
}

fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => message.to_string(),
    }
}

/// A lead id from the path.
pub fn lead_id(raw: &str) -> Result<LeadId, ApiError> {
    raw.parse::<LeadId>().map_err(|_| ApiError::bad_request("invalid_lead_id", "A lead id is a 26-character ULID."))
}

/// An id of a rep, team or campaign: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn config_id(field: &str, raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::invalid(field, "an id is 1 to 64 letters, digits, `-`, `_` or `.`"))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{AdminAuth, same_secret};

    fn with(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = auth.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn an_empty_token_opens_nothing() {
        let empty = AdminAuth::Bearer("".into());
        for h in [with(None), with(Some("Bearer ")), with(Some("Bearer x")), with(Some(""))] {
            assert!(!empty.allows(&h), "{h:?}");
        }
    }

    #[test]
    fn an_array_is_not_an_object_of_fields() {
        #[derive(Debug, serde::Deserialize)]
        struct Body {
            #[allow(dead_code)]
            status: String,
        }
        let refused = super::from_json::<Body>(b" [\"won\"]").err().map(|e| (e.status_code(), e.field));
        assert_eq!(refused, Some((axum::http::StatusCode::UNPROCESSABLE_ENTITY, Some("body".to_string()))));
        assert!(super::from_value::<Body>(serde_json::json!(["won"])).is_err());
        assert!(super::from_json::<Body>(b"{\"status\": \"won\"}").is_ok());
    }

    #[test]
    fn only_the_exact_token_passes() {
        let auth = AdminAuth::Bearer("a-long-enough-token".into());
        assert!(auth.allows(&with(Some("Bearer a-long-enough-token"))));
        for wrong in ["Bearer a-long-enough-toke", "Bearer a-long-enough-token ", "a-long-enough-token"] {
            assert!(!auth.allows(&with(Some(wrong))), "{wrong}");
        }
        assert!(!auth.allows(&with(None)));
        assert!(same_secret(b"abc", b"abc") && !same_secret(b"abc", b"abd") && !same_secret(b"abc", b"abcd"));
    }
}
