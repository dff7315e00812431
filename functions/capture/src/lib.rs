//! Capture: `POST /leads` from a landing page, as JSON or a plain HTML form. Cheap checks only
//! (size, content type, origin, honeypot, field shapes, email syntax); the submission is queued
//! for validation and answered 202 with its lead id, or 303 to the form's thank-you page.
//! Also what a landing page loads: the optional form script (`GET /forms/leadflow.js`) and the
//! default thank-you page (`GET /thanks`).

pub mod captcha;
pub mod idempotency;
pub mod openapi;
pub mod thanks;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Duration;
use leadflow_app::api_error::ApiError;
use leadflow_app::metrics::{Metric, count};
use leadflow_core::config::{CaptureSettings, FormSettings};
use leadflow_core::error::FieldProblem;
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Clock, Ports, Stage, StageQueue};
use leadflow_core::submission::{BodyError, FieldValue, Fields, from_body};
use leadflow_core::validate::check_submission;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::captcha::{Captcha, Refusal};
use tracing::{info, warn};

/// The capture routes: `POST /leads`, with CORS for the configured origins; the form script and
/// the thank-you page, which any page may load. A configured CAPTCHA takes its secret from the
/// environment ([`captcha::SECRET_VAR`]).
pub fn router<P: Ports>(ports: Arc<P>) -> Router {
    let captcha = Captcha::from_env(ports.settings().capture.captcha.as_ref());
    router_with(ports, captcha)
}

/// [`router`] with the CAPTCHA check given.
pub fn router_with<P: Ports>(ports: Arc<P>, captcha: Captcha) -> Router {
    let settings = ports.settings().capture.clone();
    Router::new()
        .route("/leads", post(capture::<P>).fallback(method_not_allowed))
        .layer(Extension(captcha))
        .layer(cors(&settings))
        .route(SCRIPT_PATH, get(script))
        .route(thanks::PATH, get(thanks::page::<P>))
        .route(openapi::PATH, get(openapi::document))
        .with_state(ports)
}

pub const SCRIPT_PATH: &str = "/forms/leadflow.js";

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Pages load it on every view; an hour keeps a fix from taking long to reach them.
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../assets/leadflow.js"),
    )
        .into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Use POST to submit a lead.")
}

fn cors(settings: &CaptureSettings) -> CorsLayer {
    let origins: Vec<HeaderValue> =
        settings.allowed_origins.iter().filter(|o| o.as_str() != "*").filter_map(|o| o.parse().ok()).collect();
    let allow =
        if settings.allowed_origins.iter().any(|o| o == "*") { AllowOrigin::any() } else { AllowOrigin::list(origins) };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::HeaderName::from_static("idempotency-key")])
        .max_age(std::time::Duration::from_secs(3600))
}

enum Kind {
    Json,
    Form,
}

async fn capture<P: Ports>(
    State(ports): State<Arc<P>>,
    Extension(captcha): Extension<Captcha>,
    request: Request,
) -> Response {
    match accept(&*ports, &captcha, request).await {
        Ok(response) => response,
        Err(e) => {
            if e.is_server_error() {
                warn!(code = e.code.as_str(), "capture failed");
            }
            e.into_response()
        }
    }
}

