//! Unsubscribe: signed one-click opt-out links (RFC 8058).
//!
//! Every marketing email carries `List-Unsubscribe: <{public_url}/u/{token}>` and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; the token is the lead id signed with the
//! deployment's secret (`leadflow_core::unsubscribe`).
//!
//! - `GET /u/{token}` shows a confirmation page and changes nothing: mail scanners and link
//!   previews follow links, and must not unsubscribe anyone.
//! - `POST /u/{token}` unsubscribes at once, without a login: the mail client's one-click POST
//!   (body `List-Unsubscribe=One-Click`), the confirmation page's button, or an empty body. The
//!   address goes on the suppression list and every active nurture enrollment stops. Repeating
//!   it changes nothing and answers the same.
//!
//! The pages show nothing about the person (not even the address): whoever holds the link sees
//! only that it unsubscribes someone.
//!
//! The other signed links sent to leads are served here too: double opt-in's `/confirm/{token}`
//! ([`confirm`]).

pub mod confirm;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leadflow_app::api_error::ApiError;
use leadflow_app::optout::suppress_lead;
use leadflow_app::{StageError, activity};
use leadflow_core::model::{ActivityKind, LeadId, SuppressionReason};
use leadflow_core::ports::Leads;
use leadflow_core::ports::{Clock, Ports};
use leadflow_core::unsubscribe::{TokenError, verify};
use tracing::{error, info, warn};

/// The largest request body read: the one-click body is 26 bytes, the page's form post fewer.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The id of the `Unsubscribed` activity: one per lead, so a replayed POST records nothing new.
pub const ACTIVITY_ID: &str = "unsubscribed";

/// How the person unsubscribed, as recorded on the lead's trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The mail client's RFC 8058 one-click POST.
    OneClick,
    /// The link in the email, confirmed on our page (or any other POST).
    Link,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::OneClick => "one_click",
            Via::Link => "link",
        }
    }
}

/// What an unsubscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The address is now on the suppression list.
    Now(LeadId),
    /// The address was suppressed already (an earlier unsubscribe, a bounce, a complaint).
    Already(LeadId),
    /// No lead has this id any more (erased); there is nothing to unsubscribe.
    NoSuchLead,
}

pub fn router<P: Ports>(ports: Arc<P>) -> Router {
    Router::new()
        .route("/u/{token}", get(confirm_page::<P>).post(unsubscribe_post::<P>))
        .route(confirm::ROUTE, get(confirm::page_get::<P>).post(confirm::page_post::<P>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ports)
}

/// Unsubscribes the lead a verified token names: suppression, every active enrollment stopped,
/// and one `Unsubscribed` activity. Safe to repeat.
pub async fn unsubscribe<P: Ports>(ports: &P, lead_id: LeadId, via: Via) -> Result<Unsubscribed, StageError> {
    let store = ports.store();
    // A token may name a capture id that was merged into another lead.
    let Some(resolved) = store.resolve_lead(lead_id).await? else {
        return Ok(Unsubscribed::NoSuchLead);
    };
    let Some(lead) = store.get_lead(resolved).await? else {
        return Ok(Unsubscribed::NoSuchLead);
    };
    if lead.contact.email.trim().is_empty() {
        // An erased lead's tombstone: its address is gone, and it was suppressed at erasure.
        return Ok(Unsubscribed::NoSuchLead);
    }
    let now = ports.clock().now();
    // The opt-out and its trail entry are one write.
    let unsubscribed =
        activity(lead.id, ACTIVITY_ID.to_string(), now, ActivityKind::Unsubscribed { via: via.as_str().to_string() });
    let fresh = suppress_lead(ports, &lead, SuppressionReason::Unsubscribed, &[unsubscribed], now).await?;
    Ok(if fresh { Unsubscribed::Now(lead.id) } else { Unsubscribed::Already(lead.id) })
}

/// The token of the path; a path that does not decode (bad percent-encoding, not UTF-8) is a
/// malformed token like any other.
fn path_token(path: Result<Path<String>, PathRejection>) -> Result<String, TokenError> {
    path.map(|Path(token)| token).map_err(|_| TokenError::Malformed)
}

async fn confirm_page<P: Ports>(
    State(ports): State<Arc<P>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    // Only the signature is checked: a GET reads nothing and writes nothing.
    match path_token(path).and_then(|token| verify(&ports.settings().signing_keys, &token)) {
        Ok(_) => html_page(StatusCode::OK, &confirm_html(&sender_name(&*ports))),
        Err(e) => token_refused(&e, &headers),
    }
}

async fn unsubscribe_post<P: Ports>(
    State(ports): State<Arc<P>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let lead_id = match path_token(path).and_then(|token| verify(&ports.settings().signing_keys, &token)) {
        Ok(id) => id,
        Err(e) => return token_refused(&e, &headers),
    };
    // axum's own answer to a body over the limit (or cut off) is plain text.
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                &headers,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "The request is larger than an unsubscribe needs: send List-Unsubscribe=One-Click, or nothing.",
            );
        }
        Err(_) => {
            return error_response(&headers, StatusCode::BAD_REQUEST, "unreadable_body", "The body could not be read.");
        }
    };
    let via = if is_one_click(&headers, &body) { Via::OneClick } else { Via::Link };
    match unsubscribe(&*ports, lead_id, via).await {
        Ok(outcome) => {
            match outcome {
                Unsubscribed::Now(id) => info!(lead_id = %id, via = via.as_str(), "lead unsubscribed"),
                Unsubscribed::Already(id) => info!(lead_id = %id, via = via.as_str(), "lead was unsubscribed already"),
                Unsubscribed::NoSuchLead => info!(lead_id = %lead_id, "unsubscribe for a lead that no longer exists"),
            }
            // The same answer whatever happened, so the page tells nothing about the lead.
            html_page(StatusCode::OK, &done_html(&sender_name(&*ports)))
        }
        Err(e) => {
            error!(lead_id = %lead_id, error = %e, "unsubscribe failed");
            unavailable(&headers)
        }
    }
}

