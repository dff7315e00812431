//! Leads: lookup, search, export, sales status and erasure.
//!
//! Search and export read every lead through [`Listings::list_leads`] and filter in memory:
//! the store has no index on status, owner or source. That is fine for an admin tool over tens
//! of thousands of leads; a search answers after at most [`SCAN_BUDGET`] leads with a cursor to
//! go on from, so one request never reads the whole table. The console's Leads page and its CSV
//! (`console::lead_list`) share [`Filter`]: the same query means the same leads in both.
//!
//! A campaign filter is the one that does not read leads to decide: the leads enrolled in the
//! campaign come from the store's index of enrollments by campaign ([`Filter::load_campaign`],
//! at most [`MAX_CAMPAIGN_LEADS`] of them), not from each lead's enrollments.
//!
//! Split by what each part is about: `filter` reads a query into a [`Filter`], `export` writes
//! the export, `csv_file` the CSV rows both exports (this one and the console's) share.

pub(crate) mod csv_file;
mod export;
mod filter;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadflow_app::sales::MarkError;
use leadflow_core::StoreError;
use leadflow_core::erasure::{erased_at, is_erased};
use leadflow_core::model::{Lead, LeadId};
use leadflow_core::normalize::{email_key, normalize_email};
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::{Value, json};

pub use self::export::{CSV_COLUMNS, export};
pub use self::filter::{
    Filter, LeadQuery, MAX_CAMPAIGN_LEADS, MAX_Q_CHARS, NONE, STAGES, first_source, id_at, parse_status,
};
use self::filter::{display_name, non_empty};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, JsonBody, PathParams, QueryParams, lead_id};
use leadflow_core::ports::{Enrollments, Leads, Listings, Trails};

/// Leads read per store page while searching or exporting.
pub const SCAN_PAGE: usize = 200;
/// Most leads one search request reads before it answers with what it found and a cursor.
pub const SCAN_BUDGET: usize = 5_000;
/// Most results a search answers at once.
pub const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;
const MAX_BY_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 2_000;

type St<P> = State<Arc<AppState<P>>>;

fn summary(lead: &Lead) -> Value {
    let erased = is_erased(lead);
    json!({
        "id": lead.id,
        "created_at": lead.created_at,
        "email": (!erased).then_some(&lead.contact.email),
        "name": display_name(lead),
        "company": lead.contact.company,
        "status": lead.status,
        "lifecycle": lead.lifecycle,
        "valid": lead.is_valid(),
        "score": lead.score.as_ref().map(|s| s.total),
        "grade": lead.score.as_ref().map(|s| s.grade),
        "owner": lead.owner.as_ref().map(|o| &o.rep_id),
        "source": lead.attribution.first_touch.utm.source,
        "erased": erased,
    })
}

fn parse_limit(raw: &Option<String>) -> ApiResult<usize> {
    match non_empty(raw) {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
    }
}

fn bad_cursor() -> ApiError {
    ApiError::invalid("cursor", "not a cursor this API answered; start again without one")
}

/// A search cursor: how many leads of a store page were read, and that page's store cursor.
fn parse_cursor(raw: &Option<String>) -> ApiResult<(Option<String>, usize)> {
    let Some(raw) = non_empty(raw) else {
        return Ok((None, 0));
    };
    let (skip, store) =
        raw.split_once(':').and_then(|(n, c)| n.parse::<usize>().ok().map(|n| (n, c))).ok_or_else(bad_cursor)?;
    Ok(((!store.is_empty()).then(|| store.to_string()), skip))
}

fn cursor(store: &Option<String>, skip: usize) -> String {
    format!("{skip}:{}", store.as_deref().unwrap_or(""))
}

/// `GET /admin/leads`: by `email=`, else a search over the filters of [`LeadQuery`] (see the
/// module's note on scanning). Answers `{"leads": [...], "next": cursor or null, "scanned": n}`; with a `next`,
/// ask again with `cursor=<next>` for more (a page may hold fewer than `limit` leads when the
/// scan budget ran out first).
pub async fn search<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    QueryParams(q): QueryParams<LeadQuery>,
) -> ApiResult<Response> {
    // Checked even for a lookup by address, which uses none of them: a bad one is told, not ignored.
    let filter = Filter::parse(&q)?;
    let limit = parse_limit(&q.limit)?;
    let (mut store_cursor, mut skip) = parse_cursor(&q.cursor)?;
    if let Some(email) = &q.email {
        return by_email(&*st.ports, email).await;
    }
    let filter = filter.load_campaign(&*st.ports).await?;
    let store = st.ports.store();
    let mut found = Vec::new();
    let mut scanned = 0usize;
    let mut pages = 0usize;
    let next = loop {
        let page = match store.list_leads(store_cursor.clone(), SCAN_PAGE).await {
            // The client's cursor, which the store did not hand out: theirs to fix, not a 503.
            Err(StoreError::Corrupt(_)) if pages == 0 && store_cursor.is_some() => return Err(bad_cursor()),
            page => page?,
        };
        pages += 1;
        let mut stopped_at = None;
        for (i, lead) in page.leads.iter().enumerate().skip(skip) {
            scanned += 1;
            if filter.matches(lead) {
                found.push(summary(lead));
            }
            if found.len() >= limit || scanned >= SCAN_BUDGET {
                stopped_at = Some(i + 1);
                break;
            }
        }
        if let Some(read) = stopped_at
            && read < page.leads.len()
        {
            break Some(cursor(&store_cursor, read));
        }
        let Some(following) = page.next else {
            break None;
        };
        store_cursor = Some(following);
        skip = 0;
        // Stop on a full answer, a spent budget, or a store that keeps answering empty pages.
        if found.len() >= limit || scanned >= SCAN_BUDGET || pages * SCAN_PAGE >= 2 * SCAN_BUDGET {
            break Some(cursor(&store_cursor, 0));
        }
    };
    Ok(axum::Json(json!({ "leads": found, "next": next, "scanned": scanned })).into_response())
}