async fn accept<P: Ports>(ports: &P, captcha: &Captcha, request: Request) -> Result<Response, ApiError> {
    let in_force = ports.settings();
    let settings = &in_force.capture;
    let (parts, body) = request.into_parts();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The submission is larger than {} bytes.", settings.max_body_bytes),
        )
    };
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let checked = check_origin(&parts.headers, settings).and_then(|()| content_kind(&parts.headers)).and_then(|kind| {
        if declared.is_some_and(|n| n > settings.max_body_bytes) { Err(too_large()) } else { Ok(kind) }
    });
    let kind = match checked {
        Ok(kind) => kind,
        Err(e) => {
            // A client waiting for `100 Continue` sends no body after a final answer; any other
            // is sending it now.
            if declared.is_none_or(|n| n <= DRAIN_LIMIT) && !expects_continue(&parts.headers) {
                drain(body, DRAIN_LIMIT).await;
            }
            return Err(e);
        }
    };
    let bytes = read_capped(body, settings.max_body_bytes).await.map_err(|e| match e {
        Unread::TooLarge => too_large(),
        Unread::Broken => ApiError::bad_request("unreadable_body", "The body could not be read."),
    })?;
    let mut fields = match kind {
        Kind::Json => parse_json(&bytes)?,
        Kind::Form => parse_form(&bytes)?,
    };
    let now = ports.clock().now();
    let lead_id = LeadId(ulid::Ulid::from_parts(now.timestamp_millis().max(0) as u64, rand_bits()));
    let redirect = match kind {
        Kind::Form => form_redirect(&in_force.forms, &fields)
            .or_else(|| wants_page(&parts.headers).then(|| thanks::PATH.to_string())),
        Kind::Json => None,
    };

    if fields.get(&settings.honeypot_field).is_some_and(|v| !is_blank(v)) {
        // Bots get the answer humans get, so they learn nothing; the submission goes nowhere.
        info!("honeypot filled; submission dropped");
        return Ok(answer(lead_id, redirect));
    }
    // The widget's token is checked after the cheap checks below; it is no field of the lead.
    let captcha_token = captcha.field().and_then(|f| fields.remove(f));
    let idempotency_key = idempotency_key(&parts.headers, &fields)?
        .map(|key| (idempotency::fingerprint(&key, &fields.to_json_map()), key));
    let mut sub = from_body(fields, &settings.honeypot_field, settings.max_custom_fields).map_err(|p| ApiError {
        field: (!p.field.is_empty()).then(|| p.field.clone()),
        ..ApiError::unprocessable(p.code.clone(), p.message.clone())
    })?;
    sub.lead_id = lead_id;
    sub.received_at = now;
    let checked_email = check_submission(&sub).map_err(|problems| {
        let first =
            problems.first().cloned().unwrap_or_else(|| FieldProblem::new("body", "invalid", "invalid submission"));
        ApiError::invalid(first.field.clone(), first.message.clone()).with_problems(problems)
    })?;
    sub.checked_email = Some(checked_email);
    captcha
        .check(captcha_token.as_ref().and_then(FieldValue::as_str))
        .await
        .map_err(|r| captcha_refused(r, captcha))?;
    if let Some((fingerprint, key)) = idempotency_key {
        let expires = now + Duration::hours(i64::from(settings.idempotency_hours));
        // A retry is queued again under the first id: validation drops it if the first made it,
        // and if the first was lost between the claim and the queue, this one counts.
        sub.lead_id = idempotency::claim(ports.store(), &key, fingerprint, lead_id, now, expires).await?;
    }
    let body = serde_json::to_string(&sub).map_err(|e| unavailable(e.to_string()))?;
    ports.queue().send(Stage::Validate, &[body]).await.map_err(|e| unavailable(e.to_string()))?;
    count(Metric::LeadsCaptured, 1);
    info!(lead_id = %sub.lead_id, "lead captured");
    Ok(answer(sub.lead_id, redirect))
}

/// How much of a refused body is read and thrown away before the answer. A client that writes
/// its whole body before it reads (Python's urllib, most scripts) otherwise finds the
/// connection closed under it, with its unread bytes, and reports a broken pipe instead of
/// the JSON error. Past this much, closing is the lesser evil.
pub const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and throws away what is left of `body`, up to `limit` bytes; stops early at its end or
/// at a read error. Bytes are not kept, so a large body costs no memory.
pub async fn drain(mut body: Body, limit: usize) {
    let mut seen = 0usize;
    while seen <= limit {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => seen = seen.saturating_add(frame.data_ref().map_or(0, |d| d.len())),
            Some(Err(_)) | None => return,
        }
    }
}

enum Unread {
    TooLarge,
    Broken,
}

/// The whole body when it is at most `limit` bytes. A longer one is drained (to
/// [`DRAIN_LIMIT`]) before it is refused, so that the client reads the refusal.
async fn read_capped(mut body: Body, limit: usize) -> Result<Vec<u8>, Unread> {
    let mut bytes = Vec::new();
    loop {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
            None => return Ok(bytes),
            Some(Err(_)) => return Err(Unread::Broken),
            Some(Ok(frame)) => {
                let Some(data) = frame.data_ref() else { continue };
                if bytes.len() + data.len() > limit {
                    drain(body, DRAIN_LIMIT.saturating_sub(bytes.len() + data.len())).await;
                    return Err(Unread::TooLarge);
                }
                bytes.extend_from_slice(data);
            }
        }
    }
}

fn captcha_refused(refusal: Refusal, captcha: &Captcha) -> ApiError {
    let field = captcha.field().unwrap_or_default();
    match refusal {
        Refusal::Missing => {
            ApiError::unprocessable("captcha_required", "Complete the CAPTCHA, then send the form again.")
                .with_field(field)
        }
        Refusal::Failed => {
            ApiError::unprocessable("captcha_failed", "The CAPTCHA was not passed; try it again.").with_field(field)
        }
        Refusal::Unavailable(reason) => unavailable(format!("CAPTCHA check: {reason}")),
    }
}