/// Whether the body is RFC 8058's `List-Unsubscribe=One-Click`, form-encoded or multipart.
pub fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if content_type.starts_with("multipart/form-data") { multipart_one_click(body) } else { urlencoded_one_click(body) }
}

fn is_one_click_pair(key: &str, value: &str) -> bool {
    key.trim().eq_ignore_ascii_case("List-Unsubscribe") && value.trim().eq_ignore_ascii_case("One-Click")
}

fn urlencoded_one_click(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(key, value)| is_one_click_pair(&key, &value))
}

/// Finds a part named `List-Unsubscribe` whose value is `One-Click`. Lenient on purpose: the
/// answer only decides how the opt-out is labelled, never whether it happens.
fn multipart_one_click(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let lower = line.to_ascii_lowercase();
        if !(lower.starts_with("content-disposition:") && lower.contains("name=\"list-unsubscribe\"")) {
            continue;
        }
        // Skip the part's remaining headers up to the blank line; the value follows.
        let mut value = None;
        for l in lines.by_ref() {
            if l.trim().is_empty() {
                value = lines.next();
                break;
            }
        }
        if value.is_some_and(|v| is_one_click_pair("List-Unsubscribe", v)) {
            return true;
        }
    }
    false
}

fn sender_name<P: Ports>(ports: &P) -> String {
    let settings = ports.settings();
    let sender = &settings.sender;
    sender.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_default()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

fn token_refused(e: &TokenError, headers: &HeaderMap) -> Response {
    match e {
        TokenError::Malformed => error_response(
            headers,
            StatusCode::BAD_REQUEST,
            "malformed_token",
            "This unsubscribe link is incomplete. Open the whole link from the email, or copy all of it into \
             the address bar.",
        ),
        TokenError::BadSignature => {
            warn!("unsubscribe link with a signature that does not match");
            error_response(
                headers,
                StatusCode::FORBIDDEN,
                "invalid_token",
                "This unsubscribe link is not valid. Use the link from the email you received.",
            )
        }
        TokenError::NoSecret => {
            error!("no signing key is configured (LEADFLOW_SIGNING_KEYS_SECRET); no link can be verified");
            unavailable(headers)
        }
    }
}

fn unavailable(headers: &HeaderMap) -> Response {
    let mut response = error_response(
        headers,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "Unsubscribing is temporarily unavailable. Please try again in a few minutes.",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

/// JSON for programs (mail clients' one-click POSTs), a page for browsers.
fn error_response(headers: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
    if wants_html(headers) {
        return html_page(status, &error_html(message));
    }
    let mut response = ApiError::new(status, code, message).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html_page(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page loads nothing, runs nothing, posts only to itself and cannot be framed.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The URL holds the token: never send it on to another site.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    response
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    minijinja::HtmlEscape(text).to_string()
}

fn from_whom(sender: &str) -> String {
    if sender.is_empty() { String::new() } else { format!(" from {}", escape_html(sender)) }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f5f5f4;color:#1c1917;\
margin:0;padding:3rem 1rem}main{max-width:28rem;margin:0 auto;background:#fff;border-radius:.5rem;padding:2rem;\
box-shadow:0 1px 3px rgba(0,0,0,.1)}h1{font-size:1.25rem;margin-top:0}p{line-height:1.5}\
button{font:inherit;background:#1c1917;color:#fff;border:0;border-radius:.375rem;padding:.625rem 1.25rem;\
cursor:pointer}button:hover{background:#44403c}";

fn page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex,nofollow\"><title>{title}</title><style>{STYLE}</style></head>\
         <body><main>{content}</main></body></html>\n"
    )
}

fn confirm_html(sender: &str) -> String {
    page(
        "Unsubscribe",
        &format!(
            "<h1>Unsubscribe</h1><p>Stop receiving marketing emails{}?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            from_whom(sender)
        ),
    )
}

fn done_html(sender: &str) -> String {
    page(
        "You are unsubscribed",
        &format!(
            "<h1>You are unsubscribed</h1><p>You will receive no more marketing emails{}. \
             You can close this page.</p>",
            from_whom(sender)
        ),
    )
}

fn error_html(message: &str) -> String {
    page("Unsubscribe", &format!("<h1>Unsubscribe</h1><p>{}</p>", escape_html(message)))
}
