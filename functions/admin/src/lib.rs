//! Admin: the authorized API for sales and marketing ops. For now: lead lookup by id and by
//! email, with status, normalized fields, score reasons, owner and routing explanation, and the
//! activity trail.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leadflow_core::model::LeadId;
use leadflow_core::normalize::{email_key, normalize_email};
use leadflow_core::ports::{LeadStore, Ports};
use serde::Deserialize;
use serde_json::{Value, json};

/// How callers prove they may use the admin API.
#[derive(Clone)]
pub enum AdminAuth {
    /// A bearer token (the local stack).
    Bearer(Arc<str>),
    /// Authorization is done in front of the function (API Gateway with IAM on AWS).
    Upstream,
}

struct AppState<P> {
    ports: Arc<P>,
    auth: AdminAuth,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message, "field": Value::Null } }))).into_response()
}

pub fn router<P: Ports>(ports: Arc<P>, auth: AdminAuth) -> Router {
    Router::new()
        .route("/admin/leads", get(find_by_email::<P>))
        .route("/admin/leads/{id}", get(show::<P>))
        .with_state(Arc::new(AppState { ports, auth }))
}

/// Compares in time independent of where the strings differ, so the token cannot be guessed
/// byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(auth: &AdminAuth, headers: &HeaderMap) -> bool {
    match auth {
        AdminAuth::Upstream => true,
        AdminAuth::Bearer(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            same_secret(given.as_bytes(), token.as_bytes())
        }
    }
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "unauthorized", "A valid admin bearer token is required.")
}

async fn show<P: Ports>(State(state): State<Arc<AppState<P>>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&state.auth, &headers) {
        return unauthorized();
    }
    let Ok(id) = id.parse::<LeadId>() else {
        return error(StatusCode::BAD_REQUEST, "invalid_lead_id", "A lead id is a 26-character ULID.");
    };
    let store = state.ports.store();
    match store.resolve_lead(id).await {
        Ok(Some(resolved)) => lead_response(&*state.ports, resolved).await,
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "lead_not_found",
            "No lead has this id (yet: a lead just captured appears within a second).",
        ),
        Err(_) => unavailable(),
    }
}

#[derive(Deserialize)]
struct EmailQuery {
    email: Option<String>,
}

async fn find_by_email<P: Ports>(
    State(state): State<Arc<AppState<P>>>,
    headers: HeaderMap,
    Query(q): Query<EmailQuery>,
) -> Response {
    if !authorized(&state.auth, &headers) {
        return unauthorized();
    }
    let Some(email) = q.email else {
        return error(StatusCode::BAD_REQUEST, "missing_query", "Search with ?email=<address>.");
    };
    let normalized = match normalize_email(&email) {
        Ok(n) => n,
        Err(problem) => return error(StatusCode::BAD_REQUEST, "invalid_email", &problem.message),
    };
    match state.ports.store().find_by_email_key(&email_key(&normalized.address)).await {
        Ok(Some(id)) => lead_response(&*state.ports, id).await,
        Ok(None) => error(StatusCode::NOT_FOUND, "lead_not_found", "No lead has this email address."),
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "The lead store is unavailable; try again.")
}

async fn lead_response<P: Ports>(ports: &P, id: LeadId) -> Response {
    let store = ports.store();
    let (lead, activities, enrollments) =
        match (store.get_lead(id).await, store.activities(id).await, store.enrollments(id).await) {
            (Ok(Some(l)), Ok(a), Ok(e)) => (l, a, e),
            (Ok(None), _, _) => return error(StatusCode::NOT_FOUND, "lead_not_found", "No lead has this id."),
            _ => return unavailable(),
        };
    let config = ports.config();
    let owner = lead.owner.as_ref().map(|o| {
        let rep = config.routing.rep(&o.rep_id);
        json!({
            "rep_id": o.rep_id,
            "rep_name": rep.map(|r| r.name.clone()),
            "team_id": o.team_id,
            "assigned_at": o.assigned_at,
            "sla_due_at": o.sla_due_at,
            "via_fallback": o.via_fallback,
            "explanation": o.explanation,
        })
    });
    axum::Json(json!({
        "id": lead.id,
        "version": lead.version,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "status": lead.status,
        "validity": lead.validity,
        "warnings": lead.warnings,
        "contact": lead.contact,
        "consent": lead.consent,
        "attribution": lead.attribution,
        "custom": lead.custom,
        "submissions": lead.submissions,
        "score": lead.score,
        "grade": lead.score.as_ref().map(|s| s.grade),
        "lifecycle": lead.lifecycle,
        "owner": owner,
        "enrollments": enrollments,
        "activities": activities,
    }))
    .into_response()
}