async fn by_email<P: Ports>(ports: &P, email: &str) -> ApiResult<Response> {
    let normalized = normalize_email(email).map_err(|p| ApiError::invalid("email", p.message))?;
    match ports.store().find_by_email_key(&email_key(&normalized.address)).await? {
        Some(id) => lead_response(ports, id).await,
        None => Err(ApiError::not_found("lead_not_found", "No lead has this email address.")),
    }
}

/// The lead a path id names: itself, or the lead a merged capture id went into.
async fn resolve<P: Ports>(ports: &P, raw: &str) -> ApiResult<LeadId> {
    let id = lead_id(raw)?;
    ports.store().resolve_lead(id).await?.ok_or_else(|| {
        ApiError::not_found(
            "lead_not_found",
            "No lead has this id (yet: a lead just captured appears within a second).",
        )
    })
}

/// `GET /admin/leads/{id}`: status, normalized fields, score reasons, owner with the routing
/// explanation, enrollments and the activity trail.
pub async fn show<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let id = resolve(&*st.ports, &id).await?;
    lead_response(&*st.ports, id).await
}

async fn lead_response<P: Ports>(ports: &P, id: LeadId) -> ApiResult<Response> {
    let store = ports.store();
    let Some((lead, activities)) = store.lead_and_trail(id).await? else {
        return Err(ApiError::not_found("lead_not_found", "No lead has this id."));
    };
    let enrollments = store.enrollments(id).await?;
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
    Ok(axum::Json(json!({
        "id": lead.id,
        "version": lead.version,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "erased": is_erased(&lead),
        "erased_at": erased_at(&lead),
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
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct StatusBody {
    pub status: String,
    /// Who made the change: a rep id or name.
    #[serde(default)]
    pub by: Option<String>,
    /// Kept on the trail with the change.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /admin/leads/{id}/status` `{"status": "contacted"|"won"|"lost", "by": …}`. Won and lost
/// stop the lead's nurture. A lead never goes back to new; marking the same status twice is
/// harmless (`"changed": false`).
pub async fn set_status<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> ApiResult<Response> {
    let status = parse_status("status", body.status.trim())?;
    let by = match body.by.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) if b.chars().count() > MAX_BY_CHARS => {
            return Err(ApiError::invalid("by", format!("at most {MAX_BY_CHARS} characters")));
        }
        Some(b) if b.chars().any(char::is_control) => {
            return Err(ApiError::invalid("by", "must be one line of text"));
        }
        other => other.map(str::to_string),
    };
    if body.note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(ApiError::invalid("note", format!("at most {MAX_NOTE_CHARS} characters")));
    }
    let note = body.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let id = resolve(&*st.ports, &id).await?;
    match leadflow_app::sales::mark(&*st.ports, id, status, by, note).await {
        Ok(m) => Ok(axum::Json(json!({
            "lead_id": id,
            "from": m.from,
            "status": m.lead.status,
            "changed": m.changed,
            "enrollments_stopped": m.stopped,
        }))
        .into_response()),
        Err(MarkError::NotFound) => Err(ApiError::not_found("lead_not_found", "No lead has this id.")),
        Err(e @ MarkError::Erased) => Err(ApiError::new(StatusCode::GONE, "lead_erased", e.to_string())),
        Err(e @ MarkError::Refused { .. }) => Err(ApiError {
            field: Some("status".into()),
            ..ApiError::conflict("status_refused", format!("{}.", capitalized(&e.to_string())))
        }),
        Err(MarkError::Stage(e)) => Err(e.into()),
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `DELETE /admin/leads/{id}`: erases the lead's personal data (see
/// [`leadflow_app::erasure::erase`]). Erasing twice answers the same, with
/// `"already_erased": true`.
pub async fn erase<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let id = resolve(&*st.ports, &id).await?;
    match leadflow_app::erasure::erase(&*st.ports, id).await? {
        Some(e) => Ok(axum::Json(json!({
            "lead_id": e.lead_id,
            "erased": true,
            "already_erased": e.already,
            "enrollments_stopped": e.stopped,
            "emails_deleted": e.emails_deleted,
        }))
        .into_response()),
        None => Err(ApiError::not_found("lead_not_found", "No lead has this id.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = cursor(&Some("abc:def".into()), 7);
        assert_eq!(parse_cursor(&Some(c)).ok(), Some((Some("abc:def".to_string()), 7)));
        assert_eq!(parse_cursor(&Some(cursor(&None, 3))).ok(), Some((None, 3)));
        assert!(parse_cursor(&Some("nonsense".into())).is_err());
    }
}