fn unavailable(reason: String) -> ApiError {
    warn!(%reason, "capture could not queue the submission");
    ApiError::temporarily_unavailable("The lead could not be accepted right now; please submit again in a moment.")
}

fn rand_bits() -> u128 {
    // ULID randomness from the same source ulid::Ulid::new uses.
    ulid::Ulid::new().random()
}

/// The `redirect` of the form a plain form post names in its `form` field.
fn form_redirect(forms: &BTreeMap<String, FormSettings>, fields: &Fields<'_>) -> Option<String> {
    let id = match fields.get("form")? {
        FieldValue::Text(s) => s.to_string(),
        FieldValue::Number(n) => n.to_string(),
        _ => return None,
    };
    forms.get(&id)?.redirect.clone()
}

/// A browser navigating (a form posted without script) asks for `text/html`; API clients and
/// `fetch` do not, and keep their JSON answer.
fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| m.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html")))
}

/// 303 to `redirect` for a form post that has one, else 202 with the lead id.
fn answer(lead_id: LeadId, redirect: Option<String>) -> Response {
    if let Some(location) = redirect
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, value)], Body::empty()).into_response();
    }
    (StatusCode::ACCEPTED, axum::Json(json!({ "lead_id": lead_id }))).into_response()
}

fn check_origin(headers: &HeaderMap, settings: &CaptureSettings) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let allowed = settings.allowed_origins.iter().any(|o| o == "*" || o.as_bytes() == origin.as_bytes());
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed", "This site may not submit leads here."))
    }
}

fn content_kind(headers: &HeaderMap) -> Result<Kind, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Kind::Json),
        "application/x-www-form-urlencoded" => Ok(Kind::Form),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the lead as application/json or application/x-www-form-urlencoded.",
        )),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Fields<'_>, ApiError> {
    let malformed = |m: String| ApiError::bad_request("malformed_body", m);
    match Fields::from_json(bytes) {
        Ok(fields) => Ok(fields),
        Err(BodyError::NotAnObject) => Err(malformed("The body must be a JSON object of fields.".into())),
        Err(BodyError::Malformed(e)) => {
            Err(malformed(format!("The body is not valid JSON (line {}, column {}).", e.line(), e.column())))
        }
    }
}

fn parse_form(bytes: &[u8]) -> Result<Fields<'_>, ApiError> {
    let malformed = || ApiError::bad_request("malformed_body", "The form body is not valid UTF-8.");
    std::str::from_utf8(bytes).map_err(|_| malformed())?;
    let mut pairs = Vec::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        // Percent-escapes that decode to invalid UTF-8 come back as U+FFFD.
        if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
            return Err(malformed());
        }
        pairs.push((k, FieldValue::Text(v)));
    }
    Ok(Fields::from_pairs(pairs))
}

fn is_blank(v: &FieldValue<'_>) -> bool {
    match v {
        FieldValue::Null => true,
        FieldValue::Text(s) => s.trim().is_empty(),
        FieldValue::Bool(b) => !b,
        _ => false,
    }
}

fn idempotency_key(headers: &HeaderMap, fields: &Fields<'_>) -> Result<Option<String>, ApiError> {
    let out_of_bounds = |k: &str| k.is_empty() || k.len() > 255;
    let refused =
        || ApiError::bad_request("invalid_idempotency_key", "An idempotency key must be 1 to 255 characters.");
    // Checked even when the header's key is the one used, so that a bad field is never ignored.
    let field = match fields.get("submission_id") {
        None | Some(FieldValue::Null) => None,
        Some(FieldValue::Text(s)) if out_of_bounds(s) => return Err(refused()),
        Some(FieldValue::Text(s)) => Some(s.to_string()),
        Some(_) => {
            return Err(
                ApiError::unprocessable("invalid_type", "submission_id must be a string.").with_field("submission_id")
            );
        }
    };
    let raw = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be printable ASCII.")
                })?
                .to_string(),
        ),
        None => field,
    };
    match raw {
        Some(k) if out_of_bounds(&k) => Err(refused()),
        // Hashed: the key is the client's text, and only its identity matters.
        Some(k) => Ok(Some(hex::encode(Sha256::digest(k.as_bytes())))),
        None => Ok(None),
    }
}
